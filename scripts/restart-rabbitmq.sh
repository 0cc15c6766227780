#!/usr/bin/env bash
# Restarts the test RabbitMQ that scripts/start-rabbitmq.sh started on port $1 (default 55672):
# every connection is dropped; durable exchanges, queues and persistent messages stay. With
# "kill" as $2 it is killed with SIGKILL; with "stop" it is only stopped (start it again with
# "start").
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
port="${1:-55672}"
root=$(server_root rabbitmq "$port")
# The Erlang VM's own pid (rabbitmq.pid) is the server; server.pid is the script that started it.
stop_node() {
  # A node with many persistent messages may take a minute to stop on SIGTERM: 10 s, then SIGKILL.
  stop_pid_file "$root/rabbitmq.pid" "$1" 10
  stop_pid_file "$root/server.pid" TERM 10
  rm -f "$root/rabbitmq.pid"
}
case "${2:-}" in
  kill) stop_node KILL ;;
  start) ;;
  stop) stop_node TERM; exit 0 ;;
  *) stop_node TERM ;;
esac
"$OUTBOX_ROOT/scripts/run-rabbitmq.sh" "$port"
