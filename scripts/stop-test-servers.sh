#!/usr/bin/env bash
# Stops the servers scripts/start-*.sh started.
set -uo pipefail
cd "$(dirname "$0")/.."
for data in .test-servers/postgres-*/data; do
  [ -f "$data/postmaster.pid" ] || continue
  bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  runuser -u postgres -- "$bin/pg_ctl" -D "$data" -m fast stop >/dev/null 2>&1 || true
done
