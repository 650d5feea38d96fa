#!/usr/bin/env bash
# Runs schemathesis against a live Standby with the contract in openapi/standby.yaml: a bounded
# number of generated requests per operation; fails on any 5xx or any response that breaks the
# schema. Needs `pip install schemathesis` and a built `standby` (BIN, default .build/debug/standby).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.build/debug/standby}
EXAMPLES=${EXAMPLES:-25}
PORT=${PORT:-18089}
work=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$work"' EXIT

cat > "$work/standby.yaml" <<YAML
server: { host: 127.0.0.1, port: $PORT }
database: { path: $work/standby.sqlite }
auth:
  webhookTokens: [contract-webhook-token]
  apiTokens:
    - { name: contract, token: contract-admin-token, roles: [admin] }
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

schemathesis run openapi/standby.yaml \
    --url "http://127.0.0.1:$PORT" \
    --header "Authorization: Bearer contract-admin-token" \
    --checks not_a_server_error,response_schema_conformance \
    --max-examples "$EXAMPLES" \
    --seed 1 \
    --no-color
