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
dotnet test --project "$root/tests/Buddy.Tests.csproj" -c Release \
    --results-directory "$results" --report-xunit-trx --report-xunit-trx-filename managed.trx \
    --timeout 20m --no-progress || status=1

# Sums the counters of every TRX file: <Counters total=".." passed=".." failed=".." ...>.
passed=0
failed=0
while IFS= read -r trx; do
    counters=$(grep -o '<Counters [^>]*>' "$trx" | head -n 1)
    count() { sed -n "s/.* $1=\"\([0-9]*\)\".*/\1/p" <<<"$counters"; }
    passed=$((passed + $(count passed)))
    failed=$((failed + $(count failed) + $(count error) + $(count timeout)))
done < <(find "$results" -name '*.trx')
if [ "${passed:-0}" -eq 0 ]; then
    echo "no test results were found in $results" >&2
    status=1
fi
[ "${failed:-0}" -eq 0 ] || status=1
echo "tests: ${passed:-0} passed, ${failed:-0} failed"
exit $status
