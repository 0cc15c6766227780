#!/usr/bin/env bash
# Stops the servers scripts/start-*.sh started.
set -uo pipefail
cd "$(dirname "$0")/.."
for data in .test-servers/postgres-*/data; do
  [ -f "$data/postmaster.pid" ] || continue
  bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  runuser -u postgres -- "$bin/pg_ctl" -D "$data" -m fast stop >/dev/null 2>&1 || true
done
for pidfile in .test-servers/mariadb-*/server.pid; do
  [ -f "$pidfile" ] || continue
  pid=$(cat "$pidfile")
  kill "$pid" 2>/dev/null || continue
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
done
for pidfile in .test-servers/mongo-*/server.pid; do
  [ -f "$pidfile" ] || continue
  pid=$(cat "$pidfile")
  kill "$pid" 2>/dev/null || continue
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
done
