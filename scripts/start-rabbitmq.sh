#!/usr/bin/env bash
# Starts a throw-away RabbitMQ for the tests (installing Debian's rabbitmq-server when missing)
# and prints the URL to use, e.g.:  export OUTBOX_AMQP_URL=$(scripts/start-rabbitmq.sh)
# The folder lives under .test-servers/ and is recreated on each start; the user is guest/guest
# (RabbitMQ allows it from localhost only).
# Environment: OUTBOX_AMQP_PORT (default 55672; the next port is the node's distribution port).
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$OUTBOX_ROOT"

port="${OUTBOX_AMQP_PORT:-55672}"
root=$(server_root rabbitmq "$port")
[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || apt_install rabbitmq-server
# Debian's package may start a system node; it is not ours to stop, and it does not use our ports.

# Stop a server left over from an earlier run on this folder.
stop_pid_file "$root/rabbitmq.pid" TERM 10
stop_pid_file "$root/server.pid" TERM 10
require_free_port "$port" OUTBOX_AMQP_PORT
rm -rf "$root"
mkdir -p "$root/mnesia" "$root/log"
echo "outbox-test-cookie-$port" > "$root/.erlang.cookie"
chmod 600 "$root/.erlang.cookie"
printf 'listeners.tcp.default = %s\nloopback_users = none\n' "$port" > "$root/rabbitmq.conf"
echo "[]." > "$root/enabled_plugins"
scripts/run-rabbitmq.sh "$port"
echo "amqp://guest:guest@127.0.0.1:$port"
