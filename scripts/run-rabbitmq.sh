#!/usr/bin/env bash
# Runs RabbitMQ on the folder scripts/start-rabbitmq.sh created for port $1 and waits until it
# takes AMQP connections. Used by start-rabbitmq.sh and restart-rabbitmq.sh; not meant to be
# called alone.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
port="$1"
root=$(server_root rabbitmq "$port")
# A node of its own: name, ports, data, logs and Erlang cookie all under $root, so it shares
# nothing with a system RabbitMQ (a crash dump too, not the working folder). The distribution
# port must differ from the AMQP one.
export HOME="$root" RABBITMQ_NODENAME="outbox$port@localhost" RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
  RABBITMQ_NODE_PORT="$port" RABBITMQ_DIST_PORT=$((port + 1)) RABBITMQ_MNESIA_BASE="$root/mnesia" \
  RABBITMQ_LOG_BASE="$root/log" RABBITMQ_PID_FILE="$root/rabbitmq.pid" RABBITMQ_ENABLED_PLUGINS_FILE="$root/enabled_plugins" \
  RABBITMQ_CONFIG_FILE="$root/rabbitmq" RABBITMQ_ADVANCED_CONFIG_FILE="$root/advanced.config" \
  ERL_CRASH_DUMP="$root/erl_crash.dump"
# A node still on the port (one whose pid file was lost) would answer the wait below while the
# new node fails on the taken distribution port: the start would look like a success.
require_free_port "$port" OUTBOX_AMQP_PORT
# Detached fully (setsid, no inherited output): the server outlives this script.
setsid /usr/lib/rabbitmq/bin/rabbitmq-server </dev/null >>"$root/server.log" 2>&1 &
echo $! > "$root/server.pid"
wait_for "port_answers $port" 60 "RabbitMQ on port $port" "$root/server.log"
