#!/usr/bin/env bash
# Runs mariadbd on the data folder scripts/start-mariadb.sh created for port $1 and waits until it
# answers. Used by start-mariadb.sh and restart-mariadb.sh; not meant to be called on its own.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
port="$1"
root=$(server_root mariadb "$port")
PATH="/usr/sbin:$PATH"
# Test servers write the log at commit but flush it once a second; a folder started with
# OUTBOX_DURABLE=1 (start-mariadb.sh leaves a "durable" mark) flushes at every commit, as
# production servers do.
flush=2
[ -f "$root/durable" ] && flush=1
# A server still on the port (one whose pid file was lost) would answer the wait below while the
# new one fails to bind: the start would look like a success.
require_free_port "$port" OUTBOX_MYSQL_PORT
# The server outlives this script: detach it fully (setsid, no inherited output), so callers that
# wait for the script's output to close are not held up by the daemon.
setsid mariadbd --no-defaults --user=root --datadir="$root/data" --port="$port" --bind-address=127.0.0.1 \
  --socket="$root/mariadb.sock" --pid-file="$root/server.pid" --log-error="$root/server.log" \
  --innodb-flush-log-at-trx-commit=$flush --innodb-buffer-pool-size="${OUTBOX_MARIADB_BUFFER_POOL:-256M}" --max-connections=300 \
  --max-allowed-packet=16M --skip-name-resolve </dev/null >/dev/null 2>&1 &
wait_for "mariadb-admin --no-defaults --protocol=tcp -h 127.0.0.1 -P $port -u root ping" 30 "MariaDB on port $port" "$root/server.log"
