#!/usr/bin/env bash
# Standby's durable webhook ingest beside Prometheus Alertmanager's in-memory alert ingest, with the
# same load generator in the same run:
#   Benchmarks/alertmanager.sh                 # 3 rounds, medians and the ratio printed
#   RUNS=5 DURATION=20s Benchmarks/alertmanager.sh
#   BENCH_REPEAT=1000 Benchmarks/alertmanager.sh   # each wrk thread re-sends the same 1000 alerts
# Each round runs Alertmanager (Debian's prometheus-alertmanager, a null receiver, no cluster) under
# wrk posting one new alert per request to /api/v2/alerts, then Standby (SQLite, synchronous=FULL)
# under the same wrk posting one new common-schema alert per request to its webhook. Alertmanager
# keeps alerts in memory only; every Standby 2xx is committed to disk. Both servers, one at a time,
# share this machine's cores with wrk. By default every request is a new alert, which Alertmanager
# keeps in memory until it resolves (its RSS grows by about 100 MB per 10 s here); BENCH_REPEAT=N
# re-sends the same N alerts per wrk thread instead: Alertmanager updates them in place, and
# Standby stores each delivery and counts it as a duplicate.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
PORT=${PORT:-18096}
AM_PORT=${AM_PORT:-18097}
ALERTMANAGER=${ALERTMANAGER:-$(command -v prometheus-alertmanager || command -v alertmanager || true)}
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
[ -n "$ALERTMANAGER" ] || { echo "Alertmanager is needed: apt-get install prometheus-alertmanager" >&2; exit 1; }
[ -n "${BIN:-}" ] || BIN=$(scripts/build-release.sh)

. Benchmarks/server.sh
am=
stop_alertmanager() { [ -n "$am" ] && { kill "$am" 2>/dev/null; wait "$am" 2>/dev/null || true; }; am=; }
trap 'stop_alertmanager; cleanup' EXIT


cat > "$work/alertmanager.yml" <<YAML
route: { receiver: "null", group_by: ["..."] }
receivers: [{ name: "null" }]
YAML
start_alertmanager() {
    rm -rf "$work/am-data"
    "$ALERTMANAGER" --config.file="$work/alertmanager.yml" --storage.path="$work/am-data" \
        --web.listen-address="127.0.0.1:$AM_PORT" --cluster.listen-address= --log.level=warn \
        2> "$work/alertmanager.log" &
    am=$!
    for _ in $(seq 1 100); do
        curl -fsS "http://127.0.0.1:$AM_PORT/-/ready" >/dev/null 2>&1 && return
        sleep 0.1
    done
    echo "Alertmanager did not start" >&2; cat "$work/alertmanager.log" >&2; exit 1
}

write_config
alerts="a new one per request"; [ -n "${BENCH_REPEAT:-}" ] && alerts="the same $BENCH_REPEAT per wrk thread, re-sent"
echo "machine: $(nproc) cores; wrk -t$THREADS -c$CONNECTIONS -d$DURATION; $RUNS rounds; alerts: $alerts; Alertmanager $("$ALERTMANAGER" --version 2>&1 | awk 'NR==1 {print $3}')"
declare -a a_rps a_p99 s_rps s_p99 ratios s_rss
for run in $(seq 1 "$RUNS"); do
    start_alertmanager
    read -r rps _ p99 rss errors < <(load Benchmarks/alertmanager.lua "$AM_PORT" "$am")
    stop_alertmanager
    [ "$errors" = 0 ] || { echo "Alertmanager answered $errors requests with non-2xx" >&2; exit 1; }
    a_rps+=("$rps"); a_p99+=("$p99")
    echo "round $run: Alertmanager $rps req/s, p99 $p99 ms, RSS $((rss / 1024)) MB"
    start
    read -r rps _ p99 rss errors < <(load Benchmarks/webhook.lua)
    stop
    [ "$errors" = 0 ] || { echo "Standby answered $errors deliveries with non-2xx" >&2; exit 1; }
    s_rps+=("$rps"); s_p99+=("$p99"); s_rss+=("$rss")
    ratio=$(awk -v s="$rps" -v a="${a_rps[-1]}" 'BEGIN { printf "%.2f", s / a }')
    ratios+=("$ratio")
    echo "round $run: Standby $rps durable deliveries/s, p99 $p99 ms, RSS $((rss / 1024)) MB; ratio $ratio"
done
m() { printf '%s\n' "$@" | median; }
echo "median: Alertmanager $(m "${a_rps[@]}") req/s (p99 $(m "${a_p99[@]}") ms); Standby $(m "${s_rps[@]}") durable deliveries/s (p99 $(m "${s_p99[@]}") ms, peak RSS $(( $(m "${s_rss[@]}") / 1024 )) MB); ratio $(m "${ratios[@]}")"
