#!/usr/bin/env bash
# Runs the benchmarks: the BenchmarkDotNet suite, the macro harness (Buddy beside its peers: glibc,
# jemalloc, mimalloc, tcmalloc, ArrayPool, mmap), the service load (samples/BufferService under
# wrk: Kestrel's pool against Buddy's) and the density benchmark (how many bursty processes fit
# under one cgroup memory limit with each allocator; needs root for the cgroup), and writes results
# to bench/results/.
#   ./scripts/bench.sh                    full run (about 50 minutes)
#   ./scripts/bench.sh --service          the service load only (about 5 minutes)
#   ./scripts/bench.sh --service-bench    the aspnet/Benchmarks shapes, each pool with metrics and without (about 8 minutes)
#   ./scripts/bench.sh --arrow            Arrow batch churn, Arrow's allocator against Buddy's (under a minute)
#   ./scripts/bench.sh --density [--quick] the density benchmark only (about 15 minutes; quick: 10)
#   ./scripts/bench.sh --refill            refill after a report or a hint, 4 KiB and huge pages (1 minute)
#   ./scripts/bench.sh --quick    the harness only, in under a minute; prints one JSON object of ratios
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/prerequisites.sh"
require_dotnet
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
# The peers come from Debian's packages; a peer that cannot be installed is skipped with its reason.
apt_install libjemalloc2 libmimalloc2.0 libtcmalloc-minimal4 || echo "some peer allocators could not be installed; they will be skipped" >&2
apt_install wrk || echo "wrk could not be installed; the service load cannot run" >&2
apt_install gcc libc6-dev || echo "no C compiler could be installed; the density benchmark cannot run" >&2
service_load() {
    dotnet build "$root/samples/BufferService/BufferService.csproj" -c Release -v quiet -nologo >/dev/null
    dotnet build "$root/bench/Buddy.ServiceLoad/Buddy.ServiceLoad.csproj" -c Release -v quiet -nologo >/dev/null
    (cd "$root" && dotnet bench/Buddy.ServiceLoad/bin/Release/net10.0/Buddy.ServiceLoad.dll \
        --sample samples/BufferService/bin/Release/net10.0/BufferService.dll --out bench/results)
}
service_bench() {
    dotnet build "$root/samples/BufferService/BufferService.csproj" -c Release -v quiet -nologo >/dev/null
    dotnet build "$root/bench/Buddy.ServiceBench/Buddy.ServiceBench.csproj" -c Release -v quiet -nologo >/dev/null
    (cd "$root" && dotnet bench/Buddy.ServiceBench/bin/Release/net10.0/Buddy.ServiceBench.dll \
        --sample samples/BufferService/bin/Release/net10.0/BufferService.dll --out bench/results --rounds 3 --seconds 5)
}
arrow_churn() {
    dotnet build "$root/bench/Buddy.ArrowChurn/Buddy.ArrowChurn.csproj" -c Release -v quiet -nologo >/dev/null
    (cd "$root" && dotnet bench/Buddy.ArrowChurn/bin/Release/net10.0/Buddy.ArrowChurn.dll --out bench/results)
}
refill() {
    dotnet build "$root/bench/Buddy.Refill/Buddy.Refill.csproj" -c Release -v quiet -nologo >/dev/null
    (cd "$root" && dotnet bench/Buddy.Refill/bin/Release/net10.0/Buddy.Refill.dll --rounds 5 --mib 512 --out bench/results)
}
density() {
    case "$(uname -m)" in aarch64|arm64) rid=linux-arm64 ;; *) rid=linux-x64 ;; esac
    dotnet publish "$root/src/Native/Buddy.Native.csproj" -c Release -r "$rid" -o "$root/artifacts/native" -v quiet -nologo >/dev/null
    mkdir -p "$root/artifacts/density"
    cc -O2 -Wall -o "$root/artifacts/density/worker" "$root/bench/Buddy.Density/worker.c" -ldl
    dotnet build "$root/bench/Buddy.Density/Buddy.Density.csproj" -c Release -v quiet -nologo >/dev/null
    (cd "$root" && dotnet bench/Buddy.Density/bin/Release/net10.0/Buddy.Density.dll \
        --worker artifacts/density/worker --libbuddy artifacts/native/libbuddy.so --out bench/results "$@")
}
case "${1:-}" in
    --service) service_load; exit ;;
    --service-bench) service_bench; exit ;;
    --arrow) arrow_churn; exit ;;
    --density) shift; density "$@"; exit ;;
    --refill) refill; exit ;;
esac
dotnet build "$root/bench/Buddy.Harness/Buddy.Harness.csproj" -c Release -v quiet -nologo >/dev/null
harness=(dotnet "$root/bench/Buddy.Harness/bin/Release/net10.0/Buddy.Harness.dll")
if [ "${1:-}" = "--quick" ]; then
    exec "${harness[@]}" --quick
fi
service_load
service_bench
arrow_churn
density
refill
"${harness[@]}" --out "$root/bench/results" | tee "$root/bench/results/harness.json"
dotnet run -c Release --project "$root/bench/Buddy.Benchmarks" -- --filter '*' \
    --launchCount 1 --warmupCount 3 --iterationCount 10 --exporters github --artifacts "$root/artifacts/bdn"
for report in "$root"/artifacts/bdn/results/*-report-github.md; do cp "$report" "$root/bench/results/$(basename "$report" -report-github.md).md"; done
