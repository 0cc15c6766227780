#!/usr/bin/env bash
# Starts a throw-away MongoDB-compatible server for the tests and prints the URL to use, e.g.:
#   export OUTBOX_MONGO_URL=$(scripts/start-mongo.sh)
# No mongod can be installed on Debian 12 here; the server is SecantusDB (PyPI; a test tool only,
# never linked), installed into a virtualenv under .test-servers/ on first use. It answers as the
# single-node replica set "secantus" and runs multi-document transactions and change streams.
# Environment: OUTBOX_MONGO_PORT (default 57017).
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$OUTBOX_ROOT"

port="${OUTBOX_MONGO_PORT:-57017}"
root=$(server_root mongo "$port")
venv="$OUTBOX_ROOT/.test-servers/venv-secantus"

if [ ! -x "$venv/bin/secantusd-py" ]; then
  echo "Installing SecantusDB into $venv" >&2
  python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || apt_install python3-venv
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q 'secantusdb==0.7.0b3' >&2
fi

# Stop a server left over from an earlier run on this folder.
stop_pid_file "$root/server.pid" TERM 10
require_free_port "$port" OUTBOX_MONGO_PORT
rm -rf "$root"
mkdir -p "$root/data"
scripts/run-mongo.sh "$port"
echo "mongodb://127.0.0.1:$port/outbox_test?replicaSet=secantus&directConnection=true"
