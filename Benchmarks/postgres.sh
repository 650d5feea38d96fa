#!/usr/bin/env bash
# PostgreSQL mode beside SQLite mode, in the same run, on loopback with wrk:
#   Benchmarks/postgres.sh                      # 3 runs, medians printed
#   RUNS=5 DURATION=20s Benchmarks/postgres.sh
# SQLite: one instance, 32 connections. PostgreSQL: a private server (scripts/postgres.sh, fsync on)
# and three instances on it, the same 32 connections spread over them (11 + 11 + 10, one wrk each);
# then one instance on it with all 32, which tells the database's own cost from what sharing the
# deployment's lock between instances costs (three batches take turns where one would do).
# Both report durable webhook deliveries/s and p99; PostgreSQL also the decision latency across
# instances (two failures sent to one instance, the third to another, the command read from the
# third). The load generator, the database and the servers share this machine's cores.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
DURATION=${DURATION:-10s}
PORT=${PORT:-18090}
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
[ -n "${BIN:-}" ] || BIN=$(scripts/build-release.sh)

. Benchmarks/server.sh
pg_dir=$(mktemp -d -t standby-bench-pg.XXXXXX)
eval "$(scripts/postgres.sh start "$pg_dir")"
instances=()
cleanup_all() {
    for pid in "${instances[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    scripts/postgres.sh stop "$pg_dir"
    cleanup
}
trap cleanup_all EXIT

write_config
pg_port=$(cat "$pg_dir/port")

# Starts instance N on database URL (a fresh database per run) at PORT+N.
start_instance() {
    local n=$1 url=$2 config="$work/standby-$1.yaml"
    sed -e "s#^server: .*#server: { host: 127.0.0.1, port: $((PORT + n)) }#" \
        -e "s#^database: .*#database: { url: \"$url\" }\ncluster: { instance: bench-$n, leaseTTL: 5s }#" \
        "$work/standby.yaml" > "$config"
    "$BIN" serve --config "$config" 2> "$work/standby-$n.log" &
    instances+=($!)
    for _ in $(seq 1 100); do
        curl -fsS "http://127.0.0.1:$((PORT + n))/readyz" >/dev/null 2>&1 && return
        sleep 0.1
    done
    echo "instance $n did not start" >&2; cat "$work/standby-$n.log" >&2; exit 1
}

stop_instances() {
    for pid in "${instances[@]}"; do kill "$pid"; wait "$pid" 2>/dev/null || true; done
    instances=()
}

# Creates database NAME on the private server; prints its URL.
fresh_database() {
    local psql_bin
    psql_bin=$(command -v psql || ls /usr/lib/postgresql/*/bin/psql | tail -1)
    "$psql_bin" -q -h 127.0.0.1 -p "$pg_port" -U standby -c "CREATE DATABASE $1" standby
    echo "postgres://standby@127.0.0.1:$pg_port/$1?sslmode=disable"
}

# wrk with C connections at PORT+N; prints "rps p99_ms".
wrk_at() {
    local n=$1 c=$2 out="$work/wrk-$1.txt"
    BENCH_PREFIX="i$n-" wrk -t1 -c"$c" -d"$DURATION" --latency -s Benchmarks/webhook.lua \
        "http://127.0.0.1:$((PORT + n))" > "$out"
    echo "$(awk '/Requests\/sec/ {print $2}' "$out") $(to_ms "$(awk '$1=="99%" {print $2}' "$out")")"
}

decision_across() {
    python3 - "$PORT" "$STANDBY_API_TOKEN" "$1" <<'PY'
import http.client, sys, time
from datetime import datetime, timezone
port, token, i = int(sys.argv[1]), sys.argv[2], sys.argv[3]
headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
connections = [http.client.HTTPConnection("127.0.0.1", port + n) for n in (1, 2, 3)]
def report(conn):
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    body = '{"hub":"primary-%s","source":"p","outcome":"failure","observedAt":"%s"}' % (i, now)
    conn.request("POST", "/v1/health-reports", body, headers)
    response = conn.getresponse(); response.read()
    assert response.status < 300, response.status
for _ in range(2):
    report(connections[0]); time.sleep(0.01)
time.sleep(0.01)
started = time.perf_counter()
report(connections[1])
while time.perf_counter() - started < 10:
    connections[2].request("GET", f"/v1/commands?deployment=decision-{i}&status=pending", headers=headers)
    response = connections[2].getresponse(); text = response.read().decode()
    if "route_traffic" in text:
        break
else:
    sys.exit(f"no route_traffic command for decision-{i} within 10 s")
print(f"{(time.perf_counter() - started) * 1000:.2f}")
PY
}

echo "machine: $(nproc) cores; $DURATION per load; $RUNS runs; SQLite synchronous=FULL, PostgreSQL fsync on"
declare -a s_rps s_p99 p_rps p_p99 o_rps o_p99 decisions
for run in $(seq 1 "$RUNS"); do
    # SQLite: one instance.
    start
    sleep 1
    read -r rps p99 < <(wrk_at 0 32)
    stop
    echo "run $run sqlite:   $rps deliveries/s, p99 $p99 ms"
    s_rps+=("$rps"); s_p99+=("$p99")
    # PostgreSQL: a fresh database, three instances.
    url=$(fresh_database "bench_${run}_$RANDOM")
    instances=()
    for n in 1 2 3; do start_instance "$n" "$url"; done
    sleep 1
    wrk_at 1 11 > "$work/r1" &
    w1=$!
    wrk_at 2 11 > "$work/r2" &
    w2=$!
    wrk_at 3 10 > "$work/r3" &
    w3=$!
    wait "$w1" "$w2" "$w3"
    rps=$(cat "$work"/r1 "$work"/r2 "$work"/r3 | awk '{s += $1} END {printf "%.2f", s}')
    p99=$(cat "$work"/r1 "$work"/r2 "$work"/r3 | awk '$2 > m {m = $2} END {print m}')
    echo "run $run postgres: $rps deliveries/s over 3 instances, p99 $p99 ms (the slowest instance's)"
    p_rps+=("$rps"); p_p99+=("$p99")
    for i in $(seq 1 5); do decisions+=("$(decision_across $(( (run - 1) * 5 + i )))"); done
    stop_instances
    # PostgreSQL: a fresh database, one instance with every connection.
    start_instance 1 "$(fresh_database "bench_${run}_one_$RANDOM")"
    sleep 1
    read -r rps p99 < <(wrk_at 1 32)
    stop_instances
    echo "run $run postgres: $rps deliveries/s on 1 instance, p99 $p99 ms"
    o_rps+=("$rps"); o_p99+=("$p99")
done
echo
echo "median of $RUNS runs:"
echo "  SQLite, 1 instance:       $(printf '%s\n' "${s_rps[@]}" | median) deliveries/s, p99 $(printf '%s\n' "${s_p99[@]}" | median) ms"
echo "  PostgreSQL, 3 instances:  $(printf '%s\n' "${p_rps[@]}" | median) deliveries/s, p99 $(printf '%s\n' "${p_p99[@]}" | median) ms"
echo "  PostgreSQL, 1 instance:   $(printf '%s\n' "${o_rps[@]}" | median) deliveries/s, p99 $(printf '%s\n' "${o_p99[@]}" | median) ms"
echo "  decision latency across instances: $(printf '%s\n' "${decisions[@]}" | median) ms"
s_median=$(printf '%s\n' "${s_rps[@]}" | median)
echo "  PostgreSQL / SQLite: $(printf '%s\n' "${p_rps[@]}" | median | awk -v s="$s_median" '{printf "%.2f", $1 / s}') with 3 instances, $(printf '%s\n' "${o_rps[@]}" | median | awk -v s="$s_median" '{printf "%.2f", $1 / s}') with 1"
