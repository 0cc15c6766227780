#!/usr/bin/env bash
# Runs SecantusDB on the data folder scripts/start-mongo.sh created for port $1 and waits until it
# accepts connections. Used by start-mongo.sh and restart-mongo.sh; not meant to be called alone.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
port="$1"
root=$(server_root mongo "$port")
venv="$OUTBOX_ROOT/.test-servers/venv-secantus"
# Detached fully (setsid, no inherited output): the server outlives this script.
# A server still on the port (one whose pid file was lost) would answer the wait below while the
# new one fails to bind: the start would look like a success.
require_free_port "$port" OUTBOX_MONGO_PORT
setsid "$venv/bin/secantusd-py" --host 127.0.0.1 --port "$port" --storage-path "$root/data" --sync-on-commit \
  </dev/null >>"$root/server.log" 2>&1 &
echo $! > "$root/server.pid"
wait_for "port_answers $port" 30 "SecantusDB on port $port" "$root/server.log"
