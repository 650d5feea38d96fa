#!/usr/bin/env bash
# Runs the console's browser test (Tests/Browser/console_test.py) against a live Standby in a real
# headless Chromium. Needs Debian's chromium and chromium-driver and Selenium from PyPI, and a built
# `standby` (BIN, default .build/debug/standby). Screenshots go to SCREENSHOTS (default a temp folder).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.build/debug/standby}
PORT=${PORT:-18091}
work=$(mktemp -d)
SCREENSHOTS=${SCREENSHOTS:-$work/screenshots}
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$work"' EXIT

cat > "$work/standby.yaml" <<YAML
server: { host: 127.0.0.1, port: $PORT }
database: { path: $work/standby.sqlite }
console: { streamInterval: 200ms }
auth:
  webhookTokens: [browser-webhook-token]
  apiTokens:
    - { name: dashboard, token: browser-reader-token, roles: [reader] }
    - { name: sre, token: browser-operator-token, roles: [reader, operator] }
    - { name: probe, token: browser-reporter-token, roles: [reporter] }
deployments:
  - id: foundry-prod
    pattern: active-passive
    hubs:
      - { id: eastus-hub, region: eastus, regionName: East US, role: primary }
      - { id: westus-hub, region: westus, regionName: West US, role: secondary }
YAML

"$BIN" serve --config "$work/standby.yaml" 2> "$work/standby.log" &
server=$!
for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done
python3 Tests/Browser/console_test.py "http://127.0.0.1:$PORT" browser-reader-token browser-operator-token \
    browser-reporter-token "$SCREENSHOTS" || { cat "$work/standby.log" >&2; exit 1; }
