#!/usr/bin/env bash
# The test command of wsbroker: formatting, lints, Rust tests, release build, interop suites.
#
#   bash scripts/test.sh
#
# Installs what the interop suites need by itself (idempotent): Node deps with `npm ci` in
# tests/interop/node, a Python venv in .venv with tests/interop/python/requirements.txt, and
# for the browser tests Debian's chromium plus `npm ci` in examples/web/chat and
# tests/interop/browser (scripts/browser-tests.sh).
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

banner "2b/7 brokers for the relay tests (scripts/rabbitmq.sh, scripts/activemq.sh)"
# Relay tests run against RabbitMQ (and the scale-out test against ActiveMQ too). In CI a broker
# that cannot be set up fails the run; elsewhere the relay tests print SKIPPED instead.
ACTIVEMQ_UP=0
if ! bash scripts/rabbitmq.sh ensure; then
  [[ "${CI:-}" != "true" ]] || die "RabbitMQ with rabbitmq_stomp is required in CI"
  log "WARNING: no RabbitMQ STOMP: relay tests will be skipped"
fi
if bash scripts/activemq.sh ensure; then
  ACTIVEMQ_UP=1
else
  [[ "${CI:-}" != "true" ]] || die "ActiveMQ with STOMP is required in CI"
  log "WARNING: no ActiveMQ STOMP: the relay scale-out test runs against RabbitMQ only"
fi

banner "3/7 cargo test --all-targets --features internals, and the doctests"
cargo test --all-targets --features internals 2>&1 | tee "$REPORT_DIR/cargo-test.log"
cargo test --doc 2>&1 | tee -a "$REPORT_DIR/cargo-test.log"
read -r RUST_PASS RUST_FAIL RUST_SKIP < <(cargo_counts "$REPORT_DIR/cargo-test.log")
# The C ABI's panic-boundary test needs its test-only cargo feature.
cargo test --features ffi-test-panic,internals --test ffi contract::
if [[ "$ACTIVEMQ_UP" == 1 ]]; then
  log "relay scale-out test against ActiveMQ (127.0.0.1:61623)"
  WSBROKER_RELAY_BROKER=127.0.0.1:61623 cargo test --features internals --test relay scaleout::
fi

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

banner "6/7 interop: node (@stomp/stompjs over ws)"
run_node_suite
if [[ "$ACTIVEMQ_UP" == 1 ]]; then
  log "stompjs relay scale-out test against ActiveMQ (127.0.0.1:61623)"
  (cd "$NODE_DIR" && WSBROKER_RELAY_BROKER=127.0.0.1:61623 node --test test/relay.test.js)
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
print_interop_summary
printf 'python binding:     %d passed, %d failed, %d skipped\n' "$PB_PASS" "$PB_FAIL" "$PB_SKIP"
printf 'browser (chromium): %d passed, %d failed\n' "${BR_PASS:-0}" "${BR_FAIL:-0}"
printf 'total: %d passed, %d failed, %d skipped\n' \
  "$((RUST_PASS + ${C_PASS:-0} + NODE_PASS + PY_PASS + PB_PASS + ${BR_PASS:-0}))" \
  "$((RUST_FAIL + ${C_FAIL:-0} + NODE_FAIL + PY_FAIL + PB_FAIL + ${BR_FAIL:-0}))" \
  "$((RUST_SKIP + NODE_SKIP + PY_SKIP + PB_SKIP))"
