#!/usr/bin/env bash
# The test command of wsbroker: formatting, lints, Rust tests, release build, interop suites.
#
#   bash scripts/test.sh
#
# Installs what the interop suites need by itself (idempotent): Node deps with `npm ci` in
# tests/interop/node, a Python venv in .venv with tests/interop/python/requirements.txt, and
# for the browser tests Debian's chromium plus `npm ci` in examples/web/chat and
# tests/interop/browser (scripts/browser-tests.sh).
# The relay tests use the machine's RabbitMQ (scripts/rabbitmq.sh ensure) but never stop it: the
# test that stops its broker gets a private node (scripts/rabbitmq-private.sh), and ActiveMQ is a
# private instance (scripts/activemq.sh); both run from target/ and are removed at exit. The
# cluster tests start private Redis and NATS servers (scripts/cluster-engines.sh installs them). The
# deployment files are checked by scripts/packaging-tests.sh after the C tests.
# Reports (cargo log, JUnit XML) go to target/interop-reports/.
# To run only the interop suites (e.g. against an existing binary): bash scripts/interop.sh
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
install_exit_trap

need cargo
mkdir -p "$REPORT_DIR"
rm -f "$REPORT_DIR"/*.xml "$REPORT_DIR"/*.log

banner "1/7 cargo fmt --all -- --check"
cargo fmt --all -- --check

banner "2/7 cargo clippy (with and without the internals feature), cargo doc"
# The integration tests drive the codecs and the C ABI through the `internals` feature; the
# library must also be clean without it (that is what users build).
cargo clippy --all-targets --features internals -- -D warnings
cargo clippy --lib --bins -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --lib

banner "2b/7 brokers for the relay tests (scripts/rabbitmq.sh, scripts/activemq.sh, scripts/rabbitmq-private.sh) and engines for the cluster tests (scripts/cluster-engines.sh)"
# Relay tests run against RabbitMQ (and the scale-out test against ActiveMQ too). In CI a broker
# that cannot be set up fails the run; elsewhere the relay tests print SKIPPED instead.
# ActiveMQ and the RabbitMQ node of the test that stops its broker (relay_fault) are private
# instances on their own ports and directories under target/, stopped and removed at exit: the
# machine's brokers are never stopped.
PRIVATE_BROKERS=()
stop_private_brokers() {
  local script
  for script in "${PRIVATE_BROKERS[@]}"; do bash "$script" stop || true; done
  PRIVATE_BROKERS=()
}
trap 'rc=$?; stop_private_brokers; _on_exit $rc' EXIT
if ! bash scripts/rabbitmq.sh ensure; then
  [[ "${CI:-}" != "true" ]] || die "RabbitMQ with rabbitmq_stomp is required in CI"
  log "WARNING: no RabbitMQ STOMP: relay tests will be skipped"
fi
ACTIVEMQ_UP=0
if bash scripts/activemq.sh start; then
  PRIVATE_BROKERS+=(scripts/activemq.sh)
  ACTIVEMQ_UP=1
  eval "$(bash scripts/activemq.sh env)"
else
  [[ "${CI:-}" != "true" ]] || die "ActiveMQ with STOMP (scripts/activemq.sh) is required in CI"
  log "WARNING: no ActiveMQ STOMP: the relay scale-out test runs against RabbitMQ only"
fi
if bash scripts/rabbitmq-private.sh start; then
  PRIVATE_BROKERS+=(scripts/rabbitmq-private.sh)
  eval "$(bash scripts/rabbitmq-private.sh env)"
else
  [[ "${CI:-}" != "true" ]] || die "the private RabbitMQ node (scripts/rabbitmq-private.sh) is required in CI"
  log "WARNING: no private RabbitMQ node: tests/relay_fault.rs will be skipped"
fi

# Cluster mode's tests start private Redis and NATS servers from these binaries (never the
# machine's own instances).
if bash scripts/cluster-engines.sh ensure; then
  eval "$(bash scripts/cluster-engines.sh env)"
else
  [[ "${CI:-}" != "true" ]] || die "redis-server and nats-server (scripts/cluster-engines.sh) are required in CI"
  log "WARNING: no redis-server / nats-server: the cluster tests will be skipped"
fi

banner "3/7 cargo test --all-targets --features internals, and the doctests"
cargo test --all-targets --features internals 2>&1 | tee "$REPORT_DIR/cargo-test.log"
cargo test --doc 2>&1 | tee -a "$REPORT_DIR/cargo-test.log"
read -r RUST_PASS RUST_FAIL RUST_SKIP < <(cargo_counts "$REPORT_DIR/cargo-test.log")
# The C ABI's panic-boundary test needs its test-only cargo feature.
cargo test --features ffi-test-panic,internals --test ffi contract::
if [[ "$ACTIVEMQ_UP" == 1 ]]; then
  log "relay scale-out test against ActiveMQ ($WSBROKER_ACTIVEMQ_BROKER)"
  WSBROKER_RELAY_BROKER="$WSBROKER_ACTIVEMQ_BROKER" cargo test --features internals --test relay scaleout::
fi
# relay_fault has run: the private RabbitMQ node is not needed any more.
bash scripts/rabbitmq-private.sh stop || true

banner "4/7 cargo build --release"
cargo build --release
# The interop suites spawn this binary themselves; never point them at an external broker here.
export WSBROKER_BIN="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/release/wsbroker"
unset WSBROKER_URL WSBROKER_TCP
[[ -x "$WSBROKER_BIN" ]] || die "broker binary not found: $WSBROKER_BIN"

banner "5/7 install interop dependencies (npm ci, python venv)"
ensure_node_deps
ensure_venv
banner "5b/7 C examples and tests (scripts/c-tests.sh)"
bash scripts/c-tests.sh | tee "$REPORT_DIR/c-tests.log"
read -r C_PASS C_FAIL < <(sed -n 's/^c-tests: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$REPORT_DIR/c-tests.log" | tail -n 1)

banner "5c/7 deployment files: Dockerfile, systemd unit (scripts/packaging-tests.sh)"
bash scripts/packaging-tests.sh | tee "$REPORT_DIR/packaging-tests.log"
read -r PK_PASS PK_FAIL < <(sed -n 's/^packaging-tests: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$REPORT_DIR/packaging-tests.log" | tail -n 1)

banner "6/7 interop: node (@stomp/stompjs over ws)"
run_node_suite
if [[ "$ACTIVEMQ_UP" == 1 ]]; then
  log "stompjs relay scale-out test against ActiveMQ ($WSBROKER_ACTIVEMQ_BROKER)"
  (cd "$NODE_DIR" && WSBROKER_RELAY_BROKER="$WSBROKER_ACTIVEMQ_BROKER" node --test test/relay.test.js)
fi

banner "7/7 interop: python (stomp.py, websockets)"
run_python_suite
banner "7b/7 python binding: ctypes package (scripts/python-tests.sh)"
bash scripts/python-tests.sh
read -r PB_PASS PB_FAIL PB_SKIP < <(junit_counts "$REPORT_DIR/python-binding.xml")
banner "7c/7 browser: chat demo in headless Chromium (scripts/browser-tests.sh)"
bash scripts/browser-tests.sh | tee "$REPORT_DIR/browser-tests.log"
read -r BR_PASS BR_FAIL < <(sed -n 's/^browser-tests: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$REPORT_DIR/browser-tests.log" | tail -n 1)

CURRENT_STEP="summary"
banner "summary ($((SECONDS - START_TIME))s)"
printf 'rust (cargo test):  %d passed, %d failed, %d ignored\n' "$RUST_PASS" "$RUST_FAIL" "$RUST_SKIP"
printf 'c examples:         %d passed, %d failed\n' "${C_PASS:-0}" "${C_FAIL:-0}"
printf 'packaging:          %d passed, %d failed\n' "${PK_PASS:-0}" "${PK_FAIL:-0}"
print_interop_summary
printf 'python binding:     %d passed, %d failed, %d skipped\n' "$PB_PASS" "$PB_FAIL" "$PB_SKIP"
printf 'browser (chromium): %d passed, %d failed\n' "${BR_PASS:-0}" "${BR_FAIL:-0}"
printf 'total: %d passed, %d failed, %d skipped\n' \
  "$((RUST_PASS + ${C_PASS:-0} + ${PK_PASS:-0} + NODE_PASS + PY_PASS + PB_PASS + ${BR_PASS:-0}))" \
  "$((RUST_FAIL + ${C_FAIL:-0} + ${PK_FAIL:-0} + NODE_FAIL + PY_FAIL + PB_FAIL + ${BR_FAIL:-0}))" \
  "$((RUST_SKIP + NODE_SKIP + PY_SKIP + PB_SKIP))"
