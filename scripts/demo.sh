#!/usr/bin/env bash
# The demo on embedded defaults: installs what the build needs, then writes orders and their
# messages to SQLite, relays them with 2 relays and verifies what arrived.
# Extra arguments go to `outbox demo` (see `swift run outbox demo --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-prerequisites.sh
swift build --product outbox 2>&1 | grep -E "error|warning: unre|Compiling|Build complete" | tail -3 >&2 || true
exec "$(swift build --show-bin-path)/outbox" demo "$@"
