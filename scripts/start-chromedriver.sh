#!/usr/bin/env bash
# Starts chromedriver for headless Chromium (installing Debian's chromium and chromium-driver when
# missing) and prints its WebDriver URL, e.g.:  url=$(scripts/start-chromedriver.sh)
# The browser tests drive the admin page through it. Environment: OUTBOX_CHROMEDRIVER_PORT
# (default 59515). scripts/stop-test-servers.sh stops it.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$OUTBOX_ROOT"

port="${OUTBOX_CHROMEDRIVER_PORT:-59515}"
root=$(server_root chromedriver "$port")
command -v chromedriver >/dev/null 2>&1 && command -v chromium >/dev/null 2>&1 || apt_install chromium chromium-driver

stop_pid_file "$root/server.pid" TERM 10
require_free_port "$port" OUTBOX_CHROMEDRIVER_PORT
rm -rf "$root"
mkdir -p "$root"
# Detached fully (setsid, no inherited output): it outlives this script.
setsid chromedriver --port="$port" --allowed-ips=127.0.0.1 </dev/null >>"$root/server.log" 2>&1 &
echo $! > "$root/server.pid"
wait_for "curl -sf http://127.0.0.1:$port/status" 30 "chromedriver on port $port" "$root/server.log"
echo "http://127.0.0.1:$port"
