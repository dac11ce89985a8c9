#!/usr/bin/env bash
# Brings each packable project's PublicAPI.Unshipped.txt in line with its public surface: adds what
# the analyzer says is missing (RS0016) and drops what no longer exists (RS0017). Review the diff.
#   ./scripts/sync-public-api.sh
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
for _ in 1 2 3 4 5 6 7 8; do
    out=$(dotnet build "$root/Allocator.sln" -c Release -v q -nologo 2>&1 | grep -E "error RS001[67]" | sort -u)
    [ -z "$out" ] && exit 0
    while IFS= read -r line; do
        dir=$(sed -E 's/.*\[(.*)\/[^/]*\.csproj\]$/\1/' <<<"$line")
        symbol=$(sed -E "s/.*Symbol '(.*)' is (not part of|part of) the declared.*/\1/" <<<"$line")
        file="$dir/PublicAPI.Unshipped.txt"
        if grep -q RS0016 <<<"$line"; then
            echo "$symbol" >> "$file"
        else
            grep -vxF -- "$symbol" "$file" > "$file.tmp"; mv "$file.tmp" "$file"
        fi
    done <<<"$out"
done
echo "the public API files did not settle" >&2
exit 1
