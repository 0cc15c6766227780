#!/usr/bin/env bash
# Stops the servers scripts/start-*.sh started.
set -uo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)/.test-servers"
if [ -f "$root/postgres/data/postmaster.pid" ]; then
  bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  runuser -u postgres -- "$bin/pg_ctl" -D "$root/postgres/data" -m fast stop >/dev/null 2>&1 || true
fi
