#!/usr/bin/env bash
# The whole test suite: installs what the build and the tests need, starts the servers the
# server-backed suites use, and runs every test.
#
# OUTBOX_REQUIRE_SERVERS=1 (CI sets it) turns a missing server into a failure instead of a skip.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$OUTBOX_ROOT"

scripts/install-prerequisites.sh
reserve_test_ports

# Servers for the server-backed suites. Kafka needs none: its tests run librdkafka's mock cluster.
# NATS is a real nats-server with JetStream, RabbitMQ a real rabbitmq-server.
trap 'scripts/stop-test-servers.sh' EXIT
# start_server VARIABLE NAME SCRIPT [URL-SUFFIX]: unless VARIABLE is set already, starts a server
# with SCRIPT and exports its URL; a server that cannot start fails the run under
# OUTBOX_REQUIRE_SERVERS=1 and skips its suites otherwise.
start_server() {
  local variable="$1" name="$2" script="$3" suffix="${4:-}" url
  [ -z "${!variable:-}" ] || return 0
  if url=$("$script"); then
    export "$variable=$url$suffix"
  elif [ "${OUTBOX_REQUIRE_SERVERS:-0}" = "1" ]; then
    echo "$name could not be started and OUTBOX_REQUIRE_SERVERS=1." >&2
    exit 1
  else
    echo "$name could not be started; its suites are skipped." >&2
  fi
}
start_server OUTBOX_POSTGRES_URL PostgreSQL scripts/start-postgres.sh "?sslmode=disable"
start_server OUTBOX_MYSQL_URL MariaDB scripts/start-mariadb.sh
start_server OUTBOX_MONGO_URL "The MongoDB-compatible test server" scripts/start-mongo.sh
start_server OUTBOX_NATS_URL "NATS" scripts/start-nats.sh
start_server OUTBOX_AMQP_URL "RabbitMQ" scripts/start-rabbitmq.sh

# libmongoc, loaded by every test process and `outbox` child, keeps diagnostic counters in
# /dev/shm/mongoc-<pid>; processes the tests SIGKILL leave theirs behind, and a later process with
# the same pid then starts with a libmongoc warning on stderr (seen as a flaky CLI test: the
# warning came before the expected error sentence). The counters serve only mongoc's own tools.
export MONGOC_DISABLE_SHM=1

# Our own code builds without warnings (see fail_on_own_warnings).
build_log=$(mktemp)
swift build --build-tests 2>&1 | tee "$build_log"
fail_on_own_warnings "$build_log"
rm -f "$build_log"
# One suite at a time: the suites run real servers, relays, child processes and mock Kafka
# clusters, and on 2 cores running them all at once turns timing into noise. Each suite is
# concurrent inside (several relays, writers and brokers at once).
swift test --skip-build --disable-xctest --no-parallel "$@"

# The README's examples, built and run as a new user would (a package of their own).
scripts/run-examples.sh
