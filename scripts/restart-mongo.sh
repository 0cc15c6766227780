#!/usr/bin/env bash
# Restarts the test MongoDB-compatible server that scripts/start-mongo.sh started on port $1
# (default 57017): every connection is dropped. With "kill" as $2 it is killed with SIGKILL.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
port="${1:-57017}"
signal=TERM; [ "${2:-}" = "kill" ] && signal=KILL
stop_pid_file "$(server_root mongo "$port")/server.pid" "$signal" 30
"$OUTBOX_ROOT/scripts/run-mongo.sh" "$port"
