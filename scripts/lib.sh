# shellcheck shell=bash
# Helpers sourced by scripts/test.sh and scripts/interop.sh. Requires bash; expects `set -euo pipefail` in the caller.

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NODE_DIR="$REPO_ROOT/tests/interop/node"
PY_DIR="$REPO_ROOT/tests/interop/python"
BROWSER_DIR="$REPO_ROOT/tests/interop/browser"
WEB_CHAT_DIR="$REPO_ROOT/examples/web/chat"
VENV_DIR="$REPO_ROOT/.venv"
REPORT_DIR="$REPO_ROOT/target/interop-reports"

CURRENT_STEP="(setup)"

banner() {
  CURRENT_STEP="$1"
  printf '\n==================================================================\n'
  printf '== %s   [+%ds]\n' "$1" "$SECONDS"
  printf '==================================================================\n'
}

log() { printf '[%s] %s\n' "$(basename "$0")" "$*"; }

die() { printf '[%s] ERROR: %s\n' "$(basename "$0")" "$*" >&2; exit 1; }

need() { command -v "$1" >/dev/null 2>&1 || die "'$1' is required but not found on PATH"; }

# Installs Debian packages (as root, or with passwordless sudo); refreshes the package lists once
# when the first attempt fails, as it does on a fresh machine.
apt_install() {
  local sudo=()
  [[ "$(id -u)" -eq 0 ]] || sudo=(sudo -n)
  log "installing $* (apt-get)"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null 2>&1 && return 0
  "${sudo[@]}" apt-get update -q >/dev/null 2>&1 || true
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null
}

# The tally of a shell test script (c-tests.sh, packaging-tests.sh): `pass NAME`, `fail NAME
# [DETAIL...]` (returns 0, so a failed check does not stop the script), and at the end
# `tally_summary LABEL DIR`: the failures, the time, and the closing line `LABEL: N passed, N
# failed`; it returns non-zero when a check failed.
PASSED=0
FAILED=0
FAILURES=()
pass() { PASSED=$((PASSED + 1)); printf '  ok    %s\n' "$1"; }
fail() {
  FAILED=$((FAILED + 1)); FAILURES+=("$1"); printf '  FAIL  %s\n' "$1"
  [[ $# -gt 1 ]] && printf '        %s\n' "${@:2}"
  return 0
}
tally_summary() {
  CURRENT_STEP="summary"
  if ((FAILED > 0)); then
    printf '\nfailed:\n'
    printf '  %s\n' "${FAILURES[@]}"
  fi
  printf '\n(%ds; logs in %s)\n' "$((SECONDS - START_TIME))" "$2"
  printf '%s: %d passed, %d failed\n' "$1" "$PASSED" "$FAILED"
  ((FAILED == 0))
}

# True when something accepts TCP connections on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# True when process PID (may be empty) is alive.
pid_alive() { [[ -n "$1" ]] && kill -0 "$1" 2>/dev/null; }

# wait_for_listener PORT PID SECS LOG: waits, bounded by SECS, until 127.0.0.1:PORT accepts
# connections while process PID lives; otherwise prints why (and LOG's tail) and returns 1.
wait_for_listener() {
  local port="$1" pid="$2" secs="$3" log_file="$4" start=$SECONDS
  until port_open "$port"; do
    if ! pid_alive "$pid"; then
      tail -n 20 "$log_file" >&2 2>/dev/null || true
      log "process $pid exited before 127.0.0.1:$port listened (log: $log_file)" >&2
      return 1
    fi
    if ((SECONDS - start >= secs)); then
      log "nothing listens on 127.0.0.1:$port after ${secs}s (log: $log_file)" >&2
      return 1
    fi
    sleep 0.25
  done
}

# sha256 of the given files plus extra strings; used as "already installed" stamps.
stamp_of() {
  local extra="$1"; shift
  { printf '%s\n' "$extra"; cat "$@"; } | sha256sum | cut -d' ' -f1
}

# Installs tests/interop/node/node_modules with `npm ci` from the committed lockfile,
# unless node_modules already matches the lockfile and Node version.
ensure_node_deps() {
  ensure_npm_deps "$NODE_DIR"
}

# Installs DIR/node_modules with `npm ci` from DIR's committed lockfile, unless node_modules
# already matches the lockfile and Node version.
ensure_npm_deps() {
  need node
  need npm
  local dir="$1" want have="" stamp="$1/node_modules/.wsbroker-stamp"
  want="$(stamp_of "node $(node --version)" "$dir/package.json" "$dir/package-lock.json")"
  [[ -f "$stamp" ]] && have="$(cat "$stamp")"
  if [[ "$want" == "$have" ]]; then
    log "node deps up to date ($dir/node_modules)"
    return
  fi
  log "installing node deps: npm ci (in $dir)"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  printf '%s\n' "$want" >"$stamp"
}

# Creates $REPO_ROOT/.venv (python3 -m venv) and installs the pinned requirements,
# unless the venv already matches requirements.txt and the Python version.
ensure_venv() {
  need python3
  local req="$PY_DIR/requirements.txt" stamp="$VENV_DIR/.wsbroker-stamp" want have=""
  if [[ ! -x "$VENV_DIR/bin/python" ]] || ! "$VENV_DIR/bin/python" -c 'import sys' >/dev/null 2>&1; then
    log "creating venv: python3 -m venv $VENV_DIR"
    rm -rf "$VENV_DIR"
    python3 -m venv "$VENV_DIR"
  fi
  want="$(stamp_of "$("$VENV_DIR/bin/python" --version 2>&1)" "$req")"
  [[ -f "$stamp" ]] && have="$(cat "$stamp")"
  if [[ "$want" == "$have" ]]; then
    log "python venv up to date ($VENV_DIR)"
    return
  fi
  log "installing python deps: pip install -r $req"
  "$VENV_DIR/bin/python" -m pip install --disable-pip-version-check --no-input -q -r "$req"
  printf '%s\n' "$want" >"$stamp"
}

# Prints "passed failed skipped" summed over the given JUnit XML files.
junit_counts() {
  python3 - "$@" <<'PY'
import re
import sys
import xml.etree.ElementTree as ET
passed = failed = skipped = 0
for path in sys.argv[1:]:
    # Node's junit reporter copies failure messages verbatim, ANSI colour codes included:
    # control characters are not XML, so they go before parsing.
    with open(path, encoding="utf-8", errors="replace") as f:
        text = re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", "", f.read())
    for case in ET.fromstring(text).iter("testcase"):
        tags = {child.tag for child in case}
        if tags & {"failure", "error"}:
            failed += 1
        elif "skipped" in tags:
            skipped += 1
        else:
            passed += 1
print(passed, failed, skipped)
PY
}

# Prints "passed failed ignored" summed over the `test result:` lines of a cargo test log.
cargo_counts() {
  awk '/^test result: /{
         for (i = 1; i <= NF; i++) {
           if ($(i+1) ~ /^passed/) p += $i
           if ($(i+1) ~ /^failed/) f += $i
           if ($(i+1) ~ /^ignored/) s += $i
         }
       } END { printf "%d %d %d\n", p, f, s }' "$1"
}

# Runs the Node interop suite; sets NODE_PASS NODE_FAIL NODE_SKIP. Fails (set -e) on a failing test.
run_node_suite() {
  (
    cd "$NODE_DIR"
    node --test \
      --test-reporter=spec --test-reporter-destination=stdout \
      --test-reporter=junit --test-reporter-destination="$REPORT_DIR/node.xml" \
      test/*.test.js
  )
  read -r NODE_PASS NODE_FAIL NODE_SKIP < <(junit_counts "$REPORT_DIR/node.xml")
}

# Runs the Python interop suite; sets PY_PASS PY_FAIL PY_SKIP. Fails (set -e) on a failing test.
run_python_suite() {
  (
    cd "$PY_DIR"
    "$VENV_DIR/bin/python" -m pytest -q --timeout 60 -rs --junitxml="$REPORT_DIR/python.xml"
  )
  read -r PY_PASS PY_FAIL PY_SKIP < <(junit_counts "$REPORT_DIR/python.xml")
}

print_interop_summary() {
  printf 'node interop:       %d passed, %d failed, %d skipped\n' "$NODE_PASS" "$NODE_FAIL" "$NODE_SKIP"
  printf 'python interop:     %d passed, %d failed, %d skipped\n' "$PY_PASS" "$PY_FAIL" "$PY_SKIP"
}

install_exit_trap() {
  START_TIME=$SECONDS
  trap '_on_exit $?' EXIT
}

_on_exit() {
  if [[ $1 -ne 0 ]]; then
    printf '\n[%s] FAILED during step: %s (exit code %d, after %ds)\n' \
      "$(basename "$0")" "$CURRENT_STEP" "$1" "$((SECONDS - START_TIME))" >&2
  fi
}
