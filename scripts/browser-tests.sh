#!/usr/bin/env bash
# Browser tests of wsbroker: the chat demo (examples/web/chat) in headless Chromium, served by
# `wsbroker --static`, over WebSocket, over SockJS forced to xhr-streaming and over SockJS with its
# default transports.
#
#   cargo build --release && bash scripts/browser-tests.sh
#
# Installs what it needs by itself (idempotent): Debian's `chromium` (apt) when CHROMIUM_BIN is
# missing, `npm ci` + `npm run build` in examples/web/chat (copies the stompjs and sockjs-client
# bundles into public/vendor/), `npm ci` in tests/interop/browser (playwright-core, which drives
# the installed Chromium and downloads no browser of its own).
#
# Environment: WSBROKER_BIN (default $CARGO_TARGET_DIR or target, /release/wsbroker),
# CHROMIUM_BIN (default /usr/bin/chromium), WSBROKER_DEBUG=1 prints broker stderr and the pages'
# console. Screenshots: target/browser-*.png; JUnit report: target/interop-reports/browser.xml.
# Last line: `browser-tests: N passed, N failed`.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
install_exit_trap

export WSBROKER_BIN="${WSBROKER_BIN:-${CARGO_TARGET_DIR:-$REPO_ROOT/target}/release/wsbroker}"
export CHROMIUM_BIN="${CHROMIUM_BIN:-/usr/bin/chromium}"
export SCREENSHOT_DIR="${SCREENSHOT_DIR:-${CARGO_TARGET_DIR:-$REPO_ROOT/target}}"
[[ -x "$WSBROKER_BIN" ]] || die "broker binary not found: $WSBROKER_BIN (run 'cargo build --release' first)"
# The tests run from tests/interop/browser: make relative paths given here absolute.
WSBROKER_BIN="$(realpath "$WSBROKER_BIN")"
mkdir -p "$SCREENSHOT_DIR"
SCREENSHOT_DIR="$(realpath "$SCREENSHOT_DIR")"
mkdir -p "$REPORT_DIR"
rm -f "$REPORT_DIR/browser.xml" "$SCREENSHOT_DIR"/browser-*.png

banner "browser-tests 1/2 install Chromium and the npm dependencies"
if [[ ! -x "$CHROMIUM_BIN" ]]; then
  apt_install chromium
fi
[[ -x "$CHROMIUM_BIN" ]] || die "Chromium not found at $CHROMIUM_BIN"
log "browser: $("$CHROMIUM_BIN" --version 2>/dev/null | head -n1)"
ensure_npm_deps "$WEB_CHAT_DIR"
(cd "$WEB_CHAT_DIR" && npm run --silent build)
ensure_npm_deps "$BROWSER_DIR"

banner "browser-tests 2/2 chat demo in headless Chromium"
rc=0
(
  cd "$BROWSER_DIR"
  node --test --test-concurrency=1 \
    --test-reporter=spec --test-reporter-destination=stdout \
    --test-reporter=junit --test-reporter-destination="$REPORT_DIR/browser.xml" \
    test/*.test.js
) || rc=$?

CURRENT_STEP="summary"
PASSED=0
FAILED=0
if [[ -s "$REPORT_DIR/browser.xml" ]]; then
  read -r PASSED FAILED _ < <(junit_counts "$REPORT_DIR/browser.xml")
fi
# A failure outside any test case (a hook, a crash) still fails the run and counts once.
if [[ "$rc" -ne 0 && "$FAILED" -eq 0 ]]; then FAILED=1; fi
shopt -s nullglob
shots=("$SCREENSHOT_DIR"/browser-*.png)
printf '\nscreenshots: %s\n' "${shots[*]:-none}"
printf 'browser-tests: %d passed, %d failed\n' "$PASSED" "$FAILED"
((rc == 0 && FAILED == 0))
