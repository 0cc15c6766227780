#!/usr/bin/env bash
# Installs the system libraries the package links against (Debian 12). Safe to run again: it
# installs only what is missing, and does nothing when everything is present.
set -euo pipefail

packages=(libsqlite3-dev librdkafka-dev kcat libmariadb-dev libmongoc-dev)

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "Installing system packages: ${missing[*]}" >&2
if [ "$(id -u)" -ne 0 ]; then
  sudo=sudo
else
  sudo=
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq "${missing[@]}" >/dev/null
