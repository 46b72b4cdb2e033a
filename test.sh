#!/usr/bin/env bash
# Runs Sentinel's whole test suite (unit, integration, real processes) and ends with "N passed, N failed".
# Extra arguments go to `dotnet test` (e.g. --filter FullyQualifiedName~Config).
set -uo pipefail
cd "$(dirname "$0")"
results="TestResults"
rm -rf "$results"
# A test that hangs is killed after 5 minutes and named in the output, rather than stalling the run.
dotnet test Sentinel.sln -c Release --logger trx --results-directory "$results" \
  --blame-hang-timeout 5m --blame-hang-dump-type none "$@"
status=$?
python3 - "$results" <<'PY'
import glob, sys, xml.etree.ElementTree as ET
ns = {"t": "http://microsoft.com/schemas/VisualStudio/TeamTest/2010"}
passed = failed = skipped = 0
for f in glob.glob(sys.argv[1] + "/**/*.trx", recursive=True):
    c = ET.parse(f).getroot().find("t:ResultSummary/t:Counters", ns)
    passed += int(c.get("passed", 0))
    failed += int(c.get("failed", 0)) + int(c.get("error", 0)) + int(c.get("timeout", 0)) + int(c.get("aborted", 0))
    skipped += int(c.get("notExecuted", 0))
print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
PY
exit $status
