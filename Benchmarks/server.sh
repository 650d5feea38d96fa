# Sourced by the benchmark scripts: a work folder, the benchmark configuration (one deployment whose
# primary hub owns the alerts' resources, plus RUNS * 5 spare deployments for decision-latency
# probes), and start/stop of the server on loopback. Set BIN and PORT first; LAUNCH prefixes the
# server's command (a profiler), START_SECONDS bounds the wait for it to answer, SEED names a
# database to start from instead of an empty one. Also the helpers
# the scripts share: wrk's latencies in milliseconds, the median of a column, a process's RSS.
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
    # SEED: a database to start from (Benchmarks/seed.py), copied so that every run starts alike.
    # SEED_MOVE=1 moves it instead (one run; for a database too large to copy).
    if [ -n "${SEED:-}" ]; then
        if [ -n "${SEED_MOVE:-}" ]; then mv "$SEED" "$work/standby.sqlite"; else cp "$SEED" "$work/standby.sqlite"; fi
    fi
    ${LAUNCH:-} "$BIN" serve --config "$work/standby.yaml" 2> "$work/standby.log" &
    server=$!
    for _ in $(seq 1 $((${START_SECONDS:-10} * 10))); do
        curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && return
        sleep 0.1
    done
    echo "server did not start" >&2; cat "$work/standby.log" >&2; exit 1
}
stop() { kill "$server"; wait "$server" 2>/dev/null || true; server=; }

# wrk prints 812.00us, 7.40ms or 1.02s; in milliseconds.
to_ms() { awk -v v="$1" 'BEGIN { n=v+0; if (v ~ /us$/) n/=1000; else if (v ~ /ms$/) n=n; else if (v ~ /s$/) n*=1000; printf "%.2f", n }'; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

# wrk with SCRIPT (THREADS, CONNECTIONS, DURATION) against PORT, or the port given, while sampling
# the RSS of the server, or of the process given; prints "rps p50_ms p99_ms peak_rss_kb non2xx".
load() {
    local script=$1 port=${2:-$PORT} pid=${3:-$server} out="$work/wrk.txt" peak=0
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$script" "http://127.0.0.1:$port" > "$out" &
    local wrk_pid=$!
    while kill -0 "$wrk_pid" 2>/dev/null; do
        local rss; rss=$(rss_kb "$pid"); [ "$rss" -gt "$peak" ] && peak=$rss
        sleep 0.5
    done
    wait "$wrk_pid"
    local rps p50 p99 errors
    rps=$(awk '/Requests\/sec/ {print $2}' "$out")
    p50=$(awk '$1=="50%" {print $2}' "$out")
    p99=$(awk '$1=="99%" {print $2}' "$out")
    errors=$(awk '/Non-2xx/ {print $5}' "$out"); errors=${errors:-0}
    echo "$rps $(to_ms "$p50") $(to_ms "$p99") $peak $errors"
}
