#!/usr/bin/env bash
# Runs a test project RUNS times in a row while BUSY busy loops keep the cores occupied, and prints one line per run:
# the check that the suite needs no free CPU (docs/testing.md). Build first (./test.sh or dotnet build -c Release).
#   tests/under-load.sh [RUNS=10] [BUSY=2] [PROJECT...]   (default projects: Sentinel.Engine.Tests Sentinel.Plugins.Tests)
set -uo pipefail
cd "$(dirname "$0")/.."
runs="${1:-10}"; busy="${2:-2}"; shift $(( $# > 2 ? 2 : $# ))
projects=("$@"); [ ${#projects[@]} -eq 0 ] && projects=(Sentinel.Engine.Tests Sentinel.Plugins.Tests)
loops=()
for _ in $(seq "$busy"); do timeout 3600 sh -c 'while :; do :; done' & loops+=($!); done
trap 'kill "${loops[@]}" 2>/dev/null' EXIT
logs="TestResults/under-load"; mkdir -p "$logs"
echo "commit $(git rev-parse --short HEAD), $busy busy loops, $(date -u +%FT%TZ)"
failed=0
for p in "${projects[@]}"; do
  for i in $(seq "$runs"); do
    start=$(date +%s)
    dotnet test "tests/$p" -c Release --no-build --blame-hang-timeout 2m --blame-hang-dump-type none > "$logs/$p-$i.log" 2>&1
    rc=$?; [ $rc -ne 0 ] && failed=1
    echo "$p run $i: exit $rc in $(( $(date +%s) - start ))s: $(grep -hE 'Passed!|Failed!|Aborted' "$logs/$p-$i.log" | head -1 | sed 's/ - Sentinel.*//') (load $(cut -d' ' -f1 /proc/loadavg))"
  done
done
exit $failed
