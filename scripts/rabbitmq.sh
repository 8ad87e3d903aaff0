#!/usr/bin/env bash
# RabbitMQ for the relay tests (tests/relay_*.rs, tests/interop/node relay suite).
#
#   bash scripts/rabbitmq.sh ensure   # RabbitMQ running with STOMP on 127.0.0.1:61613
#
# `ensure` is idempotent: it installs Debian's rabbitmq-server when it is missing, starts it
# when it is not running, enables rabbitmq_stomp (relay tests) and rabbitmq_web_stomp (the
# perf bench), and waits, bounded, until the STOMP port accepts connections.
# Environment: RABBITMQ_STOMP_PORT (default 61613), RABBITMQ_WAIT_SECS (default 90).
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

STOMP_PORT="${RABBITMQ_STOMP_PORT:-61613}"
WAIT_SECS="${RABBITMQ_WAIT_SECS:-90}"

as_root() {
  if [[ "$(id -u)" -eq 0 ]]; then "$@"; else sudo -n "$@"; fi
}

# Waits up to $2 seconds for `$1` (a command) to succeed.
wait_for() {
  local what="$1" secs="$2" start=$SECONDS
  while ! eval "$what"; do
    if (( SECONDS - start >= secs )); then
      return 1
    fi
    sleep 1
  done
}

start_server() {
  log "starting rabbitmq-server"
  if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
    as_root systemctl start rabbitmq-server
  elif command -v service >/dev/null 2>&1 && [[ -x /etc/init.d/rabbitmq-server ]]; then
    as_root service rabbitmq-server start
  else
    as_root sh -c 'rabbitmq-server -detached >/dev/null 2>&1' || true
  fi
}

ensure() {
  if port_open "$STOMP_PORT" && port_open 15674; then
    log "RabbitMQ STOMP is up on 127.0.0.1:$STOMP_PORT (and Web-STOMP on 15674)"
    return
  fi
  if ! command -v rabbitmqctl >/dev/null 2>&1; then
    apt_install rabbitmq-server
  fi
  if ! as_root rabbitmqctl -q status >/dev/null 2>&1; then
    start_server
    wait_for "as_root rabbitmqctl -q status >/dev/null 2>&1" "$WAIT_SECS" \
      || die "rabbitmq-server did not start within ${WAIT_SECS}s (see /var/log/rabbitmq/)"
  fi
  # The node may run with its app stopped (rabbitmqctl stop_app): bring it up.
  if ! port_open 5672; then
    as_root rabbitmqctl -q start_app >/dev/null 2>&1 || true
  fi
  log "enabling rabbitmq_stomp and rabbitmq_web_stomp"
  as_root rabbitmq-plugins -q enable rabbitmq_stomp rabbitmq_web_stomp >/dev/null \
    || die "rabbitmq-plugins enable rabbitmq_stomp rabbitmq_web_stomp failed"
  wait_for "port_open $STOMP_PORT" "$WAIT_SECS" \
    || die "RabbitMQ STOMP does not listen on 127.0.0.1:$STOMP_PORT after ${WAIT_SECS}s"
  log "RabbitMQ STOMP is up on 127.0.0.1:$STOMP_PORT"
}

case "${1:-}" in
  ensure) ensure ;;
  *) die "usage: $0 ensure" ;;
esac
