#!/usr/bin/env bash
# Installs the system libraries the package links against (Debian 12). Safe to run again: it
# installs only what is missing, and does nothing when everything is present.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
apt_install libsqlite3-dev librdkafka-dev kcat libmariadb-dev libmongoc-dev libnats-dev librabbitmq-dev
