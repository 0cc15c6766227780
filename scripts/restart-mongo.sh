#!/usr/bin/env bash
# Restarts the test MongoDB-compatible server that scripts/start-mongo.sh started on port $1
# (default 57017): every connection is dropped. With "kill" as $2 it is killed with SIGKILL.
set -euo pipefail
cd "$(dirname "$0")/.."
port="${1:-57017}"
root="$(pwd)/.test-servers/mongo-$port"
pid=$(cat "$root/server.pid")
if [ "${2:-}" = "kill" ]; then kill -9 "$pid"; else kill "$pid"; fi
for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
scripts/run-mongo.sh "$port"
