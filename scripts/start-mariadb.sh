#!/usr/bin/env bash
# Starts a throw-away MariaDB 10.11 for the tests (installing it with apt-get when missing) and
# prints the URL to use, e.g.:  export OUTBOX_MYSQL_URL=$(scripts/start-mariadb.sh)
# The data folder lives under .test-servers/ and is recreated on each start.
# Environment: OUTBOX_MYSQL_PORT (default 53306); OUTBOX_DURABLE=1 flushes the log at every
# commit (innodb_flush_log_at_trx_commit=1), as production servers run; the tests use 2.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$OUTBOX_ROOT"

port="${OUTBOX_MYSQL_PORT:-53306}"
root=$(server_root mariadb "$port")

command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || apt_install mariadb-server
PATH="/usr/sbin:$PATH"

# Stop a server left over from an earlier run on this folder.
stop_pid_file "$root/server.pid" TERM 10
require_free_port "$port" OUTBOX_MYSQL_PORT
rm -rf "$root"
mkdir -p "$root/data"
[ "${OUTBOX_DURABLE:-0}" = "1" ] && touch "$root/durable"

mariadb-install-db --no-defaults --user=root --datadir="$root/data" --auth-root-authentication-method=normal \
  --skip-test-db >"$root/install.log" 2>&1 || { cat "$root/install.log" >&2; exit 1; }

scripts/run-mariadb.sh "$port"
mariadb --no-defaults --protocol=tcp -h 127.0.0.1 -P "$port" -u root \
  -e "CREATE DATABASE outbox_test CHARACTER SET utf8mb4; CREATE USER 'outbox'@'%' IDENTIFIED BY 'outbox-secret'; GRANT ALL ON *.* TO 'outbox'@'%' WITH GRANT OPTION;"
echo "mysql://outbox:outbox-secret@127.0.0.1:$port/outbox_test"
