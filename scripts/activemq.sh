#!/usr/bin/env bash
# ActiveMQ (Debian's `activemq` package) for the relay scale-out test against a second broker.
#
#   bash scripts/activemq.sh ensure   # ActiveMQ with STOMP on 127.0.0.1:61623
#
# Installs the package when missing, enables an instance "wsbroker" (a copy of the packaged
# "main" instance with a STOMP connector on 61623, since RabbitMQ holds 61613), starts it and
# waits, bounded, for the STOMP port. Environment: ACTIVEMQ_STOMP_PORT (default 61623),
# ACTIVEMQ_WAIT_SECS (default 120).
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

STOMP_PORT="${ACTIVEMQ_STOMP_PORT:-61623}"
WAIT_SECS="${ACTIVEMQ_WAIT_SECS:-120}"
INSTANCE=/etc/activemq/instances-available/wsbroker

as_root() {
  if [[ "$(id -u)" -eq 0 ]]; then "$@"; else sudo -n "$@"; fi
}

port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

ensure() {
  if port_open "$STOMP_PORT"; then
    log "ActiveMQ STOMP is up on 127.0.0.1:$STOMP_PORT"
    return
  fi
  [[ -d /etc/activemq/instances-available/main ]] || apt_install activemq
  if [[ ! -f "$INSTANCE/activemq.xml" ]]; then
    log "creating ActiveMQ instance $INSTANCE (STOMP on $STOMP_PORT)"
    as_root mkdir -p "$INSTANCE"
    as_root cp /etc/activemq/instances-available/main/* "$INSTANCE/"
    as_root sed -i \
      -e "s#<transportConnector name=\"openwire\" uri=\"tcp://127.0.0.1:61616\"/>#<transportConnector name=\"openwire\" uri=\"tcp://127.0.0.1:61626\"/>\n            <transportConnector name=\"stomp\" uri=\"stomp://127.0.0.1:$STOMP_PORT\"/>#" \
      "$INSTANCE/activemq.xml"
    grep -q "stomp://127.0.0.1:$STOMP_PORT" "$INSTANCE/activemq.xml" \
      || die "could not add a STOMP connector to $INSTANCE/activemq.xml"
  fi
  as_root ln -sfn "$INSTANCE" /etc/activemq/instances-enabled/wsbroker
  log "starting ActiveMQ (instance wsbroker)"
  as_root /etc/init.d/activemq start wsbroker >/dev/null 2>&1 || as_root /etc/init.d/activemq start >/dev/null 2>&1 || true
  local start=$SECONDS
  until port_open "$STOMP_PORT"; do
    (( SECONDS - start < WAIT_SECS )) \
      || die "ActiveMQ STOMP does not listen on 127.0.0.1:$STOMP_PORT after ${WAIT_SECS}s (see /var/log/activemq/)"
    sleep 1
  done
  log "ActiveMQ STOMP is up on 127.0.0.1:$STOMP_PORT ($((SECONDS - start))s)"
}

case "${1:-}" in
  ensure) ensure ;;
  *) die "usage: $0 ensure" ;;
esac
