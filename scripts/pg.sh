#!/usr/bin/env bash
# A private PostgreSQL 15 cluster for tests and development.
#
#   scripts/pg.sh start DIR   initdb (first time) + start on a free loopback
#                             port; creates database lathe_test; prints its URL
#                             postgres://postgres@127.0.0.1:PORT/lathe_test as
#                             the only line on stdout and writes it to DIR/url.
#   scripts/pg.sh stop DIR    fast shutdown; a no-op when not running.
#
# Runs as root (the server runs as the `postgres` user via runuser) or as the
# postgres user itself. DIR holds data/, the unix socket, pg.log and url; it
# and its parents must be traversable by postgres (use e.g. mktemp -d under
# /tmp). Trust authentication, listening on 127.0.0.1 only. No systemd.
set -euo pipefail

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

log() { echo "pg.sh: $*" >&2; }
die() { log "$*"; exit 1; }

usage() { die "usage: $0 start|stop DIR"; }

[ $# -eq 2 ] || usage
cmd=$1
[ -n "$2" ] || usage
mkdir -p "$2"
DIR=$(cd "$2" && pwd)
DATA=$DIR/data

as_postgres() {
  if [ "$(id -un)" = postgres ]; then
    "$@"
  else
    runuser -u postgres -- "$@"
  fi
}

is_running() {
  [ -f "$DATA/PG_VERSION" ] && as_postgres "$PG_BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

start() {
  [ -x "$PG_BIN/initdb" ] || die "PostgreSQL 15 not found in $PG_BIN (apt-get install postgresql)"
  id postgres >/dev/null 2>&1 || die "no postgres user (apt-get install postgresql)"
  chmod 755 "$DIR"
  # Every parent must be traversable by postgres.
  local p=$DIR
  while [ "$p" != / ]; do
    p=$(dirname "$p")
    if ! as_postgres test -x "$p"; then die "postgres cannot traverse $p; use a directory under /tmp"; fi
  done
  chown postgres:postgres "$DIR"

  if is_running; then
    log "already running"
    [ -f "$DIR/url" ] || die "running but $DIR/url is missing"
    cat "$DIR/url"
    return
  fi
  if [ ! -f "$DATA/PG_VERSION" ]; then
    log "initdb $DATA"
    as_postgres "$PG_BIN/initdb" -D "$DATA" -A trust -U postgres -E UTF8 --locale=C.UTF-8 \
      --no-instructions >"$DIR/initdb.log" 2>&1 || { cat "$DIR/initdb.log" >&2; die "initdb failed"; }
  fi

  # The port is free when probed; another process may take it before the
  # server binds, so retry a few times with fresh ports.
  local port attempt
  for attempt in 1 2 3 4 5; do
    port=$(free_port)
    log "starting on 127.0.0.1:$port (attempt $attempt)"
    if as_postgres "$PG_BIN/pg_ctl" -D "$DATA" -l "$DIR/pg.log" -w -t 30 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $DIR" start >&2; then
      break
    fi
    port=
    tail -n 5 "$DIR/pg.log" >&2 || true
  done
  [ -n "$port" ] || die "could not start PostgreSQL; see $DIR/pg.log"

  local ready=
  for _ in $(seq 1 100); do
    if "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres; then ready=1; break; fi
    sleep 0.1
  done
  [ -n "$ready" ] || die "PostgreSQL did not become ready; see $DIR/pg.log"

  local exists
  exists=$("$PG_BIN/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -tAq \
    -c "SELECT 1 FROM pg_database WHERE datname = 'lathe_test'")
  if [ "$exists" != 1 ]; then
    "$PG_BIN/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -q \
      -c "CREATE DATABASE lathe_test" >&2
  fi
  local url="postgres://postgres@127.0.0.1:$port/lathe_test"
  echo "$url" >"$DIR/url"
  log "ready: $url"
  echo "$url"
}

stop() {
  if is_running; then
    log "stopping"
    as_postgres "$PG_BIN/pg_ctl" -D "$DATA" -m fast -w stop >&2
  else
    log "not running"
  fi
}

case $cmd in
  start) start ;;
  stop) stop ;;
  *) usage ;;
esac
