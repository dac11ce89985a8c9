#!/usr/bin/env bash
# Times an allocation/free pair per order in two builds of the allocator, the working tree and a base
# commit, one process at a time and interleaved, so drift on a shared machine hits both alike.
#   ./scripts/ab-pairs.sh BASE_COMMIT [ROUNDS] [PAIRS]
# Prints, per order, the median and minimum ns per pair of each build and their ratios (after/base).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/prerequisites.sh"
require_dotnet
base=${1:?usage: ab-pairs.sh BASE_COMMIT [ROUNDS] [PAIRS]}
rounds=${2:-8}
# 30 million timed pairs (about half a second): shorter runs also time the JIT's tiering ramp, which
# can differ between two builds whose steady state is the same.
pairs=${3:-30000000}
work=$(mktemp -d)
trap 'git -C "$root" worktree remove --force "$work/base" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
git -C "$root" worktree add --detach "$work/base" "$base" -q
# The loop program is this tree's; the base build compiles it against the base commit's allocator.
mkdir -p "$work/base/bench/Buddy.PairLoop"
cp "$root"/bench/Buddy.PairLoop/{Buddy.PairLoop.csproj,Program.cs} "$work/base/bench/Buddy.PairLoop/"
dotnet build "$work/base/bench/Buddy.PairLoop" -c Release -o "$work/out-base" -v quiet -nologo >/dev/null
dotnet build "$root/bench/Buddy.PairLoop" -c Release -o "$work/out-head" -v quiet -nologo >/dev/null
for order in 0 4 9; do
    for _ in $(seq "$rounds"); do
        for build in base head; do
            echo "$order $build $(dotnet "$work/out-$build/Buddy.PairLoop.dll" "$order" "$pairs")"
        done
    done
done | python3 -c '
import sys, statistics, collections
times = collections.defaultdict(list)
for line in sys.stdin:
    order, build, ns = line.split()
    times[(int(order), build)].append(float(ns))
print("order  base median  head median  ratio  |  base min  head min  ratio")
for order in sorted({o for o, _ in times}):
    b, h = times[(order, "base")], times[(order, "head")]
    mb, mh = statistics.median(b), statistics.median(h)
    print(f"{order:5}  {mb:11.1f}  {mh:11.1f}  {mh / mb:5.2f}  |  {min(b):8.1f}  {min(h):8.1f}  {min(h) / min(b):5.2f}")
'
