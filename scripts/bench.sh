#!/usr/bin/env bash
# Runs the benchmarks: the BenchmarkDotNet suite and the macro harness, Buddy beside its peers
# (glibc, jemalloc, mimalloc, tcmalloc, ArrayPool, mmap), and writes results to bench/results/.
#   ./scripts/bench.sh            full run (about 15 minutes)
#   ./scripts/bench.sh --quick    the harness only, in under a minute; prints one JSON object of ratios
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/prerequisites.sh"
require_dotnet
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
# The peers come from Debian's packages; a peer that cannot be installed is skipped with its reason.
apt_install libjemalloc2 libmimalloc2.0 libtcmalloc-minimal4 || echo "some peer allocators could not be installed; they will be skipped" >&2
dotnet build "$root/bench/Buddy.Harness/Buddy.Harness.csproj" -c Release -v quiet -nologo >/dev/null
harness=(dotnet "$root/bench/Buddy.Harness/bin/Release/net10.0/Buddy.Harness.dll")
if [ "${1:-}" = "--quick" ]; then
    exec "${harness[@]}" --quick
fi
"${harness[@]}" --out "$root/bench/results" | tee "$root/bench/results/harness.json"
dotnet run -c Release --project "$root/bench/Buddy.Benchmarks" -- --filter '*' \
    --launchCount 1 --warmupCount 3 --iterationCount 10 --exporters github --artifacts "$root/artifacts/bdn"
for report in "$root"/artifacts/bdn/results/*-report-github.md; do cp "$report" "$root/bench/results/$(basename "$report" -report-github.md).md"; done
