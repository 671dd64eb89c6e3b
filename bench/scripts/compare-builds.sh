#!/usr/bin/env bash
# Interleaved before/after comparison of the quick table's Tasklets figures, for two built copies of the repository
# (e.g. a git worktree at the old commit and this one), in one sitting: each round runs every row once per build,
# alternating which build goes first, each figure in a fresh process (the quick table's own child mode). Prints one
# line per row, build and round ("row build ns B"), then the medians; compare ratios, the machine is noisy.
#
#   git worktree add ../base <old-commit> && dotnet build ../base/bench/Tasklets.Benchmarks -c Release
#   dotnet build bench/Tasklets.Benchmarks -c Release
#   bench/scripts/compare-builds.sh ../base . 5
set -euo pipefail
before=$1 after=$2 rounds=${3:-5}
rows=(0 1 2 3 4 5 6 7 -1)
names=(chan_sync chan_buff chan_async select select_default ping-pong spawn yield blocked-tasklet-bytes)
dll=bench/Tasklets.Benchmarks/bin/Release/net10.0/Tasklets.Benchmarks.dll
out=$(mktemp)
for ((r = 1; r <= rounds; r++)); do
  if ((r % 2)); then order=("$before" "$after"); else order=("$after" "$before"); fi
  for i in "${!rows[@]}"; do
    for build in "${order[@]}"; do
      label=$([ "$build" = "$before" ] && echo before || echo after)
      # A build's child mode prints "ns bytes", or (since the main job reports spreads) "min median max bytes":
      # the median is the figure compared.
      read -r f1 f2 f3 f4 < <(dotnet "$build/$dll" --measure "${rows[$i]}" 0)
      if [ -n "${f4:-}" ]; then ns=$f2 bytes=$f4; else ns=$f1 bytes=$f2; fi
      echo "${names[$i]} $label $ns $bytes" | tee -a "$out"
    done
  done
done
echo
echo "median over $rounds rounds (ns/op, B/op; blocked-tasklet-bytes: B per tasklet):"
for name in "${names[@]}"; do
  for label in before after; do
    awk -v n="$name" -v l="$label" '$1 == n && $2 == l { print $3, $4 }' "$out" | sort -g | awk -v n="$name" -v l="$label" \
      '{ v[NR] = $1; b[NR] = $2 } END { m = (NR + 1) / 2; printf "%-22s %-6s %10.1f %8.1f   (min %.1f, max %.1f)\n", n, l, v[int(m)], b[int(m)], v[1], v[NR] }'
  done
done
rm -f "$out"
