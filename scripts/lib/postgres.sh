# shellcheck shell=bash
# A throwaway PostgreSQL server for the tests (the namespace store's PostgreSQL suite), from
# Debian's postgresql package: a new cluster in a temporary directory, listening on 127.0.0.1
# on a free port (and a socket in that directory), trust authentication, fsync off (tests;
# TSMP_PG_FSYNC=on for benchmarks).
#
#   pg_start   start it, create database tsmp_test, export TSMP_TEST_POSTGRES_URL
#              (postgresql://postgres@127.0.0.1:PORT/tsmp_test?tlsmode=disable)
#   pg_stop    stop it and remove its directory (safe to call twice, or when it never started)
#
# Callers trap: `pg_start && trap pg_stop EXIT`. initdb refuses to run as root, so as root the
# server runs as the postgres user (runuser); otherwise as the calling user.

TSMP_PG_DIR="" TSMP_PG_BIN="" TSMP_PG_PORT=""

# pg_bin_dir: the bin directory of the newest installed server version.
pg_bin_dir() {
    local dir best=""
    for dir in /usr/lib/postgresql/*/bin; do
        [[ -x $dir/initdb && -x $dir/pg_ctl ]] && best=$dir
    done
    [[ -n $best ]] || { tsmp_log "PostgreSQL server not installed (apt-get install postgresql)"; return 1; }
    printf '%s' "$best"
}

# pg_as_owner CMD...: run as the cluster's owner.
pg_as_owner() {
    if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

pg_start() {
    [[ -z $TSMP_PG_DIR ]] || { tsmp_log "pg_start: already running in $TSMP_PG_DIR"; return 1; }
    TSMP_PG_BIN=$(pg_bin_dir) || return 1
    if [[ $(id -u) == 0 ]] && ! id postgres >/dev/null 2>&1; then
        tsmp_log "pg_start: no postgres user to run the server as (install the postgresql package)"
        return 1
    fi
    TSMP_PG_DIR=$(mktemp -d /tmp/tsmp-pg.XXXXXX)
    [[ $(id -u) == 0 ]] && chown postgres: "$TSMP_PG_DIR"
    if ! pg_as_owner "$TSMP_PG_BIN/initdb" -D "$TSMP_PG_DIR/data" -U postgres --auth=trust -E UTF8 \
        --no-sync >"$TSMP_PG_DIR/initdb.log" 2>&1; then
        tsmp_log "pg_start: initdb failed:"
        tail -n 20 "$TSMP_PG_DIR/initdb.log" >&2
        pg_stop
        return 1
    fi
    local attempt
    for attempt in 1 2 3; do
        TSMP_PG_PORT=$(pg_free_port)
        if pg_as_owner "$TSMP_PG_BIN/pg_ctl" -D "$TSMP_PG_DIR/data" -l "$TSMP_PG_DIR/server.log" -w -t 30 \
            -o "-c listen_addresses=127.0.0.1 -p $TSMP_PG_PORT -k $TSMP_PG_DIR -c fsync=${TSMP_PG_FSYNC:-off} -c max_connections=200" \
            start >/dev/null; then
            break
        fi
        ((attempt == 3)) && {
            tsmp_log "pg_start: the server did not start:"
            tail -n 20 "$TSMP_PG_DIR/server.log" >&2
            pg_stop
            return 1
        }
    done
    if ! "$TSMP_PG_BIN/createdb" -h 127.0.0.1 -p "$TSMP_PG_PORT" -U postgres tsmp_test; then
        tsmp_log "pg_start: createdb failed"
        pg_stop
        return 1
    fi
    export TSMP_TEST_POSTGRES_URL="postgresql://postgres@127.0.0.1:$TSMP_PG_PORT/tsmp_test?tlsmode=disable"
    tsmp_log "PostgreSQL $("$TSMP_PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$TSMP_PG_PORT ($TSMP_PG_DIR)"
}

pg_stop() {
    [[ -n $TSMP_PG_DIR ]] || return 0
    if [[ -f $TSMP_PG_DIR/data/postmaster.pid ]]; then
        pg_as_owner "$TSMP_PG_BIN/pg_ctl" -D "$TSMP_PG_DIR/data" -m immediate -w -t 30 stop >/dev/null 2>&1 ||
            tsmp_log "pg_stop: pg_ctl stop failed (server log: $TSMP_PG_DIR/server.log)"
    fi
    rm -rf "$TSMP_PG_DIR"
    TSMP_PG_DIR="" TSMP_PG_PORT=""
    unset TSMP_TEST_POSTGRES_URL
}
