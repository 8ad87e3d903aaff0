#!/usr/bin/env bash
# The engines the cluster-mode tests run on (tests/relay/cluster.rs): Redis and NATS servers.
#
#   bash scripts/cluster-engines.sh ensure   # installs redis-server and nats-server when missing
#   bash scripts/cluster-engines.sh env      # export lines naming the two binaries
#
# The tests never use the machine's Redis (6379) or NATS (4222): each starts its own private
# server from these binaries on a free loopback port with a temporary data directory and
# nothing kept on disk, kills it and starts it again where it tests an engine outage, and
# removes it at the end (tests/relay/engine_process.rs). Nothing here starts or stops a
# system service; installing a Debian package may start its own service, which the tests leave
# alone.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# A binary on PATH or in the sbin folders (Debian puts nats-server in /usr/sbin).
find_binary() {
  local name=$1 dir
  if command -v "$name" >/dev/null 2>&1; then command -v "$name"; return 0; fi
  for dir in /usr/sbin /usr/local/sbin /usr/local/bin /usr/bin; do
    [[ -x "$dir/$name" ]] && { echo "$dir/$name"; return 0; }
  done
  return 1
}

ensure() {
  local package binary
  for package in redis-server nats-server; do
    if ! binary="$(find_binary "$package")"; then
      apt_install "$package"
      binary="$(find_binary "$package")" || die "no $package after installing it"
    fi
    log "$package: $binary ($("$binary" --version 2>&1 | head -n 1))"
  done
}

env_lines() {
  local redis nats
  redis="$(find_binary redis-server)" || die "redis-server is not installed ('$0 ensure')"
  nats="$(find_binary nats-server)" || die "nats-server is not installed ('$0 ensure')"
  printf 'export WSBROKER_REDIS_SERVER=%q WSBROKER_NATS_SERVER=%q\n' "$redis" "$nats"
}

case "${1:-}" in
  ensure) ensure ;;
  env) env_lines ;;
  *) die "usage: $0 ensure|env" ;;
esac
