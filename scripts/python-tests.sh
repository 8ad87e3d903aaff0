#!/usr/bin/env bash
# Tests of the Python binding (bindings/python), against the package as pip installs it.
#
#   bash scripts/python-tests.sh [extra pytest args]
#
# Uses the repository's .venv (created like scripts/test.sh does, with the interop pins), adds
# the pinned test dependencies of bindings/python/requirements-test.txt, builds the wheel
# with `pip wheel ./bindings/python` (its build hook runs `cargo build --release --lib`, bundles
# a stripped libwsbroker.so and, with auditwheel, tags the wheel manylinux) into
# target/python-wheels/, installs that wheel (skipped when neither the package sources nor the
# library changed), and runs `pytest -q bindings/python/tests` against it.
# JUnit XML goes to target/interop-reports/python-binding.xml.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
install_exit_trap

PYB_DIR="$REPO_ROOT/bindings/python"
PYB_REQ="$PYB_DIR/requirements-test.txt"
PYB_REPORT="$REPORT_DIR/python-binding.xml"

need cargo
mkdir -p "$REPORT_DIR"

banner "python binding 1/3: venv and test dependencies"
ensure_venv
deps_stamp="$VENV_DIR/.wsbroker-python-binding-deps"
want="$(stamp_of "$("$VENV_DIR/bin/python" --version 2>&1)" "$PYB_REQ")"
have=""
[[ -f "$deps_stamp" ]] && have="$(cat "$deps_stamp")"
if [[ "$want" == "$have" ]]; then
  log "python binding test deps up to date"
else
  log "installing python binding test deps: pip install -r $PYB_REQ"
  "$VENV_DIR/bin/python" -m pip install --disable-pip-version-check --no-input -q -r "$PYB_REQ"
  printf '%s\n' "$want" >"$deps_stamp"
fi

banner "python binding 2/3: pip wheel ./bindings/python (cargo build --release --lib), pip install the wheel"
# Build first (a no-op when up to date) so that the stamp covers the library that pip will bundle.
cargo build --release --lib
lib_path="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/release/libwsbroker.so"
[[ -f "$lib_path" ]] || die "library not found after cargo build: $lib_path"
pkg_stamp="$VENV_DIR/.wsbroker-python-binding-pkg"
mapfile -t pkg_files < <(cd "$PYB_DIR" && find pyproject.toml setup.py README.md src -type f \
  ! -name '*.pyc' ! -path '*/__pycache__/*' ! -path '*.egg-info/*' ! -name 'libwsbroker.*' | LC_ALL=C sort)
want="$(stamp_of "$("$VENV_DIR/bin/python" --version 2>&1)" \
  "${pkg_files[@]/#/$PYB_DIR/}" "$lib_path")"
have=""
[[ -f "$pkg_stamp" ]] && have="$(cat "$pkg_stamp")"
if [[ "$want" == "$have" ]] && "$VENV_DIR/bin/python" -c 'import wsbroker' >/dev/null 2>&1; then
  log "wsbroker package up to date in $VENV_DIR (sources and library unchanged)"
else
  rm -f "$pkg_stamp"
  wheel_dir="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/python-wheels"
  rm -rf "$wheel_dir"
  build_log="$wheel_dir.log"
  # No build isolation: setuptools, wheel and auditwheel come pinned from requirements-test.txt
  # (offline, fast). -v keeps the build hook's lines, shown here (the whole log on failure).
  if ! "$VENV_DIR/bin/python" -m pip wheel --disable-pip-version-check --no-input -v \
      --no-build-isolation --no-deps -w "$wheel_dir" "$PYB_DIR" >"$build_log" 2>&1; then
    cat "$build_log" >&2
    die "pip wheel $PYB_DIR failed (log above, also in $build_log)"
  fi
  grep -E '^ *wsbroker build:' "$build_log" || true
  wheel_file="$(ls "$wheel_dir"/wsbroker-*.whl)"
  log "wheel: $(basename "$wheel_file"), $(stat -c %s "$wheel_file") bytes"
  "$VENV_DIR/bin/python" -m pip install --disable-pip-version-check --no-input -q \
    --no-deps --force-reinstall "$wheel_file"
  printf '%s\n' "$want" >"$pkg_stamp"
fi

banner "python binding 3/3: pytest -q bindings/python/tests"
# The installed package must be what is tested: no library override from the environment.
unset WSBROKER_LIBRARY
"$VENV_DIR/bin/python" -m pytest -q -rs --timeout 300 --junitxml="$PYB_REPORT" "$PYB_DIR/tests" "$@"
read -r PYB_PASS PYB_FAIL PYB_SKIP < <(junit_counts "$PYB_REPORT")
printf 'python binding:     %d passed, %d failed, %d skipped\n' "$PYB_PASS" "$PYB_FAIL" "$PYB_SKIP"
