#!/usr/bin/env bash
# Builds Sentinel, its first-party plugins (into plugins/) and the demo service, starts the demo, and runs
# `sentinel run` on config/sentinel.yaml. Ctrl+C stops both. Extra arguments go to `sentinel run`.
set -euo pipefail
cd "$(dirname "$0")"
export DEMO_PORT="${DEMO_PORT:-5180}"
echo "Building Sentinel (first run restores packages; this can take a minute)..."
dotnet build src/Engine/Sentinel.Host -c Release --nologo -v quiet "-clp:ErrorsOnly;NoSummary"
mkdir -p logs
dotnet artifacts/bin/Sentinel.Demo/release/sentinel-demo.dll --port "$DEMO_PORT" --log logs/demo.log &
demo=$!
trap 'kill "$demo" 2>/dev/null || true' EXIT
dotnet artifacts/bin/Sentinel.Host/release/sentinel.dll run --config config/sentinel.yaml "$@"
