# Sourced by the benchmark scripts: a work folder, the benchmark configuration (one deployment whose
# primary hub owns the alerts' resources, plus RUNS * 5 spare deployments for decision-latency
# probes), and start/stop of the server on loopback. Set BIN and PORT first; LAUNCH prefixes the
# server's command (a profiler), START_SECONDS bounds the wait for it to answer.
work=$(mktemp -d)
server=
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
export STANDBY_WEBHOOK_TOKEN=bench-webhook-token STANDBY_API_TOKEN=bench-api-token-01

write_config() {
    cat > "$work/standby.yaml" <<YAML
server: { host: 127.0.0.1, port: $PORT }
logging: { level: warning }
database: { path: $work/standby.sqlite, synchronous: full }
auth:
  webhookTokens: ["\${STANDBY_WEBHOOK_TOKEN}"]
  apiTokens:
    - { name: bench, token: "\${STANDBY_API_TOKEN}", roles: [admin] }
deployments:
  - id: foundry-prod
    pattern: active-passive
    hubs:
      - id: eastus-hub
        region: eastus
        regionName: East US
        role: primary
        resources: [/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/ai-eastus/providers/Microsoft.MachineLearningServices/workspaces/hub-eastus]
      - { id: westus-hub, region: westus, regionName: West US, role: secondary }
YAML
    for i in $(seq 1 $((${RUNS:-1} * 5))); do
        cat >> "$work/standby.yaml" <<YAML
  - id: decision-$i
    pattern: active-passive
    hubs:
      - { id: primary-$i, region: eastus, regionName: East US, role: primary }
      - { id: secondary-$i, region: westus, regionName: West US, role: secondary }
YAML
    done
}

start() {
    rm -f "$work"/standby.sqlite*
    ${LAUNCH:-} "$BIN" serve --config "$work/standby.yaml" 2> "$work/standby.log" &
    server=$!
    for _ in $(seq 1 $((${START_SECONDS:-10} * 10))); do
        curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && return
        sleep 0.1
    done
    echo "server did not start" >&2; cat "$work/standby.log" >&2; exit 1
}
stop() { kill "$server"; wait "$server" 2>/dev/null || true; server=; }
