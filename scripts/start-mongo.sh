#!/usr/bin/env bash
# Starts a throw-away MongoDB-compatible server for the tests and prints the URL to use, e.g.:
#   export OUTBOX_MONGO_URL=$(scripts/start-mongo.sh)
# No mongod can be installed on Debian 12 here; the server is SecantusDB (PyPI; a test tool only,
# never linked), installed into a virtualenv under .test-servers/ on first use. It answers as the
# single-node replica set "secantus" and runs multi-document transactions and change streams.
# Environment: OUTBOX_MONGO_PORT (default 57017).
set -euo pipefail
cd "$(dirname "$0")/.."

port="${OUTBOX_MONGO_PORT:-57017}"
root="$(pwd)/.test-servers/mongo-$port"
venv="$(pwd)/.test-servers/venv-secantus"

if [ ! -x "$venv/bin/secantusd-py" ]; then
  echo "Installing SecantusDB into $venv" >&2
  if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq python3-venv >/dev/null
  fi
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q 'secantusdb==0.7.0b3' >&2
fi

# Stop a server left over from an earlier run on this folder.
if [ -f "$root/server.pid" ]; then
  kill "$(cat "$root/server.pid")" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$(cat "$root/server.pid")" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$(cat "$root/server.pid")" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$(cat "$root/server.pid")" 2>/dev/null || break; sleep 0.1; done
fi
if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
  echo "Port $port is taken by another program; set OUTBOX_MONGO_PORT to a free port." >&2
  exit 1
fi
rm -rf "$root"
mkdir -p "$root/data"
scripts/run-mongo.sh "$port"
echo "mongodb://127.0.0.1:$port/outbox_test?replicaSet=secantus&directConnection=true"
