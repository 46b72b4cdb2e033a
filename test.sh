#!/usr/bin/env bash
# Runs Sentinel's whole test suite (unit, integration, real processes) and ends with "N passed, N failed".
# Extra arguments go to each `dotnet test` (e.g. --filter FullyQualifiedName~Config).
#
# The count is taken from what ran, not from what the runner says: a test project whose run was aborted or crashed,
# whose results file is missing or not "Completed", and every test it discovered but never ran, count as failed,
# and the script then exits 1. A test that hangs is killed after SENTINEL_TEST_HANG_TIMEOUT (default 2m; 4m for the
# Host tests, 8m for the package and fault tests) and named;
# SENTINEL_TEST_DUMP=full keeps a dump of the hung test host for `dotnet-dump analyze` (docs/testing.md).
set -uo pipefail
cd "$(dirname "$0")"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
results="TestResults"
rm -rf "$results"
mkdir -p "$results"

if ! dotnet build Sentinel.sln -c Release --nologo -v quiet "-clp:ErrorsOnly;NoSummary"; then
  echo "the build failed: no test ran"
  echo "0 passed, 1 failed"
  exit 1
fi

projects=()
for p in tests/*/*.Tests.csproj; do projects+=("$p"); done

# Each project: discover its tests (the count a crashed run is held to), then run them. The projects run side by side.
pids=()
for p in "${projects[@]}"; do
  name="$(basename "$p" .csproj)"
  # A project in which no test has finished for this long is taken for hung and killed. Some tests legitimately run
  # for minutes on a loaded 2-core machine: the package tests install a .deb and run Sentinel under qemu's arm64
  # emulation, the fault tests kill Sentinel twenty times (KillLoopTests: 3.5 min in a loaded run), the Host tests
  # build plugins with `dotnet build`. SENTINEL_TEST_HANG_TIMEOUT, when set, is used for every project.
  case "$name" in
    Sentinel.Package.Tests|Sentinel.Fault.Tests) hang="${SENTINEL_TEST_HANG_TIMEOUT:-8m}" ;;
    Sentinel.Host.Tests) hang="${SENTINEL_TEST_HANG_TIMEOUT:-4m}" ;;
    *) hang="${SENTINEL_TEST_HANG_TIMEOUT:-2m}" ;;
  esac
  (
    dotnet test "$p" -c Release --no-build --list-tests "$@" > "$results/$name.discovered" 2>&1
    dotnet test "$p" -c Release --no-build --logger "trx;LogFileName=$name.trx" --results-directory "$results/$name" \
      --blame-hang-timeout "$hang" --blame-hang-dump-type "${SENTINEL_TEST_DUMP:-none}" "$@"
  ) &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done

python3 - "$results" "${projects[@]}" <<'PY'
import os, sys, xml.etree.ElementTree as ET
ns = {"t": "http://microsoft.com/schemas/VisualStudio/TeamTest/2010"}
results, projects = sys.argv[1], sys.argv[2:]
passed = failed = skipped = 0
problems = []
for project in projects:
    name = os.path.basename(project)[:-len(".csproj")]
    discovered = None
    try:
        lines = open(os.path.join(results, name + ".discovered"), encoding="utf-8", errors="replace").read().splitlines()
        if any(l.startswith("The following Tests are available:") for l in lines):
            discovered = sum(1 for l in lines if l.startswith("    ") and l.strip())
    except OSError:
        pass
    trx = os.path.join(results, name, name + ".trx")
    if not os.path.exists(trx):
        n = max(discovered or 0, 1)
        failed += n
        problems.append(f"{name}: no results file (the run crashed or never started): {n} counted as failed")
        continue
    root = ET.parse(trx).getroot()
    summary = root.find("t:ResultSummary", ns)
    c = summary.find("t:Counters", ns)
    get = lambda k: int(c.get(k, 0))
    p = get("passed")
    f = get("failed") + get("error") + get("timeout") + get("aborted") + get("notRunnable") + get("disconnected")
    s = get("notExecuted")
    ran = len(root.findall("t:Results/t:UnitTestResult", ns))
    never = max(0, discovered - ran) if discovered is not None else 0
    if discovered is None:
        problems.append(f"{name}: its tests could not be listed (see {results}/{name}.discovered)")
        f += 1
    if never:
        problems.append(f"{name}: {never} of {discovered} discovered tests never ran: counted as failed")
        f += never
    outcome = summary.get("outcome")
    if outcome != "Completed" and f == 0:
        # Aborted or crashed with no failing test to show for it: the run itself is the failure.
        messages = [ri.findtext("t:Text", "", ns).strip().splitlines()[0] for ri in summary.findall("t:RunInfos/t:RunInfo", ns)
                    if ri.get("outcome") == "Error" and ri.findtext("t:Text", "", ns).strip()]
        problems.append(f"{name}: the run ended '{outcome}'" + (f": {messages[0]}" if messages else "") + ": counted as 1 failed")
        f += 1
    passed += p
    failed += f
    skipped += s
for line in problems:
    print("test.sh: " + line)
print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
sys.exit(1 if failed else 0)
PY
summary=$?
[ "$summary" -ne 0 ] && status=1
exit $status
