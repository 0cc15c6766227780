# Shared by the scripts in scripts/: sourced, never run. Each function does one thing the
# server scripts would otherwise repeat.

# The repository root; scripts source this file and then work from there.
OUTBOX_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

# apt_install PACKAGE...: installs the Debian packages that are missing (nothing when all are
# present), with sudo when not root.
apt_install() {
  local missing=() package sudo=
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "Installing system packages: ${missing[*]}" >&2
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq >&2
  $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

# port_answers PORT: true when something accepts TCP connections on 127.0.0.1:PORT.
port_answers() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# require_free_port PORT VARIABLE: fails with a sentence naming VARIABLE when PORT is taken.
require_free_port() {
  if port_answers "$1"; then
    echo "Port $1 is taken by another program; set $2 to a free port." >&2
    exit 1
  fi
}

# wait_for PROBE SECONDS WHAT LOG: runs PROBE every 0.1 s until it succeeds; after SECONDS it
# fails with a sentence naming WHAT and the LOG to read.
wait_for() {
  local probe="$1" seconds="$2" what="$3" log="$4" _
  for _ in $(seq 1 $((seconds * 10))); do
    if eval "$probe" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "$what did not start within $seconds s; see $log" >&2
  return 1
}

# stop_pid_file FILE SIGNAL SECONDS: sends SIGNAL (TERM, KILL) to the process whose pid FILE
# holds and waits up to SECONDS for it to exit, then SIGKILLs it. Quiet when it is not running.
stop_pid_file() {
  local file="$1" signal="$2" seconds="$3" pid _
  [ -f "$file" ] || return 0
  pid=$(cat "$file")
  kill "-$signal" "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 $((seconds * 10))); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
}

# postgres_bin: the newest installed PostgreSQL's bin folder (empty when none is installed).
postgres_bin() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true
}

# server_root KIND PORT: the data folder of a test server under .test-servers/.
server_root() {
  echo "$OUTBOX_ROOT/.test-servers/$1-$2"
}

# fail_on_own_warnings LOG: fails, listing them, when the build log LOG holds a warning in our own
# code (Sources/, Tests/, Examples/); dependencies' warnings are theirs. A build that compiles
# nothing new repeats no warnings, so this bites on a clean build, as CI's is.
fail_on_own_warnings() {
  local own
  own=$(grep -E "^$OUTBOX_ROOT/(Sources|Tests|Examples)/[^:]+:[0-9]+:[0-9]+: warning:" "$1" | sort -u || true)
  [ -z "$own" ] && return 0
  echo "$own" >&2
  echo "The build printed the warnings above in our own code; fix them (CI allows none)." >&2
  exit 1
}

# nats_server: the nats-server program (Debian puts it in /usr/sbin); empty when not installed.
nats_server() {
  command -v nats-server 2>/dev/null || { [ -x /usr/sbin/nats-server ] && echo /usr/sbin/nats-server; } || true
}

# reserve_test_ports: keeps the test servers' ports out of the kernel's ephemeral range, so no
# client socket takes one as its local port. The ports lie inside that range (32768–60999); a
# client that keeps reconnecting to a stopped server there (a relay while a chaos run has the
# broker down) eventually connects to itself on the server's own port — TCP lets a socket
# connect to itself — and the restarted server then cannot bind it ("Address already in use";
# seen in a chaos run on MariaDB and on RabbitMQ). Needs root; without it, warns and goes on.
reserve_test_ports() {
  local file=/proc/sys/net/ipv4/ip_local_reserved_ports ours current
  ours="53300-53320,54220-54300,55430-55445,55670-55680,57010-57020,58180-58200,59090-59100,59310-59320,59460-59470,59510-59520"
  current=$(cat "$file" 2>/dev/null || true)
  if [ -w "$file" ] && echo "${current:+$current,}$ours" > "$file" 2>/dev/null; then
    return 0
  fi
  echo "Could not reserve the test servers' ports ($file needs root); a restarted test server may rarely find its port taken." >&2
}
