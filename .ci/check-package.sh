#!/usr/bin/env bash
# The package as nuget.org would receive it (issue 16): packs src/Tasklets in Release into a temporary folder, then
# checks the .nupkg's metadata (id, a 0.x version, MIT licence expression, readme, repository, description, authors,
# tags), its files (README.md, lib/<tfm>/Tasklets.dll and Tasklets.xml, the analyzers), the .snupkg's pdb,
# SourceLink where the clone has a GitHub remote, the deterministic paths of a CI build, and finally that a fresh
# console project restores the package from that folder alone and builds and runs the readme's first C# block with
# warnings as errors, and a second one whose tasklet body has a ConfigureAwait(false) fails to build with the
# analyzer's TASKLET001. Then packs Tasklets.Hosting and checks its metadata, its dependency on this version of
# Tasklets, its files, readme and symbols. Prints one line per check; exits non-zero if any failed.
#
# Usage: bash .ci/check-package.sh [extra 'dotnet pack' arguments]   (.ci/run passes --no-build after its build)
# No 'grep -q' reads a pipe here: it exits at its first match, and with pipefail the writer's SIGPIPE would fail the
# check at random. Lists are read into variables and searched as here-strings.
set -uo pipefail
cd "$(dirname "$0")/.."

project=src/Tasklets/Tasklets.csproj
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
ok() { echo "check-package: ok: $*"; }
fail() { echo "check-package: FAIL: $*" >&2; failures=$((failures + 1)); }
note() { echo "check-package: note: $*"; }

# What the project says it packs; each value must then appear in the package.
props=$(dotnet msbuild "$project" -p:Configuration=Release \
  -getProperty:PackageId -getProperty:PackageVersion -getProperty:TargetFramework -getProperty:AssemblyName \
  -getProperty:RepositoryUrl -getProperty:ContinuousIntegrationBuild) || { echo "check-package: FAIL: msbuild could not evaluate $project" >&2; exit 1; }
prop() { printf '%s\n' "$props" | sed -n "s/^ *\"$1\": \"\(.*\)\",\{0,1\}$/\1/p"; }
id=$(prop PackageId)
version=$(prop PackageVersion)
tfm=$(prop TargetFramework)
assembly=$(prop AssemblyName)
repository=$(prop RepositoryUrl)
ci_build=$(prop ContinuousIntegrationBuild)

[ "$id" = "Tasklets" ] && ok "PackageId is Tasklets" || fail "PackageId is '$id', not Tasklets"
# 0.x until the API is declared stable (issue 16): a 1.0 must be a deliberate change of this line.
[[ "$version" =~ ^0\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]] && ok "version $version is 0.x" || fail "version '$version' is not 0.x"
[[ "$repository" =~ ^https://[^/]+/.+ ]] && ok "RepositoryUrl $repository" || fail "RepositoryUrl '$repository' is not an https URL"

if ! dotnet pack "$project" -c Release -o "$work/out" "$@" >"$work/pack.log" 2>&1; then
  cat "$work/pack.log" >&2
  fail "dotnet pack failed"
  echo "check-package: $failures check(s) failed"
  exit 1
fi
# The pack must be clean: a warning here (a missing readme, an unresolved SourceLink, NuGet's advice) is a defect.
if grep -E -i ': warning [A-Z]+[0-9]+' "$work/pack.log" >&2; then fail "dotnet pack printed warnings (above)"; else ok "dotnet pack printed no warning"; fi

nupkg="$work/out/$id.$version.nupkg"
snupkg="$work/out/$id.$version.snupkg"
[ -f "$nupkg" ] || { fail "no $id.$version.nupkg in the pack output: $(ls "$work/out")"; echo "check-package: $failures check(s) failed"; exit 1; }

# ---- metadata (the nuspec NuGet generated: one element per line) -------------------------------------------------
nuspec=$(unzip -p "$nupkg" "$id.nuspec")
has() { grep -q -E "$1" <<<"$nuspec"; }
has "<id>$id</id>" && ok "nuspec id" || fail "nuspec has no <id>$id</id>"
has "<version>${version//./\\.}</version>" && ok "nuspec version" || fail "nuspec has no <version>$version</version>"
has '<license type="expression">MIT</license>' && ok "nuspec licence expression MIT" || fail "nuspec has no MIT licence expression"
has '<readme>README.md</readme>' && ok "nuspec readme README.md" || fail "nuspec has no <readme>README.md</readme>"
has "<repository type=\"git\" url=\"${repository//./\\.}\"" && ok "nuspec repository (git, $repository)" || fail "nuspec has no git repository element with url $repository"
has "<projectUrl>${repository//./\\.}</projectUrl>" && ok "nuspec projectUrl" || fail "nuspec has no <projectUrl>$repository</projectUrl>"
for element in description authors tags copyright; do
  has "<$element>[^<]+</$element>" && ok "nuspec $element" || fail "nuspec has no non-empty <$element>"
done
if grep -q '<dependency ' <<<"$nuspec"; then fail "the package has dependencies (the library uses only the BCL)"; else ok "no dependencies"; fi

# ---- files --------------------------------------------------------------------------------------------------------
files=$(unzip -Z1 "$nupkg")
for file in README.md "lib/$tfm/$assembly.dll" "lib/$tfm/$assembly.xml"; do
  grep -q -x -F "$file" <<<"$files" && ok "package has $file" || fail "package lacks $file"
done
# Tasklets.Analyzers ships inside this package (DESIGN's layout; docs/analyzers.md): the analyzers and, in an
# assembly of their own (the compiler loads no Workspaces), their code fixes. A consumer below checks they run.
for file in analyzers/dotnet/cs/Tasklets.Analyzers.dll analyzers/dotnet/cs/Tasklets.Analyzers.CodeFixes.dll; do
  grep -q -x -F "$file" <<<"$files" && ok "package has $file" || fail "package lacks $file"
done

# ---- the readme nuget.org shows ------------------------------------------------------------------------------------
unzip -p "$nupkg" README.md >"$work/README.md"
if cmp -s "$work/README.md" src/Tasklets/PACKAGE.md; then ok "README.md is src/Tasklets/PACKAGE.md"; else fail "the packed README.md differs from src/Tasklets/PACKAGE.md"; fi
# It starts with how to install: the install command comes before the first C# block.
first_code=$(grep -n -m1 '^```csharp' "$work/README.md" | cut -d: -f1)
install_line=$(grep -n -m1 -F 'dotnet add package Tasklets' "$work/README.md" | cut -d: -f1)
if [ -n "$install_line" ] && [ -n "$first_code" ] && [ "$install_line" -lt "$first_code" ]; then
  ok "readme shows 'dotnet add package Tasklets' before its first C# block"
else
  fail "readme must show 'dotnet add package Tasklets' before its first C# block"
fi
# nuget.org resolves no relative link: a Markdown link or an HTML src/href must be absolute https (or absent).
relative=$(grep -n -o -E '\]\([^)]*\)|(src|href)="[^"]*"' "$work/README.md" | grep -v -E '\]\(https://|(src|href)="https://' | tr '\n' ' ' || true)
if [ -z "$relative" ]; then ok "readme has no relative link"; else fail "readme has links that break on nuget.org: $relative"; fi

# ---- symbols, SourceLink, deterministic paths ------------------------------------------------------------------------
if [ -f "$snupkg" ] && grep -q -x -F "lib/$tfm/$assembly.pdb" <<<"$(unzip -Z1 "$snupkg")"; then
  ok "symbols package has lib/$tfm/$assembly.pdb"
  unzip -p "$snupkg" "lib/$tfm/$assembly.pdb" >"$work/$assembly.pdb"
  # SourceLink stores its JSON uncompressed in the pdb, mapping the source root (/_/ in a CI build, the clone's
  # folder otherwise) to raw file URLs. It can only link to a hosted repository: a clone whose remote is GitHub gets
  # links, one without a remote (or with a local folder as its remote, as CI's clone) none.
  remote=$(git remote get-url origin 2>/dev/null || true)
  if [[ "$remote" =~ github\.com ]]; then
    grep -a -q -E '"documents":\{"[^"]+":"https://raw\.githubusercontent\.com/' "$work/$assembly.pdb" \
      && ok "pdb carries SourceLink to GitHub" || fail "the clone's remote is $remote but the pdb has no SourceLink"
  else
    note "SourceLink not checked: this clone's remote ('${remote:-none}') is not GitHub, so the pdb has no source links"
  fi
else
  fail "no $id.$version.snupkg with lib/$tfm/$assembly.pdb"
fi
unzip -p "$nupkg" "lib/$tfm/$assembly.dll" >"$work/$assembly.dll"
if [ "$ci_build" = "true" ]; then
  # ContinuousIntegrationBuild maps the source root to /_/: the dll's debug directory names /_/..., never this clone.
  if grep -a -q -F "/_/src/Tasklets/obj/" "$work/$assembly.dll" && ! grep -a -q -F "$PWD/" "$work/$assembly.dll"; then
    ok "deterministic CI build: paths in the dll are /_/, not $PWD"
  else
    fail "ContinuousIntegrationBuild is set but the dll names local paths (was it built without CI=true? pack without --no-build)"
  fi
else
  note "not a CI build (CI is not true): deterministic path mapping not checked"
fi

# ---- a consumer: restore from the pack folder alone, build the readme's code with warnings as errors, run it --------
consumer="$work/consumer"
mkdir -p "$consumer"
awk '/^```csharp/ { inside = 1; next } inside && /^```/ { exit } inside { print }' "$work/README.md" >"$consumer/Program.cs"
cat >"$consumer/Consumer.csproj" <<EOF
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup>
    <OutputType>Exe</OutputType>
    <TargetFramework>$tfm</TargetFramework>
    <ImplicitUsings>enable</ImplicitUsings>
    <Nullable>enable</Nullable>
    <TreatWarningsAsErrors>true</TreatWarningsAsErrors>
  </PropertyGroup>
  <ItemGroup>
    <PackageReference Include="$id" Version="$version" />
  </ItemGroup>
</Project>
EOF
cat >"$consumer/nuget.config" <<EOF
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <clear />
    <add key="packed" value="$work/out" />
  </packageSources>
</configuration>
EOF
# A package cache of its own, so that a Tasklets $version cached by an earlier run cannot stand in for this one.
expected=$(grep -E -o 'Console\.WriteLine\([^;]*\); // .+$' "$consumer/Program.cs" | tail -n1 | sed 's/.*; \/\/ //')
if output=$(cd "$consumer" && NUGET_PACKAGES="$work/packages" dotnet run -c Release 2>&1); then
  last=$(printf '%s\n' "$output" | tail -n1)
  if [ -z "$expected" ] || [ "$last" = "$expected" ]; then
    ok "a new project restores $id $version from the pack folder, builds the readme's code warning-free and runs it (printed '$last')"
  else
    fail "the readme's code printed '$last', its comment says '$expected'"
  fi
else
  printf '%s\n' "$output" >&2
  fail "a new project could not restore, build (warnings are errors) or run the readme's first C# block"
fi

# ---- a consumer gets the analyzers: a ConfigureAwait(false) in a tasklet body fails its build with TASKLET001 -------
misuse="$work/misuse"
mkdir -p "$misuse"
cp "$consumer/nuget.config" "$misuse/"
sed 's/<OutputType>Exe</<OutputType>Library</' "$consumer/Consumer.csproj" >"$misuse/Misuse.csproj"
cat >"$misuse/Misuse.cs" <<'EOF'
using Tasklets;

public static class Misuse
{
    public static void Start() => Tasklet.Go(async () =>
    {
        await Task.Delay(1).ConfigureAwait(false); // leaves the scheduler: TASKLET001
    });
}
EOF
if output=$(cd "$misuse" && NUGET_PACKAGES="$work/packages" dotnet build -c Release 2>&1); then
  fail "a consumer's ConfigureAwait(false) in a tasklet body built: the package's analyzers did not run"
else
  errors=$(grep -E -o 'error [A-Z]+[0-9]+' <<<"$output" | sort -u | tr '\n' ' ')
  if [ "$errors" = "error TASKLET001 " ]; then
    ok "a consumer's ConfigureAwait(false) in a tasklet body fails its build with TASKLET001 (the analyzers run from the package)"
  else
    printf '%s\n' "$output" >&2
    fail "the misuse consumer failed with '${errors:-no diagnostic id}', not with TASKLET001 alone"
  fi
fi

# ---- Tasklets.Hosting: its own package, same version, depending on this one -----------------------------------------
hosting_project=src/Tasklets.Hosting/Tasklets.Hosting.csproj
hosting_id=Tasklets.Hosting
if dotnet pack "$hosting_project" -c Release -o "$work/hosting" "$@" >"$work/hosting.log" 2>&1; then
  if grep -E -i ': warning [A-Z]+[0-9]+' "$work/hosting.log" >&2; then fail "dotnet pack $hosting_id printed warnings (above)"; else ok "dotnet pack $hosting_id printed no warning"; fi
  hosting_nupkg="$work/hosting/$hosting_id.$version.nupkg"
  if [ -f "$hosting_nupkg" ]; then
    hosting_nuspec=$(unzip -p "$hosting_nupkg" "$hosting_id.nuspec")
    hosting_files=$(unzip -Z1 "$hosting_nupkg")
    for pattern in "<id>$hosting_id</id>" '<license type="expression">MIT</license>' '<readme>README.md</readme>' \
      "<dependency id=\"$id\" version=\"\[?${version//./\\.}" '<description>[^<]+</description>' '<tags>[^<]+</tags>'; do
      grep -q -E "$pattern" <<<"$hosting_nuspec" && ok "$hosting_id nuspec has $pattern" || fail "$hosting_id nuspec lacks $pattern"
    done
    for file in README.md "lib/$tfm/$hosting_id.dll" "lib/$tfm/$hosting_id.xml"; do
      grep -q -x -F "$file" <<<"$hosting_files" && ok "$hosting_id package has $file" || fail "$hosting_id package lacks $file"
    done
    unzip -p "$hosting_nupkg" README.md >"$work/HOSTING.md"
    cmp -s "$work/HOSTING.md" src/Tasklets.Hosting/PACKAGE.md && ok "$hosting_id README.md is its PACKAGE.md" || fail "$hosting_id's packed README.md differs from src/Tasklets.Hosting/PACKAGE.md"
    relative=$(grep -n -o -E '\]\([^)]*\)|(src|href)="[^"]*"' "$work/HOSTING.md" | grep -v -E '\]\(https://|(src|href)="https://' | tr '\n' ' ' || true)
    if [ -z "$relative" ]; then ok "$hosting_id readme has no relative link"; else fail "$hosting_id readme has links that break on nuget.org: $relative"; fi
    [ -f "$work/hosting/$hosting_id.$version.snupkg" ] && ok "$hosting_id symbols package" || fail "no $hosting_id.$version.snupkg"
  else
    fail "no $hosting_id.$version.nupkg in the pack output: $(ls "$work/hosting")"
  fi
else
  cat "$work/hosting.log" >&2
  fail "dotnet pack $hosting_project failed"
fi

if [ "$failures" -ne 0 ]; then
  echo "check-package: $failures check(s) failed" >&2
  exit 1
fi
echo "check-package: $id and $hosting_id $version passed every check"
