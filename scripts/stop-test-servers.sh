#!/usr/bin/env bash
# Stops the servers scripts/start-*.sh started.
set -uo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$OUTBOX_ROOT"
for data in .test-servers/postgres-*/data; do
  [ -f "$data/postmaster.pid" ] || continue
  runuser -u postgres -- "$(postgres_bin)/pg_ctl" -D "$data" -m fast stop >/dev/null 2>&1 || true
done
for pidfile in .test-servers/mariadb-*/server.pid .test-servers/mongo-*/server.pid .test-servers/nats-*/server.pid .test-servers/rabbitmq-*/rabbitmq.pid .test-servers/rabbitmq-*/server.pid .test-servers/prometheus-*/server.pid .test-servers/chromedriver-*/server.pid; do
  stop_pid_file "$pidfile" TERM 10
done
