#!/usr/bin/env bash
# Restarts the test NATS server that scripts/start-nats.sh started on port $1 (default 54222):
# every connection is dropped, the streams stay. With "kill" as $2 it is killed with SIGKILL.
# With "stop" as $2 it is only stopped (an outage; start it again with "start").
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
port="${1:-54222}"
root=$(server_root nats "$port")
case "${2:-}" in
  kill) stop_pid_file "$root/server.pid" KILL 30 ;;
  start) ;;
  stop) stop_pid_file "$root/server.pid" TERM 30; exit 0 ;;
  *) stop_pid_file "$root/server.pid" TERM 30 ;;
esac
"$OUTBOX_ROOT/scripts/run-nats.sh" "$port"
