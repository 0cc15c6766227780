#!/usr/bin/env bash
# Starts a throw-away MariaDB 10.11 for the tests (installing it with apt-get when missing) and
# prints the URL to use, e.g.:  export OUTBOX_MYSQL_URL=$(scripts/start-mariadb.sh)
# The data folder lives under .test-servers/ and is recreated on each start.
# Environment: OUTBOX_MYSQL_PORT (default 53306).
set -euo pipefail
cd "$(dirname "$0")/.."

port="${OUTBOX_MYSQL_PORT:-53306}"
root="$(pwd)/.test-servers/mariadb-$port"

if ! command -v mariadbd >/dev/null 2>&1 && [ ! -x /usr/sbin/mariadbd ]; then
  echo "Installing MariaDB" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq mariadb-server >/dev/null
fi
PATH="/usr/sbin:$PATH"

# Stop a server left over from an earlier run on this folder.
if [ -f "$root/server.pid" ]; then
  kill "$(cat "$root/server.pid")" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$(cat "$root/server.pid")" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$(cat "$root/server.pid")" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$(cat "$root/server.pid")" 2>/dev/null || break; sleep 0.1; done
fi
if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
  echo "Port $port is taken by another program; set OUTBOX_MYSQL_PORT to a free port." >&2
  exit 1
fi
rm -rf "$root"
mkdir -p "$root/data"

mariadb-install-db --no-defaults --user=root --datadir="$root/data" --auth-root-authentication-method=normal \
  --skip-test-db >"$root/install.log" 2>&1 || { cat "$root/install.log" >&2; exit 1; }

scripts/run-mariadb.sh "$port"
mariadb --no-defaults --protocol=tcp -h 127.0.0.1 -P "$port" -u root \
  -e "CREATE DATABASE outbox_test CHARACTER SET utf8mb4; CREATE USER 'outbox'@'%' IDENTIFIED BY 'outbox-secret'; GRANT ALL ON *.* TO 'outbox'@'%' WITH GRANT OPTION;"
echo "mysql://outbox:outbox-secret@127.0.0.1:$port/outbox_test"
