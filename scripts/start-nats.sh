#!/usr/bin/env bash
# Starts a throw-away NATS server with JetStream for the tests (installing Debian's nats-server
# when missing) and prints the URL to use, e.g.:  export OUTBOX_NATS_URL=$(scripts/start-nats.sh)
# The data folder lives under .test-servers/ and is recreated on each start.
# Environment: OUTBOX_NATS_PORT (default 54222).
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$OUTBOX_ROOT"

port="${OUTBOX_NATS_PORT:-54222}"
root=$(server_root nats "$port")
[ -n "$(nats_server)" ] || apt_install nats-server

# Stop a server left over from an earlier run on this folder.
stop_pid_file "$root/server.pid" TERM 10
require_free_port "$port" OUTBOX_NATS_PORT
rm -rf "$root"
mkdir -p "$root/data"
scripts/run-nats.sh "$port"
echo "nats://127.0.0.1:$port"
