#!/usr/bin/env bash
# Runs SecantusDB on the data folder scripts/start-mongo.sh created for port $1 and waits until it
# accepts connections. Used by start-mongo.sh and restart-mongo.sh; not meant to be called alone.
set -euo pipefail
cd "$(dirname "$0")/.."
port="$1"
root="$(pwd)/.test-servers/mongo-$port"
venv="$(pwd)/.test-servers/venv-secantus"
# Detached fully (setsid, no inherited output): the server outlives this script.
setsid "$venv/bin/secantusd-py" --host 127.0.0.1 --port "$port" --storage-path "$root/data" --sync-on-commit \
  </dev/null >>"$root/server.log" 2>&1 &
echo $! > "$root/server.pid"
for _ in $(seq 1 300); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then exit 0; fi
  sleep 0.1
done
echo "SecantusDB did not start on port $port; see $root/server.log" >&2
exit 1
