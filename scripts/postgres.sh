#!/usr/bin/env bash
# A private PostgreSQL server for the queue's tests and benchmark, on 127.0.0.1 only.
#
#   scripts/postgres.sh          install (Debian's packages) if missing, initialise, start; print the URL
#   scripts/postgres.sh stop     stop the server
#   scripts/postgres.sh url      print the URL only
#
# Idempotent: running it again reuses the cluster and the running server. The cluster lives in
# .data/pg inside the project (or $COPILOT_PG_DIR); as root it runs as the `postgres` user, because
# initdb refuses root. Use it as: export COPILOT_TEST_PG_URL="$(scripts/postgres.sh)"
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PGDIR="${COPILOT_PG_DIR:-$ROOT/.data/pg}"
PORT="${COPILOT_PG_PORT:-55432}"
DB="copilot_test"
DB_USER="copilot"
DB_PASSWORD="copilot"
URL="postgresql+psycopg://${DB_USER}:${DB_PASSWORD}@127.0.0.1:${PORT}/${DB}"

log() { echo "postgres.sh: $*" >&2; }

find_bindir() {
  local pg_ctl
  pg_ctl="$(ls -d /usr/lib/postgresql/*/bin/pg_ctl 2>/dev/null | sort -V | tail -n 1 || true)"
  if [ -n "$pg_ctl" ]; then dirname "$pg_ctl"; fi
}

# Run a command as the cluster's owner: `postgres` when we are root, else ourselves.
as_owner() {
  if [ "$(id -u)" = "0" ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

BINDIR="$(find_bindir)"

case "${1:-start}" in
  stop)
    if [ -n "$BINDIR" ] && [ -f "$PGDIR/data/postmaster.pid" ]; then
      as_owner "$BINDIR/pg_ctl" -D "$PGDIR/data" -m fast -w stop >&2
    else
      log "not running"
    fi
    exit 0
    ;;
  url)
    echo "$URL"
    exit 0
    ;;
  start) ;;
  *)
    log "usage: scripts/postgres.sh [start|stop|url]"
    exit 2
    ;;
esac

if [ -z "$BINDIR" ]; then
  if [ "$(id -u)" != "0" ]; then
    log "PostgreSQL is not installed; run as root or: apt-get install -y postgresql"
    exit 1
  fi
  log "installing Debian's postgresql package"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update >&2
  apt-get install -y --no-install-recommends postgresql >&2
  BINDIR="$(find_bindir)"
fi

if [ "$(id -u)" = "0" ]; then
  id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
  mkdir -p "$PGDIR"
  chown postgres: "$PGDIR"
  # The server must reach its folder: every parent must be searchable by the postgres user.
  parent="$PGDIR"
  while [ "$parent" != "/" ]; do
    parent="$(dirname "$parent")"
    chmod o+x "$parent" 2>/dev/null || true
  done
else
  mkdir -p "$PGDIR"
fi

DATA="$PGDIR/data"
if [ ! -f "$DATA/PG_VERSION" ]; then
  log "initialising a cluster in $DATA"
  pwfile="$(mktemp)"
  echo "$DB_PASSWORD" >"$pwfile"
  chmod 644 "$pwfile"
  as_owner "$BINDIR/initdb" -D "$DATA" -U postgres --pwfile="$pwfile" \
    --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >&2
  rm -f "$pwfile"
  as_owner tee -a "$DATA/postgresql.conf" >/dev/null <<EOF
# copilot test server
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$PGDIR'
max_connections = 200
shared_buffers = 128MB
EOF
fi

if ! as_owner "$BINDIR/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
  rm -f "$DATA/postmaster.pid"
  log "starting the server on 127.0.0.1:$PORT"
  as_owner "$BINDIR/pg_ctl" -D "$DATA" -l "$PGDIR/server.log" -w -t 60 start >&2
fi

psql_owner() { as_owner "$BINDIR/psql" -h "$PGDIR" -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -qtA "$@"; }

if [ "$(psql_owner -c "SELECT 1 FROM pg_roles WHERE rolname = '$DB_USER'")" != "1" ]; then
  psql_owner -c "CREATE ROLE $DB_USER LOGIN PASSWORD '$DB_PASSWORD'" >&2
fi
if [ "$(psql_owner -c "SELECT 1 FROM pg_database WHERE datname = '$DB'")" != "1" ]; then
  psql_owner -c "CREATE DATABASE $DB OWNER $DB_USER" >&2
fi

echo "$URL"
