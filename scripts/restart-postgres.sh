#!/usr/bin/env bash
# Restarts the test PostgreSQL that scripts/start-postgres.sh started on port $1 (default 55432),
# as a database restart in production would: every connection is dropped.
set -euo pipefail
cd "$(dirname "$0")/.."
port="${1:-55432}"
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
runuser -u postgres -- "$bin/pg_ctl" -D ".test-servers/postgres-$port/data" -m fast -w -t 30 restart >/dev/null
