#!/usr/bin/env bash
# Starts a throw-away PostgreSQL 15 for the tests (installing it with apt-get when missing) and
# prints the URL to use, e.g.:  export OUTBOX_POSTGRES_URL=$(scripts/start-postgres.sh)
# The data folder lives under .test-servers/ and is recreated on each start.
# Environment: OUTBOX_POSTGRES_PORT (default 55432).
set -euo pipefail
cd "$(dirname "$0")/.."

port="${OUTBOX_POSTGRES_PORT:-55432}"
root="$(pwd)/.test-servers/postgres-$port"

bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
  echo "Installing PostgreSQL" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >/dev/null
  bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
fi
id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql postgres

# Stop a server left over from an earlier run on this folder.
if [ -f "$root/data/postmaster.pid" ]; then
  runuser -u postgres -- "$bin/pg_ctl" -D "$root/data" -m immediate stop >/dev/null 2>&1 || true
fi
if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
  echo "Port $port is taken by another program; set OUTBOX_POSTGRES_PORT to a free port." >&2
  exit 1
fi
rm -rf "$root"
mkdir -p "$root"
chown postgres "$root"
# The parent folders must let the postgres user reach its data folder.
dir="$root"; while [ "$dir" != "/" ]; do chmod o+x "$dir" 2>/dev/null || true; dir=$(dirname "$dir"); done

runuser -u postgres -- "$bin/initdb" -D "$root/data" -A trust -U postgres --no-sync >/dev/null
runuser -u postgres -- "$bin/pg_ctl" -D "$root/data" -l "$root/server.log" -w -t 30 \
  -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$root -c fsync=off -c max_connections=200" start >/dev/null
runuser -u postgres -- "$bin/createdb" -h 127.0.0.1 -p "$port" outbox_test
echo "postgres://postgres@127.0.0.1:$port/outbox_test"
