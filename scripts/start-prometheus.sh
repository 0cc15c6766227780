#!/usr/bin/env bash
# Starts a throw-away Prometheus server (installing Debian's prometheus when missing) that scrapes
# the given targets every second, and prints its URL, e.g.:
#   url=$(scripts/start-prometheus.sh 127.0.0.1:9464 docs/prometheus/outbox-alerts.yml)
# Arguments: TARGET (host:port serving /metrics), then optional rule files. Rules are checked with
# promtool first, so a broken rule file fails here with promtool's sentence.
# Environment: OUTBOX_PROMETHEUS_PORT (default 59090). Its data folder lives under .test-servers/
# and is recreated on each start; scripts/stop-test-servers.sh stops it.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$OUTBOX_ROOT"

if [ $# -lt 1 ]; then
  echo "Usage: scripts/start-prometheus.sh TARGET [RULE_FILE...]  (TARGET: host:port serving /metrics)" >&2
  exit 2
fi
target="$1"; shift
port="${OUTBOX_PROMETHEUS_PORT:-59090}"
root=$(server_root prometheus "$port")
command -v prometheus >/dev/null 2>&1 || apt_install prometheus

stop_pid_file "$root/server.pid" TERM 10
require_free_port "$port" OUTBOX_PROMETHEUS_PORT
rm -rf "$root"
mkdir -p "$root/data"
rules=""
for file in "$@"; do
  promtool check rules "$file" >&2
  cp "$file" "$root/"
  rules="$rules  - $root/$(basename "$file")"$'\n'
done
cat > "$root/prometheus.yml" <<CONFIG
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
$rules
scrape_configs:
  - job_name: outbox
    static_configs:
      - targets: ['$target']
CONFIG
promtool check config "$root/prometheus.yml" >/dev/null
# Detached fully (setsid, no inherited output): the server outlives this script.
setsid prometheus --config.file "$root/prometheus.yml" --storage.tsdb.path "$root/data" \
  --web.listen-address "127.0.0.1:$port" </dev/null >>"$root/server.log" 2>&1 &
echo $! > "$root/server.pid"
wait_for "curl -sf http://127.0.0.1:$port/-/ready" 60 "Prometheus on port $port" "$root/server.log"
echo "http://127.0.0.1:$port"
