#!/usr/bin/env bash
# A private PostgreSQL server for the tests and benchmarks: `initdb` in a temporary folder, started
# on a free loopback port, never a system service, and stopped (its folder removed) afterwards.
#
#   scripts/postgres.sh start [DIR]   initialise and start a server in DIR (default: a new temp folder);
#                                     prints `export STANDBY_TEST_POSTGRES_URL=...` and `export
#                                     STANDBY_TEST_POSTGRES_DIR=...` lines for `eval`
#   scripts/postgres.sh stop DIR      stop the server of DIR and remove DIR
#   scripts/postgres.sh run CMD...    start one, run CMD with STANDBY_TEST_POSTGRES_URL set, stop it
#
# The binaries come from Debian's `postgresql` package (found under /usr/lib/postgresql/*/bin when
# they are not on PATH). PostgreSQL refuses to run as root, so as root the server runs as the
# `postgres` user the package creates.
set -euo pipefail

find_bin() {
    if command -v "$1" >/dev/null 2>&1; then
        command -v "$1"
        return
    fi
    local candidate
    candidate=$(ls -d /usr/lib/postgresql/*/bin/"$1" 2>/dev/null | sort -V | tail -n 1)
    if [ -z "$candidate" ]; then
        echo "postgres.sh: $1 not found; install Debian's postgresql package" >&2
        exit 1
    fi
    echo "$candidate"
}

as_server_user() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

start() {
    local dir=${1:-$(mktemp -d -t standby-postgres.XXXXXX)}
    local initdb pg_ctl port
    initdb=$(find_bin initdb)
    pg_ctl=$(find_bin pg_ctl)
    port=$(free_port)
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    as_server_user "$initdb" --pgdata="$dir/data" --username=standby --auth=trust --encoding=UTF8 \
        --no-instructions >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    # Loopback only, a socket folder of its own, and fsync on: the tests check durability for real.
    as_server_user "$pg_ctl" --pgdata="$dir/data" --log="$dir/server.log" --wait --timeout=60 \
        -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir -c max_connections=200 -c fsync=on" \
        start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
    as_server_user "$(find_bin createdb)" --host=127.0.0.1 --port="$port" --username=standby standby
    echo "export STANDBY_TEST_POSTGRES_URL=postgres://standby@127.0.0.1:$port/standby?sslmode=disable"
    echo "export STANDBY_TEST_POSTGRES_DIR=$dir"
}

stop() {
    local dir=${1:?usage: postgres.sh stop DIR}
    if [ -d "$dir/data" ]; then
        as_server_user "$(find_bin pg_ctl)" --pgdata="$dir/data" --mode=fast --wait stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
}

case "${1:-}" in
start) start "${2:-}" ;;
stop) stop "${2:-}" ;;
run)
    shift
    eval "$(start)"
    trap 'stop "$STANDBY_TEST_POSTGRES_DIR"' EXIT
    "$@"
    ;;
*)
    echo "usage: postgres.sh start [DIR] | stop DIR | run CMD..." >&2
    exit 2
    ;;
esac
