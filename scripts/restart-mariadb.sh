#!/usr/bin/env bash
# Restarts the test MariaDB that scripts/start-mariadb.sh started on port $1 (default 53306), as a
# database restart in production would: every connection is dropped. With "kill" as $2 the server
# is killed with SIGKILL (a crash) instead of shut down cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."
port="${1:-53306}"
root="$(pwd)/.test-servers/mariadb-$port"
pid=$(cat "$root/server.pid")
if [ "${2:-}" = "kill" ]; then kill -9 "$pid"; else kill "$pid"; fi
for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
scripts/run-mariadb.sh "$port"
