#!/usr/bin/env bash
# Restarts the test MariaDB that scripts/start-mariadb.sh started on port $1 (default 53306), as a
# database restart in production would: every connection is dropped. With "kill" as $2 the server
# is killed with SIGKILL (a crash) instead of shut down cleanly.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
port="${1:-53306}"
signal=TERM; [ "${2:-}" = "kill" ] && signal=KILL
stop_pid_file "$(server_root mariadb "$port")/server.pid" "$signal" 30
"$OUTBOX_ROOT/scripts/run-mariadb.sh" "$port"
