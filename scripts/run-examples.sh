#!/usr/bin/env bash
# Builds the Examples package (the README's library examples) and runs each example as a user
# would: the SQLite one on a new file, the server ones against the servers whose URLs are set
# (OUTBOX_POSTGRES_URL, OUTBOX_MYSQL_URL, OUTBOX_MONGO_URL; scripts/test.sh sets them), and the
# Hummingbird orders service over HTTP. Each must publish what it enqueued.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$OUTBOX_ROOT"
command -v curl >/dev/null 2>&1 || apt_install curl

# The README quotes the examples; a quote that drifted from the code fails here.
python3 scripts/lib/example_snippets.py check

# SwiftPM keeps the Examples package's build plan, and with it the list of the main package's
# source files, until a manifest changes: after a file was added to or renamed in Sources/, a local
# Examples/.build failed with "cannot find … in scope" at every build. Planning again costs a
# second or two; a fresh clone has no plan to drop.
rm -f "$(swift build --package-path Examples --show-bin-path)/description.json"
build_log=$(mktemp)
swift build --package-path Examples 2>&1 | tee "$build_log" | grep -E "error|Compiling|Build complete" | tail -3 || true
if grep -q "error:" "$build_log"; then cat "$build_log" >&2; exit 1; fi
fail_on_own_warnings "$build_log"
rm -f "$build_log"
bin="$(swift build --package-path Examples --show-bin-path)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# expect_published FILE: the example printed "published order X" and FILE holds X's message.
run_example() {
  local name="$1" output
  output=$(cd "$work" && "$bin/$name" "$work/$name.jsonl" 2>"$work/$name.log") || { cat "$work/$name.log" >&2; echo "$name failed." >&2; exit 1; }
  local order=${output#published order }
  grep -q "$order" "$work/$name.jsonl" || { echo "$name did not publish order $order." >&2; exit 1; }
  echo "examples: $name published order $order"
}

(cd "$work" && "$bin/SQLiteExample" "$work/shop.sqlite" "$work/SQLiteExample.jsonl" > "$work/sqlite.out" 2>"$work/SQLiteExample.log") \
  || { cat "$work/SQLiteExample.log" >&2; echo "SQLiteExample failed." >&2; exit 1; }
order=$(sed 's/published order //' "$work/sqlite.out")
grep -q "$order" "$work/SQLiteExample.jsonl" || { echo "SQLiteExample did not publish order $order." >&2; exit 1; }
echo "examples: SQLiteExample published order $order"

for pair in PostgresExample:OUTBOX_POSTGRES_URL MySQLExample:OUTBOX_MYSQL_URL MongoExample:OUTBOX_MONGO_URL; do
  name=${pair%%:*} variable=${pair#*:}
  if [ -n "${!variable:-}" ]; then
    run_example "$name"
  elif [ "${OUTBOX_REQUIRE_SERVERS:-0}" = "1" ]; then
    echo "$variable is not set and OUTBOX_REQUIRE_SERVERS=1; $name cannot run." >&2
    exit 1
  else
    echo "examples: $name skipped ($variable is not set)"
  fi
done

# The orders service: three orders over HTTP, a bad one refused, everything published, a clean
# stop on SIGTERM.
port=$((20000 + RANDOM % 20000))
"$bin/OrdersApp" "$port" "$work/orders.sqlite" "$work/orders.jsonl" >"$work/orders.log" 2>&1 &
app=$!
wait_for "curl -sf http://127.0.0.1:$port/outbox" 30 "OrdersApp" "$work/orders.log"
for customer in c-1 c-2 c-1; do
  curl -sf -X POST "http://127.0.0.1:$port/orders" -H 'content-type: application/json' \
    -d "{\"customer\":\"$customer\",\"totalCents\":4200}" >>"$work/placed.txt"
  echo >>"$work/placed.txt"
done
status=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$port/orders" -H 'content-type: application/json' \
  -d '{"customer":"","totalCents":-1}')
[ "$status" = "400" ] || { echo "OrdersApp answered $status to a bad order, not 400." >&2; kill "$app"; exit 1; }
wait_for "[ \$(wc -l < '$work/orders.jsonl') -ge 3 ]" 30 "OrdersApp's relay (3 messages)" "$work/orders.log"
for message in $(grep -o '"message":"[^"]*"' "$work/placed.txt" | cut -d'"' -f4 | tr 'A-Z' 'a-z'); do
  grep -q "$message" "$work/orders.jsonl" || { echo "OrdersApp did not publish message $message." >&2; kill "$app"; exit 1; }
done
metrics_port=$((port + 1))
wait_for "curl -sf http://127.0.0.1:$metrics_port/metrics | grep -q '^outbox_messages_published_total 3$'" 30 \
  "OrdersApp's metrics (outbox_messages_published_total 3)" "$work/orders.log"
kill -TERM "$app"
wait "$app" || { cat "$work/orders.log" >&2; echo "OrdersApp did not stop cleanly on SIGTERM." >&2; exit 1; }
echo "examples: OrdersApp took 3 orders over HTTP, refused a bad one, published all 3, counted them at /metrics and stopped on SIGTERM"
