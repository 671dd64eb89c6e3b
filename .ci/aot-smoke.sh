#!/usr/bin/env bash
# NativeAOT smoke test (issue 16): publishes examples/Sieve with PublishAot for this machine's runtime identifier,
# requires the publish to print no trimming/AOT warning, and runs the native executable, which checks its own result
# and exits non-zero on a wrong one. The SDK restores the ILCompiler packages it needs; the native link needs clang or
# gcc on PATH (Debian: apt-get install clang, or gcc).
#
# Exit codes: 0 passed, 1 failed, 77 skipped because the native toolchain is missing (.ci/run then prints why).
# Everything it builds goes to a temporary artifacts folder, so the repository's bin/ and obj/ (and the RID-less
# restore the other CI steps use) are left as they were.
set -uo pipefail
cd "$(dirname "$0")/.."

if ! command -v clang >/dev/null 2>&1 && ! command -v gcc >/dev/null 2>&1; then
  echo "aot-smoke: skipped: NativeAOT links with clang or gcc and neither is on PATH (apt-get install clang)" >&2
  exit 77
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if ! dotnet publish examples/Sieve/Sieve.csproj -c Release --use-current-runtime -p:PublishAot=true \
  --artifacts-path "$work/artifacts" -o "$work/out" >"$work/publish.log" 2>&1; then
  cat "$work/publish.log" >&2
  echo "aot-smoke: FAIL: the NativeAOT publish of examples/Sieve failed (above)" >&2
  exit 1
fi
# The library declares IsAotCompatible, so its own build already fails on an analyzer warning; this catches what
# only the whole-program compiler sees (IL2xxx trimming, IL3xxx AOT warnings).
if grep -E ': warning (IL[0-9]+|[A-Z]+[0-9]+)' "$work/publish.log" >&2; then
  echo "aot-smoke: FAIL: the NativeAOT publish printed warnings (above)" >&2
  exit 1
fi
if [ ! -x "$work/out/Sieve" ]; then
  echo "aot-smoke: FAIL: no native executable at $work/out/Sieve: $(ls "$work/out")" >&2
  exit 1
fi
# A native image has no JIT: the IL of Sieve.dll must not be beside it, or the test would not prove anything.
if [ -f "$work/out/Sieve.dll" ]; then
  echo "aot-smoke: FAIL: the publish produced Sieve.dll, so it was not a NativeAOT publish" >&2
  exit 1
fi
if ! timeout 120 "$work/out/Sieve"; then
  echo "aot-smoke: FAIL: the NativeAOT Sieve exited non-zero (or ran longer than 120 s)" >&2
  exit 1
fi
echo "aot-smoke: the NativeAOT build of examples/Sieve ran and checked its result"
