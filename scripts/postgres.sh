#!/usr/bin/env bash
# A private PostgreSQL server for the tests and benchmarks: `initdb` in a temporary folder, started
# on a free loopback port, never a system service, and stopped (its folder removed) afterwards.
#
#   scripts/postgres.sh start [DIR]   initialise and start a server in DIR (default: a new temp folder);
#                                     prints `export STANDBY_TEST_POSTGRES_URL=...` and `export
#                                     STANDBY_TEST_POSTGRES_DIR=...` lines for `eval`
#   scripts/postgres.sh stop DIR      stop the server of DIR and remove DIR
#   scripts/postgres.sh run CMD...    start one, run CMD with STANDBY_TEST_POSTGRES_URL set, stop it
#   scripts/postgres.sh replica PRIMARY_DIR DIR
#                                     start a streaming standby of the server in PRIMARY_DIR (which then
#                                     waits for it: synchronous replication); prints its port
#   scripts/postgres.sh promote DIR   promote the standby in DIR to primary
#   scripts/postgres.sh kill DIR      stop the server in DIR at once (immediate: like a crash)
#   scripts/postgres.sh pause DIR / resume DIR   stop the server in DIR cleanly / start it again
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
    # Loopback replication for a streaming standby (`replica`), trusted like every local connection.
    echo "host replication standby 127.0.0.1/32 trust" >>"$dir/data/pg_hba.conf"
    # Loopback only and fsync on (the tests check durability for real); a standby copies these.
    printf '%s\n' "listen_addresses = '127.0.0.1'" "max_connections = 300" "fsync = on" "wal_level = replica" \
        >>"$dir/data/postgresql.conf"
    # A port and a socket folder of its own.
    as_server_user "$pg_ctl" --pgdata="$dir/data" --log="$dir/server.log" --wait --timeout=60 \
        -o "-c port=$port -c unix_socket_directories=$dir" start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
    as_server_user "$(find_bin createdb)" --host=127.0.0.1 --port="$port" --username=standby standby
    echo "$port" >"$dir/port"
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

port_of() {
    sed -n 4p "$1/data/postmaster.pid" 2>/dev/null || cat "$1/port"
}

replica() {
    local primary=${1:?usage: postgres.sh replica PRIMARY_DIR DIR} dir=${2:?usage: postgres.sh replica PRIMARY_DIR DIR}
    local port primary_port
    primary_port=$(port_of "$primary")
    port=$(free_port)
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    as_server_user "$(find_bin pg_basebackup)" --host=127.0.0.1 --port="$primary_port" --username=standby \
        --pgdata="$dir/data" --write-recovery-conf --wal-method=stream >/dev/null
    # The primary waits for this standby before it acknowledges a commit.
    as_server_user "$(find_bin psql)" --host=127.0.0.1 --port="$primary_port" --username=standby --quiet \
        -c "ALTER SYSTEM SET synchronous_standby_names = '*'" -c "SELECT pg_reload_conf()" standby >/dev/null
    as_server_user "$(find_bin pg_ctl)" --pgdata="$dir/data" --log="$dir/server.log" --wait --timeout=60 \
        -o "-c port=$port -c unix_socket_directories=$dir" start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
    echo "$port" >"$dir/port"
    echo "$port"
}

case "${1:-}" in
replica) replica "${2:-}" "${3:-}" ;;
promote) as_server_user "$(find_bin pg_ctl)" --pgdata="${2:?}/data" --wait promote >/dev/null ;;
kill)
    port_of "${2:?}" >"$2/port"
    as_server_user "$(find_bin pg_ctl)" --pgdata="$2/data" --mode=immediate --wait stop >/dev/null
    ;;
pause)
    port_of "${2:?}" >"$2/port"
    as_server_user "$(find_bin pg_ctl)" --pgdata="$2/data" --mode=fast --wait stop >/dev/null
    ;;
resume)
    as_server_user "$(find_bin pg_ctl)" --pgdata="${2:?}/data" --log="$2/server.log" --wait --timeout=60 \
        -o "-c port=$(cat "$2/port") -c unix_socket_directories=$2" start >/dev/null
    ;;
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
