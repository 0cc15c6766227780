#!/usr/bin/env bash
# The whole test suite: installs what the build and the tests need, starts the servers the
# server-backed suites use, and runs every test.
#
# OUTBOX_REQUIRE_SERVERS=1 (CI sets it) turns a missing server into a failure instead of a skip.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-prerequisites.sh

# Servers for the server-backed suites. Kafka needs none: its tests run librdkafka's mock cluster.
trap 'scripts/stop-test-servers.sh' EXIT
if [ -z "${OUTBOX_POSTGRES_URL:-}" ]; then
  if url=$(scripts/start-postgres.sh); then
    export OUTBOX_POSTGRES_URL="$url?sslmode=disable"
  elif [ "${OUTBOX_REQUIRE_SERVERS:-0}" = "1" ]; then
    echo "PostgreSQL could not be started and OUTBOX_REQUIRE_SERVERS=1." >&2
    exit 1
  else
    echo "PostgreSQL could not be started; its suites are skipped." >&2
  fi
fi

if [ -z "${OUTBOX_MYSQL_URL:-}" ]; then
  if url=$(scripts/start-mariadb.sh); then
    export OUTBOX_MYSQL_URL="$url"
  elif [ "${OUTBOX_REQUIRE_SERVERS:-0}" = "1" ]; then
    echo "MariaDB could not be started and OUTBOX_REQUIRE_SERVERS=1." >&2
    exit 1
  else
    echo "MariaDB could not be started; its suites are skipped." >&2
  fi
fi
if [ -z "${OUTBOX_MONGO_URL:-}" ]; then
  if url=$(scripts/start-mongo.sh); then
    export OUTBOX_MONGO_URL="$url"
  elif [ "${OUTBOX_REQUIRE_SERVERS:-0}" = "1" ]; then
    echo "The MongoDB-compatible test server could not be started and OUTBOX_REQUIRE_SERVERS=1." >&2
    exit 1
  else
    echo "The MongoDB-compatible test server could not be started; its suites are skipped." >&2
  fi
fi

swift build --build-tests
# One suite at a time: the suites run real servers, relays, child processes and mock Kafka
# clusters, and on 2 cores running them all at once turns timing into noise. Each suite is
# concurrent inside (several relays, writers and brokers at once).
swift test --skip-build --disable-xctest --no-parallel "$@"
