#!/usr/bin/env bash
# A private RabbitMQ node for the tests that stop and start their broker (tests/relay_fault.rs),
# so that the machine's RabbitMQ is never disrupted.
#
#   bash scripts/rabbitmq-private.sh start     # starts it (bounded wait), prints its STOMP address
#   bash scripts/rabbitmq-private.sh ctl ARGS  # rabbitmqctl -n <the private node> ARGS (e.g. stop_app)
#   bash scripts/rabbitmq-private.sh stop      # stops it and removes its directory
#   eval "$(bash scripts/rabbitmq-private.sh env)"   # WSBROKER_RELAY_FAULT_BROKER for the tests
#
# The node is wsbroker-test@localhost with everything of its own: AMQP 5682, STOMP 61633
# (rabbitmq_stomp, the only plugin: no management), Erlang distribution 25682, its own epmd on
# 4379 (ERL_EPMD_PORT, so the machine's epmd and nodes are not involved), and config, enabled-
# plugins file, mnesia, logs and Erlang cookie ($HOME/.erlang.cookie with HOME set to its
# directory) under target/rabbitmq-test/. The machine's rabbitmq-env.conf is not read. It runs
# Debian's rabbitmq-server scripts directly (not the wrapper that switches to the rabbitmq user).
# Environment: WSBROKER_TEST_RABBITMQ_{STOMP,AMQP,DIST,EPMD}_PORT, WSBROKER_TEST_RABBITMQ_DIR,
# RABBITMQ_WAIT_SECS (default 90).
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NODE=wsbroker-test@localhost
STOMP_PORT="${WSBROKER_TEST_RABBITMQ_STOMP_PORT:-61633}"
AMQP_PORT="${WSBROKER_TEST_RABBITMQ_AMQP_PORT:-5682}"
DIST_PORT="${WSBROKER_TEST_RABBITMQ_DIST_PORT:-25682}"
EPMD_PORT="${WSBROKER_TEST_RABBITMQ_EPMD_PORT:-4379}"
DIR="${WSBROKER_TEST_RABBITMQ_DIR:-${CARGO_TARGET_DIR:-$REPO_ROOT/target}/rabbitmq-test}"
WAIT_SECS="${RABBITMQ_WAIT_SECS:-90}"

# The directory of the real rabbitmq-server / rabbitmqctl scripts.
rabbitmq_bin() {
  if [[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ]]; then
    echo /usr/lib/rabbitmq/bin
  elif command -v rabbitmq-server >/dev/null 2>&1; then
    dirname "$(readlink -f "$(command -v rabbitmq-server)")"
  else
    return 1
  fi
}

# Runs a command with the private node's environment (and only that: not exported to the caller).
with_node_env() {
  env HOME="$DIR/home" \
    ERL_EPMD_PORT="$EPMD_PORT" ERL_EPMD_ADDRESS=127.0.0.1 \
    RABBITMQ_CONF_ENV_FILE="$DIR/rabbitmq-env.conf" \
    RABBITMQ_NODENAME="$NODE" \
    RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT="$AMQP_PORT" RABBITMQ_DIST_PORT="$DIST_PORT" \
    RABBITMQ_CONFIG_FILE="$DIR/rabbitmq.conf" RABBITMQ_ADVANCED_CONFIG_FILE="$DIR/advanced.config" \
    RABBITMQ_ENABLED_PLUGINS_FILE="$DIR/enabled_plugins" \
    RABBITMQ_MNESIA_BASE="$DIR/mnesia" RABBITMQ_LOG_BASE="$DIR/log" RABBITMQ_PID_FILE="$DIR/rabbitmq.pid" \
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}" \
    "$@"
}

ctl() {
  local bin
  bin="$(rabbitmq_bin)" || die "RabbitMQ is not installed"
  [[ -f "$DIR/rabbitmq.conf" ]] || die "the private node is not set up ($DIR): run '$0 start'"
  # -n: only ever the private node.
  with_node_env "$bin/rabbitmqctl" -n "$NODE" "$@"
}

start() {
  local bin pid start=$SECONDS p
  # A node left over by an interrupted run (same directory): stop it first.
  [[ -f "$DIR/server.pid" ]] && stop
  for p in "$STOMP_PORT" "$AMQP_PORT" "$DIST_PORT"; do
    ! port_open "$p" || die "port $p is taken: is a private node running already? ('$0 stop')"
  done
  bin="$(rabbitmq_bin)" || { apt_install rabbitmq-server && bin="$(rabbitmq_bin)"; } || die "cannot install rabbitmq-server"
  rm -rf "$DIR"
  mkdir -p "$DIR/home" "$DIR/mnesia" "$DIR/log"
  : >"$DIR/rabbitmq-env.conf"
  printf '[rabbitmq_stomp].\n' >"$DIR/enabled_plugins"
  cat >"$DIR/rabbitmq.conf" <<EOF
listeners.tcp.default = 127.0.0.1:$AMQP_PORT
stomp.listeners.tcp.1 = 127.0.0.1:$STOMP_PORT
log.file.level = info
log.console = false
EOF
  # The Erlang cookie of this node and of the rabbitmqctl calls above.
  head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$DIR/home/.erlang.cookie"
  chmod 400 "$DIR/home/.erlang.cookie"
  log "starting RabbitMQ node $NODE (STOMP 127.0.0.1:$STOMP_PORT, data in $DIR)"
  # setsid: its own session and process group, so that stop can end every process of it and
  # nothing else (--wait: this pid lives as long as the server, forked or not).
  with_node_env setsid --wait "$bin/rabbitmq-server" >"$DIR/log/server.out" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$DIR/server.pid"
  if ! wait_for_listener "$STOMP_PORT" "$pid" "$WAIT_SECS" "$DIR/log/server.out"; then
    stop >/dev/null 2>&1 || true
    die "RabbitMQ $NODE did not start (logs in $DIR/log)"
  fi
  ctl -q --timeout 30 await_startup >/dev/null \
    || die "rabbitmqctl -n $NODE await_startup failed: the CLI cannot reach the node (cookie, epmd $EPMD_PORT)"
  log "RabbitMQ $NODE is up: STOMP 127.0.0.1:$STOMP_PORT ($((SECONDS - start))s)"
}

stop() {
  local server="" beam="" deadline pgid
  [[ -f "$DIR/server.pid" ]] && server="$(cat "$DIR/server.pid")"
  [[ -f "$DIR/rabbitmq.pid" ]] && beam="$(cat "$DIR/rabbitmq.pid")"
  if pid_alive "$server" || pid_alive "$beam"; then
    log "stopping RabbitMQ node $NODE"
    ctl -q --timeout 30 stop >/dev/null 2>&1 || true
    deadline=$((SECONDS + 30))
    while { pid_alive "$server" || pid_alive "$beam"; } && ((SECONDS < deadline)); do sleep 0.5; done
    if pid_alive "$beam"; then
      # Whatever is left of the node's process group (beam, erl_child_setup), never ours.
      pgid="$(ps -o pgid= -p "$beam" | tr -d ' ')"
      if [[ -n "$pgid" && "$pgid" != "$(ps -o pgid= -p $$ | tr -d ' ')" ]]; then
        kill -KILL -- "-$pgid" 2>/dev/null || true
      fi
      kill -KILL "$beam" 2>/dev/null || true
    fi
    if pid_alive "$server"; then kill -KILL "$server" 2>/dev/null || true; fi
  fi
  # Its own epmd (ERL_EPMD_PORT), started by the node; the machine's epmd is on another port.
  if port_open "$EPMD_PORT"; then
    ERL_EPMD_PORT="$EPMD_PORT" epmd -kill >/dev/null 2>&1 || true
  fi
  rm -rf "$DIR"
  log "RabbitMQ $NODE stopped and removed"
}

case "${1:-}" in
  start) start; printf '127.0.0.1:%s\n' "$STOMP_PORT" ;;
  stop) stop ;;
  ctl) shift; ctl "$@" ;;
  env) printf 'export WSBROKER_RELAY_FAULT_BROKER=127.0.0.1:%s\n' "$STOMP_PORT" ;;
  *) die "usage: $0 start | stop | ctl RABBITMQCTL-ARGS... | env" ;;
esac
