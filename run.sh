#!/usr/bin/env bash
# Builds Sentinel, its first-party plugins (into plugins/) and the demo service, and runs `sentinel run` on
# config/sentinel.yaml, which starts the demo and keeps it up (rule demo-process). Ctrl+C stops both.
# Extra arguments go to `sentinel run`.
set -euo pipefail
cd "$(dirname "$0")"
export DEMO_PORT="${DEMO_PORT:-5180}"
echo "Building Sentinel (first run restores packages; this can take a minute)..."
dotnet build src/Engine/Sentinel.Host -c Release --nologo -v quiet "-clp:ErrorsOnly;NoSummary"
mkdir -p logs
exec dotnet artifacts/bin/Sentinel.Host/release/sentinel.dll run --config config/sentinel.yaml "$@"
