#!/usr/bin/env bash
# Starts a throw-away PostgreSQL 15 for the tests (installing it with apt-get when missing) and
# prints the URL to use, e.g.:  export OUTBOX_POSTGRES_URL=$(scripts/start-postgres.sh)
# The data folder lives under .test-servers/ and is recreated on each start.
# Environment: OUTBOX_POSTGRES_PORT (default 55432); OUTBOX_DURABLE=1 keeps fsync on, as
# production servers run (the tests turn it off: they never need the data after a power cut).
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$OUTBOX_ROOT"

port="${OUTBOX_POSTGRES_PORT:-55432}"
root=$(server_root postgres "$port")

bin=$(postgres_bin)
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
  apt_install postgresql
  bin=$(postgres_bin)
fi
id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql postgres

# Stop a server left over from an earlier run on this folder.
if [ -f "$root/data/postmaster.pid" ]; then
  runuser -u postgres -- "$bin/pg_ctl" -D "$root/data" -m immediate stop >/dev/null 2>&1 || true
fi
require_free_port "$port" OUTBOX_POSTGRES_PORT
rm -rf "$root"
mkdir -p "$root"
chown postgres "$root"
# The parent folders must let the postgres user reach its data folder.
dir="$root"; while [ "$dir" != "/" ]; do chmod o+x "$dir" 2>/dev/null || true; dir=$(dirname "$dir"); done

runuser -u postgres -- "$bin/initdb" -D "$root/data" -A trust -U postgres --no-sync >/dev/null
durability="-c fsync=off"
[ "${OUTBOX_DURABLE:-0}" = "1" ] && durability="-c fsync=on -c synchronous_commit=on"
runuser -u postgres -- "$bin/pg_ctl" -D "$root/data" -l "$root/server.log" -w -t 30 \
  -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$root $durability -c max_connections=200" start >/dev/null
runuser -u postgres -- "$bin/createdb" -h 127.0.0.1 -p "$port" outbox_test
echo "postgres://postgres@127.0.0.1:$port/outbox_test"
