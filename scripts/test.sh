#!/usr/bin/env bash
# Builds and runs every test suite, then prints one closing line: "tests: N passed, N failed".
# Exits non-zero when any test fails or a suite cannot run.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
results="$root/artifacts/test-results"
rm -rf "$results"
mkdir -p "$results"
source "$root/scripts/prerequisites.sh"
require_dotnet

status=0
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
# The C toolchain first: the native tests need it, and so does the managed test that links a C
# program against the packed libbuddy.so.
if [ "$(uname -s)" = Linux ]; then
    apt_install cmake g++ make libgtest-dev libbenchmark-dev zlib1g-dev || echo "could not install the native toolchain" >&2
fi
dotnet test --project "$root/tests/Buddy.Tests.csproj" -c Release \
    --results-directory "$results" --report-xunit-trx --report-xunit-trx-filename managed.trx \
    --timeout 20m --no-progress || status=1
# The expensive checks: the fuzzers and the concurrency tests again, with every zone list walked after
# each operation and Debug.Assert on.
dotnet test --project "$root/tests/Buddy.Tests.csproj" -c Debug -p:ExpensiveChecks=true \
    --results-directory "$results" --report-xunit-trx --report-xunit-trx-filename checked.trx \
    --timeout 10m --no-progress --filter-class '*PropertyTests' --filter-class '*ModelTests' \
    --filter-class '*ConcurrencyTests' --filter-class '*ExpensiveChecksTests' --filter-class '*InvariantCheckerTests' \
    --filter-class '*HintTierTests' || status=1

# Native tests: libbuddy.so (NativeAOT) and the GoogleTest suite that calls it, through ctest.
native_passed=0
native_failed=0
if [ "$(uname -s)" = Linux ]; then
    case "$(uname -m)" in aarch64|arm64) rid=linux-arm64 ;; *) rid=linux-x64 ;; esac
    ctest_log="$results/ctest.log"
    if dotnet publish "$root/src/Native/Buddy.Native.csproj" -c Release -r "$rid" -o "$root/artifacts/native" -v quiet -nologo \
        && cmake -S "$root/native-tests" -B "$root/artifacts/native-tests" -DCMAKE_BUILD_TYPE=Release -DBUDDY_LIB_DIR="$root/artifacts/native" >/dev/null \
        && cmake --build "$root/artifacts/native-tests" -j 2 >/dev/null; then
        ctest --test-dir "$root/artifacts/native-tests" --output-on-failure --timeout 120 | tee "$ctest_log" || status=1
        # "100% tests passed, 0 tests failed out of 13"
        summary=$(grep -E 'tests passed, [0-9]+ tests? failed out of [0-9]+' "$ctest_log" | tail -n 1)
        if [ -n "$summary" ]; then
            native_failed=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$summary")
            native_total=$(sed -E 's/.* failed out of ([0-9]+).*/\1/' <<<"$summary")
            native_passed=$((native_total - native_failed))
        else
            echo "ctest printed no summary" >&2
            status=1
        fi
    else
        echo "building libbuddy.so or the native tests failed" >&2
        status=1
    fi
else
    echo "native tests: skipped, they build libbuddy.so for Linux"
fi

# Sums the counters of every TRX file: <Counters total=".." passed=".." failed=".." ...>.
passed=0
failed=0
while IFS= read -r trx; do
    counters=$(grep -o '<Counters [^>]*>' "$trx" | head -n 1)
    count() { sed -n "s/.* $1=\"\([0-9]*\)\".*/\1/p" <<<"$counters"; }
    passed=$((passed + $(count passed)))
    failed=$((failed + $(count failed) + $(count error) + $(count timeout)))
done < <(find "$results" -name '*.trx')
passed=$((passed + native_passed))
failed=$((failed + native_failed))
if [ "${passed:-0}" -eq 0 ]; then
    echo "no test results were found in $results" >&2
    status=1
fi
[ "${failed:-0}" -eq 0 ] || status=1
echo "tests: ${passed:-0} passed, ${failed:-0} failed"
exit $status
