#!/usr/bin/env bash
# The whole test suite: installs what the build and the tests need, starts the servers the
# server-backed suites use, and runs every test.
#
# OUTBOX_REQUIRE_SERVERS=1 (CI sets it) turns a missing server into a failure instead of a skip.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-prerequisites.sh

# Server-backed suites (PostgreSQL, MariaDB, MongoDB, Kafka) start their servers here as they
# land; the embedded SQLite and in-memory suites need none.

swift build --build-tests
swift test --skip-build --disable-xctest "$@"
