#!/usr/bin/env bash
# Runs nats-server with JetStream on the data folder scripts/start-nats.sh created for port $1 and
# waits until it accepts connections. Used by start-nats.sh and restart-nats.sh; not meant to be
# called alone.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
port="$1"
root=$(server_root nats "$port")
# A server still on the port (one whose pid file was lost) would answer the wait below while the
# new one fails to bind: the start would look like a success.
require_free_port "$port" OUTBOX_NATS_PORT
# Detached fully (setsid, no inherited output): the server outlives this script. JetStream keeps
# its streams in files under the data folder, so a restart keeps what was stored.
setsid "$(nats_server)" --addr 127.0.0.1 --port "$port" --jetstream --store_dir "$root/data" \
  </dev/null >>"$root/server.log" 2>&1 &
echo $! > "$root/server.pid"
wait_for "port_answers $port" 30 "nats-server on port $port" "$root/server.log"
