#!/usr/bin/env bash
# Runs only the interop suites (steps 5-7 of scripts/test.sh), without cargo.
#
#   bash scripts/interop.sh                         # spawns target/release/wsbroker (must be built)
#   WSBROKER_BIN=/path/to/wsbroker bash scripts/interop.sh
#   WSBROKER_URL=ws://127.0.0.1:15674/ws WSBROKER_TCP=127.0.0.1:61613 WSBROKER_VHOST=/ \
#     bash scripts/interop.sh                       # an existing broker, e.g. RabbitMQ Web-STOMP
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
install_exit_trap

mkdir -p "$REPORT_DIR"
rm -f "$REPORT_DIR"/node.xml "$REPORT_DIR"/python.xml
if [[ -z "${WSBROKER_URL:-}" ]]; then
  export WSBROKER_BIN="${WSBROKER_BIN:-${CARGO_TARGET_DIR:-$REPO_ROOT/target}/release/wsbroker}"
  [[ -x "$WSBROKER_BIN" ]] || die "broker binary not found: $WSBROKER_BIN (cargo build --release)"
  log "broker binary: $WSBROKER_BIN"
else
  log "external broker: $WSBROKER_URL (tcp: ${WSBROKER_TCP:-none})"
fi

banner "install interop dependencies (npm ci, python venv)"
ensure_node_deps
ensure_venv

banner "interop: node (@stomp/stompjs over ws)"
run_node_suite

banner "interop: python (stomp.py, websockets)"
run_python_suite

CURRENT_STEP="summary"
banner "summary ($((SECONDS - START_TIME))s)"
print_interop_summary
printf 'interop: %d passed, %d failed, %d skipped\n' \
  "$((NODE_PASS + PY_PASS))" "$((NODE_FAIL + PY_FAIL))" "$((NODE_SKIP + PY_SKIP))"
