#!/usr/bin/env bash
# Restarts the test PostgreSQL that scripts/start-postgres.sh started on port $1 (default 55432),
# as a database restart in production would: every connection is dropped.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
port="${1:-55432}"
runuser -u postgres -- "$(postgres_bin)/pg_ctl" -D "$(server_root postgres "$port")/data" -m fast -w -t 30 restart >/dev/null
