#!/usr/bin/env bash
# Restarts the test PostgreSQL that scripts/start-postgres.sh started on port $1 (default 55432),
# as a database restart in production would: every connection is dropped. With a number of
# seconds as $2 the server stays down that long before it starts again (an outage).
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
port="${1:-55432}"
down="${2:-}"
data="$(server_root postgres "$port")/data"
if [ -z "$down" ]; then
  runuser -u postgres -- "$(postgres_bin)/pg_ctl" -D "$data" -m fast -w -t 30 restart >/dev/null
else
  # The server's own record of its options (port, sockets…), without the program and its -D.
  options=$(sed -e 's/^[^ ]* "-D" "[^"]*" *//' "$data/postmaster.opts")
  runuser -u postgres -- "$(postgres_bin)/pg_ctl" -D "$data" -m fast -w -t 30 stop >/dev/null
  sleep "$down"
  runuser -u postgres -- "$(postgres_bin)/pg_ctl" -D "$data" -l "$(dirname "$data")/server.log" -w -t 30 -o "$options" start >/dev/null
fi
