#!/usr/bin/env bash
# Work per durable webhook delivery, in CPU instructions counted by callgrind across all of the
# server's threads. Unlike requests/s, the count does not move with what else the machine is doing,
# so two builds can be compared on a shared machine:
#   Benchmarks/instructions.sh                 # the current source, built as it ships
#   BIN=path/to/standby COUNT=2000 Benchmarks/instructions.sh
#   KEEP=/tmp/profile Benchmarks/instructions.sh   # keeps the callgrind dumps for callgrind_annotate
#   SEED=big.sqlite Benchmarks/instructions.sh     # on a database filled by Benchmarks/seed.py
#   BENCH_PATH=/nowhere Benchmarks/instructions.sh # the HTTP floor: a route that does not exist
# The server runs under valgrind (about 50 times slower); a warm-up of WARMUP deliveries is not
# counted. valgrind 3.19 cannot read DWARF 5, so a copy of the binary without debug info is run.
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${COUNT:-1500}
WARMUP=${WARMUP:-300}
CONNECTIONS=${CONNECTIONS:-16}
PORT=${PORT:-18094}
for tool in valgrind callgrind_control callgrind_annotate objcopy python3; do
    command -v "$tool" >/dev/null || { echo "$tool is needed: apt-get install valgrind binutils python3" >&2; exit 1; }
done
[ -n "${BIN:-}" ] || BIN=$(scripts/build-release.sh)

. Benchmarks/server.sh
objcopy --strip-debug "$BIN" "$work/standby"
BIN=$work/standby
LAUNCH="valgrind --tool=callgrind --callgrind-out-file=$work/callgrind.out"
START_SECONDS=120
write_config
start
python3 Benchmarks/deliveries.py "$PORT" "$WARMUP" "$CONNECTIONS"
callgrind_control --zero "$server" >/dev/null
python3 Benchmarks/deliveries.py "$PORT" "$COUNT" "$CONNECTIONS"
callgrind_control --dump "$server" >/dev/null
stop
# The dump holds what ran between zeroing and dumping; the file written at exit, the shutdown.
counted=$(for file in "$work"/callgrind.out.*; do
    callgrind_annotate "$file" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }'
done | sort -n | tail -1)
[ -n "$counted" ] || { echo "callgrind left no dump of the counted deliveries" >&2; cat "$work/standby.log" >&2; exit 1; }
if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP" && cp "$work"/callgrind.out.* "$KEEP"/; fi
echo "$COUNT deliveries over $CONNECTIONS connections: $((counted / COUNT)) instructions per delivery"
