#!/usr/bin/env bash
# Load benchmark of a release build on loopback with wrk (the load generator shares the machine).
#   Benchmarks/bench.sh            # 3 runs of each, medians printed
#   RUNS=5 DURATION=30s CONNECTIONS=32 Benchmarks/bench.sh
# Reports durable webhook deliveries/s and latency, health reports/s and latency, decision latency
# (threshold-crossing report answered = command readable), idle and peak RSS, and the HTTP floor:
# the same webhook requests sent to a route that does not exist, answered 404 with nothing parsed or
# stored, which is what this machine can do at all with the server and wrk sharing its cores.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
DURATION=${DURATION:-20s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
PORT=${PORT:-18090}
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
command -v python3 >/dev/null || { echo "python3 is needed (decision latency): apt-get install python3" >&2; exit 1; }
# BIN=path benchmarks another build; by default the current source, built as it is shipped.
[ -n "${BIN:-}" ] || BIN=$(scripts/build-release.sh)

. Benchmarks/server.sh


# Decision latency: two failures, then the third; time from sending it to the command being
# readable, over one kept-alive connection (so process start-up is not measured).
decision_ms() {
    python3 - "$PORT" "$STANDBY_API_TOKEN" "$1" <<'PY'
import http.client, json, sys, time
from datetime import datetime, timezone
port, token, i = sys.argv[1], sys.argv[2], sys.argv[3]
conn = http.client.HTTPConnection("127.0.0.1", int(port))
headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
def report():
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    body = json.dumps({"hub": f"primary-{i}", "source": "p", "outcome": "failure", "observedAt": now})
    conn.request("POST", "/v1/health-reports", body, headers)
    response = conn.getresponse(); response.read()
    assert response.status < 300, response.status
for _ in range(2):
    report(); time.sleep(0.01)
time.sleep(0.01)
started = time.perf_counter()
report()
# Bounded: a command that never comes is a failure to report, not a benchmark that hangs.
while time.perf_counter() - started < 10:
    conn.request("GET", f"/v1/commands?deployment=decision-{i}&status=pending", headers=headers)
    response = conn.getresponse(); text = response.read().decode()
    if "route_traffic" in text:
        break
else:
    sys.exit(f"no route_traffic command for decision-{i} within 10 s")
print(f"{(time.perf_counter() - started) * 1000:.2f}")
PY
}

write_config
echo "machine: $(nproc) cores; wrk -t$THREADS -c$CONNECTIONS -d$DURATION; $RUNS runs; synchronous=FULL"
declare -a w_rps w_p50 w_p99 w_rss r_rps r_p50 r_p99 idle decisions f_rps f_p99
for run in $(seq 1 "$RUNS"); do
    start
    sleep 1
    idle+=("$(rss_kb "$server")")
    read -r rps p50 p99 rss errors < <(load Benchmarks/webhook.lua)
    echo "run $run webhooks: $rps req/s, p50 ${p50} ms, p99 ${p99} ms, peak RSS $((rss / 1024)) MB, non-2xx $errors"
    w_rps+=("$rps"); w_p50+=("$p50"); w_p99+=("$p99"); w_rss+=("$rss")
    read -r rps p50 p99 rss errors < <(load Benchmarks/reports.lua)
    echo "run $run reports:  $rps req/s, p50 ${p50} ms, p99 ${p99} ms, peak RSS $((rss / 1024)) MB, non-2xx $errors"
    r_rps+=("$rps"); r_p50+=("$p50"); r_p99+=("$p99"); w_rss+=("$rss")
    for i in $(seq 1 5); do decisions+=("$(decision_ms $(( (run - 1) * 5 + i )))"); done
    read -r rps p50 p99 rss answered < <(BENCH_PATH=/bench/no-such-route load Benchmarks/webhook.lua)
    echo "run $run floor:    $rps req/s, p50 ${p50} ms, p99 ${p99} ms (unmatched route, $answered answered 404)"
    f_rps+=("$rps"); f_p99+=("$p99")
    stop
done
echo
echo "median of $RUNS runs ($(nproc) cores, load generator on the same machine):"
echo "  webhook deliveries: $(printf '%s\n' "${w_rps[@]}" | median) /s, p50 $(printf '%s\n' "${w_p50[@]}" | median) ms, p99 $(printf '%s\n' "${w_p99[@]}" | median) ms"
echo "  health reports:     $(printf '%s\n' "${r_rps[@]}" | median) /s, p50 $(printf '%s\n' "${r_p50[@]}" | median) ms, p99 $(printf '%s\n' "${r_p99[@]}" | median) ms"
echo "  decision latency:   $(printf '%s\n' "${decisions[@]}" | median) ms (threshold-crossing report sent → command readable)"
echo "  HTTP floor:         $(printf '%s\n' "${f_rps[@]}" | median) /s, p99 $(printf '%s\n' "${f_p99[@]}" | median) ms (same requests, unmatched route, nothing stored)"
echo "  RSS: idle $(( $(printf '%s\n' "${idle[@]}" | median) / 1024 )) MB, peak under load $(( $(printf '%s\n' "${w_rss[@]}" | sort -n | tail -1) / 1024 )) MB"
