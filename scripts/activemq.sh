#!/usr/bin/env bash
# A private ActiveMQ broker for the relay scale-out tests against a second kind of broker
# (tests/relay_scaleout.rs, tests/interop/node/test/relay.test.js).
#
#   bash scripts/activemq.sh start    # starts it (bounded wait), prints its STOMP address
#   bash scripts/activemq.sh stop     # stops it and removes its directory
#   bash scripts/activemq.sh env      # WSBROKER_ACTIVEMQ_BROKER=127.0.0.1:61643 (export line)
#
# It runs Debian's ActiveMQ (installed when missing) as its own process from its own base
# directory, target/activemq-test/ (configuration, data, logs): a non-persistent broker without
# JMX or web console, with only a STOMP connector on 127.0.0.1:61643. It starts in about 3 s.
# No system instance (/etc/activemq, the init script) is created, started or stopped.
# Environment: WSBROKER_TEST_ACTIVEMQ_STOMP_PORT, WSBROKER_TEST_ACTIVEMQ_DIR,
# ACTIVEMQ_WAIT_SECS (default 60).
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

STOMP_PORT="${WSBROKER_TEST_ACTIVEMQ_STOMP_PORT:-61643}"
DIR="${WSBROKER_TEST_ACTIVEMQ_DIR:-${CARGO_TARGET_DIR:-$REPO_ROOT/target}/activemq-test}"
WAIT_SECS="${ACTIVEMQ_WAIT_SECS:-60}"
HOME_DIR=/usr/share/activemq

start() {
  local pid start=$SECONDS java
  [[ -f "$DIR/broker.pid" ]] && stop
  ! port_open "$STOMP_PORT" || die "port $STOMP_PORT is taken: is a private ActiveMQ running already? ('$0 stop')"
  [[ -f "$HOME_DIR/bin/activemq.jar" ]] || apt_install activemq
  [[ -f "$HOME_DIR/bin/activemq.jar" ]] || die "no $HOME_DIR/bin/activemq.jar after installing activemq"
  java="$(command -v java)" || die "java is required (Debian's activemq depends on it)"
  rm -rf "$DIR"
  mkdir -p "$DIR/conf" "$DIR/data" "$DIR/tmp"
  cat >"$DIR/conf/activemq.xml" <<EOF
<beans xmlns="http://www.springframework.org/schema/beans"
       xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
       xsi:schemaLocation="http://www.springframework.org/schema/beans http://www.springframework.org/schema/beans/spring-beans.xsd
                           http://activemq.apache.org/schema/core http://activemq.apache.org/schema/core/activemq-core.xsd">
  <broker xmlns="http://activemq.apache.org/schema/core" brokerName="wsbroker-test"
          useJmx="false" persistent="false" dataDirectory="\${activemq.data}">
    <transportConnectors>
      <transportConnector name="stomp" uri="stomp://127.0.0.1:$STOMP_PORT"/>
    </transportConnectors>
  </broker>
</beans>
EOF
  log "starting a private ActiveMQ (STOMP 127.0.0.1:$STOMP_PORT, base $DIR)"
  # exec: the recorded pid is the JVM itself, which SIGTERM stops cleanly.
  (cd "$DIR" && exec "$java" -Xms64M -Xmx256M -Djava.awt.headless=true \
    -Djava.io.tmpdir="$DIR/tmp" -Dactivemq.classpath="$DIR/conf:" -Dactivemq.home="$HOME_DIR" \
    -Dactivemq.base="$DIR" -Dactivemq.conf="$DIR/conf" -Dactivemq.data="$DIR/data" \
    -jar "$HOME_DIR/bin/activemq.jar" start "xbean:file:$DIR/conf/activemq.xml" \
    >"$DIR/broker.log" 2>&1 </dev/null) &
  pid=$!
  echo "$pid" >"$DIR/broker.pid"
  if ! wait_for_listener "$STOMP_PORT" "$pid" "$WAIT_SECS" "$DIR/broker.log"; then
    stop >/dev/null 2>&1 || true
    die "the private ActiveMQ did not start"
  fi
  log "ActiveMQ STOMP is up on 127.0.0.1:$STOMP_PORT ($((SECONDS - start))s)"
}

stop() {
  local pid="" deadline
  [[ -f "$DIR/broker.pid" ]] && pid="$(cat "$DIR/broker.pid")"
  if pid_alive "$pid"; then
    log "stopping the private ActiveMQ (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + 20))
    while pid_alive "$pid" && ((SECONDS < deadline)); do sleep 0.25; done
    if pid_alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
  fi
  rm -rf "$DIR"
}

case "${1:-}" in
  start) start; printf '127.0.0.1:%s\n' "$STOMP_PORT" ;;
  stop) stop ;;
  env) printf 'export WSBROKER_ACTIVEMQ_BROKER=127.0.0.1:%s\n' "$STOMP_PORT" ;;
  *) die "usage: $0 start | stop | env" ;;
esac
