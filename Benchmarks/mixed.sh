#!/usr/bin/env bash
# Webhook latency beside large report batches: does one big write stall the rest?
#   Benchmarks/mixed.sh                     # 3 runs, medians printed
#   RUNS=5 DURATION=20s REPORTERS=2 BATCH=1000 Benchmarks/mixed.sh
# Each run measures webhook deliveries under wrk alone (unloaded), then again while REPORTERS
# clients post BATCH-report batches back to back, and prints both p99s and their ratio (target:
# loaded p99 at most 3 times the unloaded one).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
REPORTERS=${REPORTERS:-2}
BATCH=${BATCH:-1000}
PORT=${PORT:-18092}
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
command -v python3 >/dev/null || { echo "python3 is needed (reporters): apt-get install python3" >&2; exit 1; }
[ -n "${BIN:-}" ] || BIN=$(scripts/build-release.sh)

. Benchmarks/server.sh

# Prints "rps p50_ms p99_ms max_ms".
webhooks() {
    local out="$work/wrk.txt"
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s Benchmarks/webhook.lua "http://127.0.0.1:$PORT" > "$out"
    awk '
        function ms(v) { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n = n; else if (v ~ /s$/) n *= 1000; return n }
        /Requests\/sec/ { rps = $2 }
        $1 == "50%" { p50 = ms($2) }
        $1 == "99%" { p99 = ms($2) }
        $1 == "Latency" && max == "" { max = ms($4) }
        END { printf "%s %.2f %.2f %.2f\n", rps, p50, p99, max }' "$out"
}

# Posts BATCH-report batches back to back for SECONDS seconds (bounded), one reporter per process;
# prints how many reports were stored.
reporter() {
    python3 - "$PORT" "$STANDBY_API_TOKEN" "$BATCH" "$1" "$2" <<'PY'
import http.client, json, sys, time
from datetime import datetime, timedelta, timezone
port, token, batch, seconds, name = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
conn = http.client.HTTPConnection("127.0.0.1", int(port))
headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
deadline = time.monotonic() + seconds
base = datetime.now(timezone.utc) - timedelta(minutes=30)
stored, n = 0, 0
while time.monotonic() < deadline:
    reports = []
    for _ in range(batch):
        n += 1
        observed = (base + timedelta(microseconds=n * 1000)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        reports.append({"hub": "westus-hub", "source": f"bulk-{name}", "outcome": "success", "observedAt": observed})
    conn.request("POST", "/v1/health-reports", json.dumps({"reports": reports}), headers)
    response = conn.getresponse(); body = response.read()
    if response.status != 200:
        sys.exit(f"reporter {name}: HTTP {response.status} {body[:200]!r}")
    stored += batch
print(stored)
PY
}

seconds=$(awk -v d="$DURATION" 'BEGIN { n = d + 0; if (d ~ /m$/) n *= 60; print n + 2 }')

write_config
echo "machine: $(nproc) cores; wrk -t$THREADS -c$CONNECTIONS -d$DURATION; $REPORTERS reporters of $BATCH-report batches; $RUNS runs"
declare -a u_p99 u_rps l_p99 l_rps l_max reported ratio
for run in $(seq 1 "$RUNS"); do
    start
    read -r rps p50 p99 max < <(webhooks)
    u_rps+=("$rps"); u_p99+=("$p99")
    pids=()
    for r in $(seq 1 "$REPORTERS"); do reporter "$seconds" "$run-$r" > "$work/reporter-$r.txt" & pids+=($!); done
    sleep 1
    read -r rps p50 p99 max < <(webhooks)
    l_rps+=("$rps"); l_p99+=("$p99"); l_max+=("$max")
    total=0
    for i in "${!pids[@]}"; do wait "${pids[$i]}"; total=$((total + $(cat "$work/reporter-$((i + 1)).txt"))); done
    reported+=("$total")
    ratio+=("$(awk -v l="$p99" -v u="${u_p99[-1]}" 'BEGIN { printf "%.2f", l / u }')")
    echo "run $run: unloaded ${u_rps[-1]}/s p99 ${u_p99[-1]} ms; beside reporters ${l_rps[-1]}/s p99 $p99 ms (max $max ms), $total reports stored; ratio ${ratio[-1]}"
    stop
done
echo "median: unloaded p99 $(printf '%s\n' "${u_p99[@]}" | median) ms; loaded p99 $(printf '%s\n' "${l_p99[@]}" | median) ms; ratio $(printf '%s\n' "${ratio[@]}" | median) (target <= 3)"
