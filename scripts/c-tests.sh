#!/usr/bin/env bash
# C tests of wsbroker: the C examples compiled against include/wsbroker.h and the release
# library, then run against real STOMP clients, natively and under valgrind.
#
#   cargo build --release && bash scripts/c-tests.sh
#
# 1. compile examples/c/*.c with -std=c99 -Wall -Wextra -Werror against libwsbroker.so, one of
#    them against libwsbroker.a (static link), the header as C++, the C++17 RAII wrapper
#    include/wsbroker.hpp and examples/cpp/game_client.cpp (-Wall -Wextra -Werror), the minimal program of
#    docs/using-from-c.md; build through examples/c/Makefile (shared and STATIC=1) and
#    examples/c/CMakeLists.txt, all from the build tree (target/release)
# 2. scripts/install.sh into target/c-tests/prefix (both libraries side by side), check the
#    installed files (SONAME chain, versions, C ABI number), a staged --destdir install and
#    --uninstall; then every documented consumer route builds chat_server.c against the prefix
#    and runs it with its client: CMake find_package(wsbroker CONFIG), CMake pkg_check_modules,
#    cc $(pkg-config ...) and the Makefile, each shared and static (ldd: shared ones load the
#    prefix's libwsbroker.so.0, static ones no libwsbroker.so); prints the route matrix at the end
# 3. run each example in poll and callback mode with its client from tests/c/ (stomp.py in .venv,
#    @stomp/stompjs in tests/interop/node/node_modules; both installed here if missing) and
#    assert both exit codes (the example: 0 after --exit-after or after SIGTERM); the chat
#    server also with the library's own client: the C++ game-loop example (wsb::Client), also
#    under valgrind
# 4. the same pairs with the example under valgrind (no invalid accesses, no definite leaks)
# 5. the same pairs with the examples built with AddressSanitizer (-fsanitize=address, leak
#    detection on; linking the release libwsbroker.so, whose Rust code is not instrumented:
#    this checks the C side, and LeakSanitizer still sees every malloc, Rust's included)
#
# Environment: CC (default cc), CXX (default c++), C_TESTS_VALGRIND=0 skips step 4,
# C_TESTS_ASAN=0 skips step 5, CARGO_TARGET_DIR. With CI=true a consumer route whose tool
# (cmake, pkg-config) is missing fails instead of being skipped. Logs and binaries go to
# target/c-tests/. Last line: `c-tests: N passed, N failed`.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
install_exit_trap

CC="${CC:-cc}"
CXX="${CXX:-c++}"
LIB_DIR="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/release"
INCLUDE_DIR="$REPO_ROOT/include"
EX_DIR="$REPO_ROOT/examples/c"
CLIENT_DIR="$REPO_ROOT/tests/c"
OUT="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/c-tests"
PY="$VENV_DIR/bin/python"
CFLAGS_STRICT=(-std=c99 -Wall -Wextra -Werror -O1 -g -I"$INCLUDE_DIR")
EXAMPLES=(chat_server game_loop auth browser_auth raw_rooms)
VALGRIND_SUPP="$CLIENT_DIR/valgrind.supp"   # optional suppressions (none needed so far)


# Prints the last lines of a log, indented.
tail_log() { [[ -s "$1" ]] && { printf '        --- %s (tail)\n' "$1"; tail -n "${2:-25}" "$1" | sed 's/^/        | /'; }; return 0; }

# Runs a build command, logging its output; counts it as one test.
check_build() {
  local name="$1" log="$OUT/logs/build-${1//[^A-Za-z0-9_.-]/_}.log"; shift
  if "$@" >"$log" 2>&1; then pass "$name"; else fail "$name" "command: $*"; tail_log "$log"; fi
}

need "$CC"
need python3
[[ -f "$INCLUDE_DIR/wsbroker.h" ]] || die "missing $INCLUDE_DIR/wsbroker.h: run 'cargo build --release' first"
[[ -f "$LIB_DIR/libwsbroker.so" ]] || die "missing $LIB_DIR/libwsbroker.so: run 'cargo build --release' first"
[[ -f "$LIB_DIR/libwsbroker.a" ]] || die "missing $LIB_DIR/libwsbroker.a: run 'cargo build --release' first"
rm -rf "$OUT"
mkdir -p "$OUT/bin" "$OUT/logs"

banner "c-tests 1/5 compile the C examples"
ensure_venv
ensure_node_deps
for ex in "${EXAMPLES[@]}"; do
  check_build "cc $ex.c (shared, -Werror)" \
    "$CC" "${CFLAGS_STRICT[@]}" "$EX_DIR/$ex.c" -o "$OUT/bin/$ex" \
    -L"$LIB_DIR" -lwsbroker -Wl,-rpath,"$LIB_DIR" -pthread
done
check_build "cc chat_server.c (static libwsbroker.a, -Werror)" \
  "$CC" "${CFLAGS_STRICT[@]}" "$EX_DIR/chat_server.c" -o "$OUT/bin/chat_server-static" \
  "$LIB_DIR/libwsbroker.a" -lpthread -ldl -lm
if [[ -x "$OUT/bin/chat_server-static" ]]; then
  deps="$(ldd "$OUT/bin/chat_server-static" 2>&1 || true)"
  if [[ "$deps" == *libwsbroker* ]]; then
    fail "chat_server-static does not depend on libwsbroker.so" "$deps"
  else
    pass "chat_server-static does not depend on libwsbroker.so"
  fi
fi
if command -v "$CXX" >/dev/null 2>&1; then
  check_build "wsbroker.h compiles as C++ (-Werror)" \
    sh -c "printf '#include \"wsbroker.h\"\nint main(void) { return wsb_abi_version() == WSB_ABI_VERSION ? 0 : 1; }\n' |
           \"$CXX\" -std=c++11 -Wall -Wextra -Werror -I\"$INCLUDE_DIR\" -x c++ - -o \"$OUT/bin/header_cxx\" \
             -L\"$LIB_DIR\" -lwsbroker -Wl,-rpath,\"$LIB_DIR\" && \"$OUT/bin/header_cxx\""
fi
CXXFLAGS_STRICT=(-std=c++17 -Wall -Wextra -Werror -O1 -g -I"$INCLUDE_DIR")
if command -v "$CXX" >/dev/null 2>&1; then
  check_build "wsbroker.hpp compiles alone (C++17, -Wall -Wextra -Wpedantic -Werror)" \
    sh -c "printf '#include \"wsbroker.hpp\"\nint main() { return 0; }\n' |
           \"$CXX\" -std=c++17 -Wall -Wextra -Wpedantic -Werror -I\"$INCLUDE_DIR\" -x c++ - -o \"$OUT/bin/hpp_only\" \
             -L\"$LIB_DIR\" -lwsbroker -Wl,-rpath,\"$LIB_DIR\""
  check_build "c++ examples/cpp/game_client.cpp (wsbroker.hpp, C++17, -Werror)" \
    "$CXX" "${CXXFLAGS_STRICT[@]}" "$REPO_ROOT/examples/cpp/game_client.cpp" -o "$OUT/bin/game_client_cpp" \
    -L"$LIB_DIR" -lwsbroker -Wl,-rpath,"$LIB_DIR" -pthread
fi
# The minimal program of docs/using-from-c.md (its first ```c block) must compile and run.
awk '/^```c$/ { f = 1; next } /^```$/ { if (f) exit } f' docs/using-from-c.md >"$OUT/bin/docs_minimal.c"
docs_minimal() {
  "$CC" "${CFLAGS_STRICT[@]}" "$OUT/bin/docs_minimal.c" -o "$OUT/bin/docs_minimal" \
    -L"$LIB_DIR" -lwsbroker -Wl,-rpath,"$LIB_DIR" && "$OUT/bin/docs_minimal"
}
check_build "docs/using-from-c.md minimal program compiles and runs" docs_minimal
check_build "make -C examples/c (shared)" \
  make -s -C "$EX_DIR" BUILD_DIR="$OUT/make-shared" WARNINGS="-Wall -Wextra -Werror" \
    WSBROKER_INCLUDE="$INCLUDE_DIR" WSBROKER_LIB="$LIB_DIR"
check_build "make -C examples/c STATIC=1" \
  make -s -C "$EX_DIR" BUILD_DIR="$OUT/make-static" STATIC=1 WARNINGS="-Wall -Wextra -Werror" \
    WSBROKER_INCLUDE="$INCLUDE_DIR" WSBROKER_LIB="$LIB_DIR"
# The build-system checks need these; install them like the other test tools when missing.
command -v pkg-config >/dev/null 2>&1 || apt_install pkg-config || true
command -v cmake >/dev/null 2>&1 || apt_install cmake || true
if command -v cmake >/dev/null 2>&1; then
  check_build "cmake examples/c (build tree, shared)" \
    sh -c "cmake -S \"$EX_DIR\" -B \"$OUT/cmake\" -DWSBROKER_ROOT=\"$REPO_ROOT\" -DCMAKE_C_FLAGS=-Werror >/dev/null &&
           cmake --build \"$OUT/cmake\" -j 2"
  check_build "cmake examples/c (build tree) -DWSBROKER_STATIC=ON" \
    sh -c "cmake -S \"$EX_DIR\" -B \"$OUT/cmake-static\" -DWSBROKER_ROOT=\"$REPO_ROOT\" -DWSBROKER_STATIC=ON -DCMAKE_C_FLAGS=-Werror >/dev/null &&
           cmake --build \"$OUT/cmake-static\" -j 2"
else
  log "cmake not installed: skipping examples/c/CMakeLists.txt"
fi

# ---------------------------------------------------------------------------------------------
# Running an example with its client.
#   run_case NAME VG STOP CLIENT -- EXAMPLE_BINARY ARGS...
#   VG: 0 native, 1 under valgrind, 2 built with ASan. STOP: "exit" (the example must exit 0 by itself, via
#   --exit-after) or "term" (SIGTERM after the client finished; must exit 0).
#   CLIENT: chat | chat-final | game | auth | browser | raw | raw-final
# ---------------------------------------------------------------------------------------------
run_case() {
  local name="$1" vg="$2" stop="$3" client="$4"; shift 5
  local mode="" i
  for ((i = 1; i < $#; i++)); do
    if [[ "${!i}" == "--mode" ]]; then local j=$((i + 1)); mode="${!j}"; fi
  done
  local base="$OUT/logs/${name//[^A-Za-z0-9_.-]/_}"
  local start_wait=15 client_limit=60 exit_wait=10 slow=()
  local cmd=("$@")
  if [[ "$vg" == 1 ]]; then
    start_wait=90; client_limit=200; exit_wait=60; slow=(--slow)
    cmd=(valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite
         --track-origins=no --num-callers=30 --log-file="$base.valgrind" "${cmd[@]}")
    [[ -f "$VALGRIND_SUPP" ]] && cmd=("${cmd[0]}" --suppressions="$VALGRIND_SUPP" "${cmd[@]:1}")
  elif [[ "$vg" == 2 ]]; then
    # Distinct exit codes for sanitizer findings; reports go to the example's stderr log.
    cmd=(env ASAN_OPTIONS=detect_leaks=1:exitcode=98 LSAN_OPTIONS=exitcode=97 "${cmd[@]}")
  fi
  : >"$base.stdout"
  "${cmd[@]}" >"$base.stdout" 2>"$base.stderr" </dev/null &
  local pid=$! deadline=$((SECONDS + start_wait)) ws="" tcp=""
  while [[ -z "$ws" || -z "$tcp" ]]; do
    ws="$(sed -n 's/^wsbroker listening websocket \(ws:[^ ]*\)$/\1/p' "$base.stdout" 2>/dev/null | head -n1 || true)"
    tcp="$(sed -n 's/^wsbroker listening tcp \([^ ]*\)$/\1/p' "$base.stdout" 2>/dev/null | head -n1 || true)"
    if [[ -n "$ws" && -n "$tcp" ]]; then break; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      wait "$pid" || true
      fail "$name" "the example exited before listening"; tail_log "$base.stderr"; tail_log "$base.valgrind"; return
    fi
    if ((SECONDS > deadline)); then
      kill -KILL "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
      fail "$name" "no 'wsbroker listening' lines within ${start_wait}s"; tail_log "$base.stderr"; return
    fi
    sleep 0.1
  done

  local client_rc=0
  case "$client" in
    chat) timeout "$client_limit" "$PY" "$CLIENT_DIR/chat_client.py" --ws "$ws" --tcp "$tcp" --mode "$mode" "${slow[@]}" ;;
    chat-final) timeout "$client_limit" "$PY" "$CLIENT_DIR/chat_client.py" --ws "$ws" --tcp "$tcp" --mode "$mode" --final "${slow[@]}" ;;
    auth) timeout "$client_limit" "$PY" "$CLIENT_DIR/auth_client.py" --ws "$ws" --tcp "$tcp" --mode "$mode" "${slow[@]}" ;;
    browser) timeout "$client_limit" "$PY" "$CLIENT_DIR/browser_client.py" --ws "$ws" --tcp "$tcp" --mode "$mode" "${slow[@]}" ;;
    game) timeout "$client_limit" node "$CLIENT_DIR/game_client.mjs" --ws "$ws" --mode "$mode" "${slow[@]}" ;;
    raw) timeout "$client_limit" "$PY" "$CLIENT_DIR/raw_client.py" --ws "$ws" --tcp "$tcp" --mode "$mode" "${slow[@]}" ;;
    raw-final) timeout "$client_limit" "$PY" "$CLIENT_DIR/raw_client.py" --ws "$ws" --tcp "$tcp" --mode "$mode" --final "${slow[@]}" ;;
    cpp)
      # The library's own client (C++ wrapper, game loop); under valgrind too in step 3.
      local cpp_cmd=("$CPP_CLIENT" --url "$ws" --messages 6 --timeout "$((client_limit - 10))")
      if [[ "$vg" == 1 ]]; then
        cpp_cmd=(valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite
                 --num-callers=30 --log-file="$base.client-valgrind" "${cpp_cmd[@]}")
      elif [[ "$vg" == 2 ]]; then
        cpp_cmd=(env ASAN_OPTIONS=detect_leaks=1:exitcode=98 LSAN_OPTIONS=exitcode=97 "${cpp_cmd[@]}")
      fi
      timeout "$client_limit" "${cpp_cmd[@]}" ;;
    none) true ;;
  esac >"$base.client" 2>&1 || client_rc=$?

  if [[ "$stop" == "term" ]]; then kill -TERM "$pid" 2>/dev/null || true; fi
  deadline=$((SECONDS + exit_wait))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS <= deadline)); do sleep 0.1; done
  local example_rc=0 hung=""
  if kill -0 "$pid" 2>/dev/null; then
    hung="did not exit within ${exit_wait}s$([[ "$stop" == "term" ]] && echo " of SIGTERM" || true)"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" || example_rc=$?

  local problems=()
  if [[ -n "$hung" ]]; then
    problems+=("example $hung")
  elif [[ "$example_rc" -ne 0 ]]; then
    local why=""
    case "$vg:$example_rc" in
      1:99) why="; 99 = valgrind found errors" ;;
      2:98) why="; 98 = AddressSanitizer found errors" ;;
      2:97) why="; 97 = LeakSanitizer found leaks" ;;
    esac
    problems+=("example exit code $example_rc (expected 0$why)")
  fi
  if [[ "$client_rc" -ne 0 ]]; then
    problems+=("client exit code $client_rc$([[ "$client_rc" == 124 ]] && echo " (timed out after ${client_limit}s)" || true)")
  fi
  if [[ "$vg" == 1 && -f "$base.valgrind" ]]; then
    local summary
    summary="$(grep -E 'ERROR SUMMARY|definitely lost' "$base.valgrind" | sed 's/^==[0-9]*== //' | tr '\n' ';' || true)"
    VG_SUMMARIES+=("$name: $summary")
  fi
  if ((${#problems[@]} == 0)); then
    pass "$name"
  else
    fail "$name" "${problems[@]}"
    tail_log "$base.client" 15
    tail_log "$base.stderr" 15
    if [[ "$vg" == 1 ]]; then tail_log "$base.valgrind" 40; tail_log "$base.client-valgrind" 40; fi
  fi
  if [[ "$vg" == 1 && -f "$base.client-valgrind" ]]; then
    VG_SUMMARIES+=("$name (client): $(grep -E 'ERROR SUMMARY|definitely lost' "$base.client-valgrind" | sed 's/^==[0-9]*== //' | tr '\n' ';' || true)")
  fi
  return 0
}

VG_SUMMARIES=()
run_all() {
  local vg="$1" label="$2" b="${3:-$OUT/bin}"
  local mode
  CPP_CLIENT="$b/game_client_cpp"
  if [[ -x "$CPP_CLIENT" ]]; then
    for mode in poll callback; do
      run_case "$label chat_server --mode $mode + game_client.cpp (wsb::Client, 60 Hz), SIGTERM" "$vg" term cpp -- \
        "$b/chat_server" --port 0 --tcp-port 0 --mode "$mode"
    done
  fi
  for mode in poll callback; do
    if [[ "$mode" == poll ]]; then
      # chat: the client's 4th message reaches --exit-after 4 → the example exits 0 by itself
      run_case "$label chat_server --mode poll --exit-after 4 + chat_client.py" "$vg" exit chat-final -- \
        "$b/chat_server" --port 0 --tcp-port 0 --mode poll --exit-after 4
    else
      run_case "$label chat_server --mode callback + chat_client.py, SIGTERM" "$vg" term chat -- \
        "$b/chat_server" --port 0 --tcp-port 0 --mode callback
    fi
    run_case "$label game_loop --mode $mode + game_client.mjs, SIGTERM" "$vg" term game -- \
      "$b/game_loop" --port 0 --tcp-port 0 --mode "$mode"
    run_case "$label auth --mode $mode + auth_client.py, SIGTERM" "$vg" term auth -- \
      "$b/auth" --port 0 --tcp-port 0 --mode "$mode"
    run_case "$label browser_auth --mode $mode + browser_client.py, SIGTERM" "$vg" term browser -- \
      "$b/browser_auth" --port 0 --tcp-port 0 --mode "$mode"
    if [[ "$mode" == poll ]]; then
      # raw mode: the client's 5th room message reaches --exit-after 5 → the example exits 0
      run_case "$label raw_rooms --mode poll --exit-after 5 + raw_client.py" "$vg" exit raw-final -- \
        "$b/raw_rooms" --port 0 --tcp-port 0 --mode poll --exit-after 5
    else
      run_case "$label raw_rooms --mode callback + raw_client.py, SIGTERM" "$vg" term raw -- \
        "$b/raw_rooms" --port 0 --tcp-port 0 --mode callback
    fi
  done
}

# ---------------------------------------------------------------------------------------------
# The installed library: scripts/install.sh into a prefix holding both libwsbroker.so and
# libwsbroker.a, then every documented consumer route builds chat_server.c against that prefix
# and runs it with its client (poll mode, --exit-after 4). Shared routes must load the prefix's
# libwsbroker.so.0, static ones must not depend on any libwsbroker.so (ldd).
# ---------------------------------------------------------------------------------------------
PREFIX="$OUT/prefix"
ROUTES=()    # "tool|linkage|result" rows of the consumer-route matrix

# Records a route's result in the matrix, and a failure before the run as a failed test.
route_result() {
  local tool="$1" linkage="$2" result="$3"; shift 3
  ROUTES+=("$tool|$linkage|$result")
  [[ "$result" == ok || "$result" == "run failed" ]] || fail "route $tool ($linkage): $result" "$@"
}

# route TOOL LINKAGE BINARY BUILD-COMMAND...: builds, checks the binary's libraries, runs it.
route() {
  local tool="$1" linkage="$2" bin="$3"; shift 3
  local log="$OUT/logs/route-${tool//[^A-Za-z0-9_.-]/_}-$linkage.log" deps before
  if ! "$@" >"$log" 2>&1; then
    route_result "$tool" "$linkage" "build failed" "command: $*"; tail_log "$log"; return 0
  fi
  deps="$(ldd "$bin" 2>&1 || true)"
  if [[ "$linkage" == shared && "$deps" != *"libwsbroker.so.0 => $PREFIX/lib/libwsbroker.so.0 "* ]]; then
    route_result "$tool" "$linkage" "does not load $PREFIX/lib/libwsbroker.so.0" "$deps"; return 0
  fi
  if [[ "$linkage" == static && "$deps" == *libwsbroker* ]]; then
    route_result "$tool" "$linkage" "depends on libwsbroker.so" "$deps"; return 0
  fi
  before=$FAILED   # run_case counts the run as one test
  run_case "route $tool ($linkage): chat_server --mode poll --exit-after 4 + chat_client.py" 0 exit chat-final -- \
    "$bin" --port 0 --tcp-port 0 --mode poll --exit-after 4
  if ((FAILED > before)); then route_result "$tool" "$linkage" "run failed"; else route_result "$tool" "$linkage" ok; fi
}

# A route whose tool is missing: a failure in CI, a visible skip elsewhere.
route_unavailable() {
  if [[ "${CI:-}" == true ]]; then route_result "$1" "$2" "$3 not installed"; else ROUTES+=("$1|$2|skipped: $3 not installed"); fi
}

# Configures and builds chat_server of examples/c/CMakeLists.txt in DIR with the given options.
cmake_chat() {
  local dir="$1"; shift
  cmake -S "$EX_DIR" -B "$dir" -DCMAKE_C_FLAGS=-Werror "$@" && cmake --build "$dir" --target chat_server -j 2
}

# cc with pkg-config MODULE (the shared module also gets an rpath to the prefix's libdir).
cc_pkg_config() {
  local module="$1" out="$2" flags rpath=()
  flags="$(pkg-config --cflags --libs "$module")" || return 1
  [[ "$module" == wsbroker ]] && rpath=("-Wl,-rpath,$(pkg-config --variable=libdir wsbroker)")
  # shellcheck disable=SC2086 # pkg-config's output is a list of flags
  "$CC" "${CFLAGS_STRICT[@]}" -I"$EX_DIR" "$EX_DIR/chat_server.c" -o "$out" $flags "${rpath[@]}" -pthread
}

# The installed files: the SONAME chain, both libraries, the .pc and CMake files, and one
# version everywhere (Cargo.toml, wsb_version(), .pc, CMake) and one C ABI number (header prose,
# WSB_ABI_VERSION, wsb_abi_version() of the installed library).
check_installed_layout() {
  local lib="$PREFIX/lib" version abi prose soname problems=() f
  version="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)"
  for f in include/wsbroker.h lib/libwsbroker.a lib/pkgconfig/wsbroker.pc lib/pkgconfig/wsbroker-static.pc \
    lib/cmake/wsbroker/wsbrokerConfig.cmake lib/cmake/wsbroker/wsbrokerConfigVersion.cmake bin/wsbroker; do
    [[ -f "$PREFIX/$f" ]] || problems+=("missing $f")
  done
  [[ -f "$lib/libwsbroker.so.$version" && ! -L "$lib/libwsbroker.so.$version" ]] || problems+=("libwsbroker.so.$version is not a file")
  [[ "$(readlink "$lib/libwsbroker.so.0")" == "libwsbroker.so.$version" ]] || problems+=("libwsbroker.so.0 does not point to libwsbroker.so.$version")
  [[ "$(readlink "$lib/libwsbroker.so")" == libwsbroker.so.0 ]] || problems+=("libwsbroker.so does not point to libwsbroker.so.0")
  [[ "$(readlink "$lib/libwsbroker_static.a")" == libwsbroker.a ]] || problems+=("libwsbroker_static.a does not point to libwsbroker.a")
  soname="$(readelf -d "$lib/libwsbroker.so.$version" 2>/dev/null | sed -n 's/.*Library soname: \[\(.*\)\]$/\1/p')"
  [[ "$soname" == libwsbroker.so.0 ]] || problems+=("SONAME '$soname', expected libwsbroker.so.0")
  abi="$(sed -n 's/^#define WSB_ABI_VERSION \([0-9]*\)$/\1/p' "$PREFIX/include/wsbroker.h")"
  prose="$(sed -n '2s/.*(ABI version \([0-9]*\)).*/\1/p' "$PREFIX/include/wsbroker.h")"
  [[ -n "$abi" && "$prose" == "$abi" ]] || problems+=("the header's first line says ABI version '$prose', WSB_ABI_VERSION is '$abi'")
  printf '#include <stdio.h>\n#include "wsbroker.h"\nint main(void) { printf("%%u %%s\\n", wsb_abi_version(), wsb_version()); return 0; }\n' \
    >"$OUT/bin/versions.c"
  local got
  got="$("$CC" -std=c99 -I"$PREFIX/include" "$OUT/bin/versions.c" -o "$OUT/bin/versions" -L"$lib" -lwsbroker \
    -Wl,-rpath,"$lib" && "$OUT/bin/versions")" || problems+=("the version program did not build or run")
  [[ "$got" == "$abi $version" ]] || problems+=("installed library: wsb_abi_version() wsb_version() = '$got', expected '$abi $version'")
  [[ "$(pkg-config --modversion wsbroker 2>/dev/null)" == "$version" ]] \
    || problems+=("pkg-config --modversion wsbroker is not $version")
  grep -q "^set(PACKAGE_VERSION \"$version\")$" "$lib/cmake/wsbroker/wsbrokerConfigVersion.cmake" \
    || problems+=("wsbrokerConfigVersion.cmake does not say $version")
  grep -q "^set(wsbroker_ABI_VERSION $abi)$" "$lib/cmake/wsbroker/wsbrokerConfig.cmake" \
    || problems+=("wsbrokerConfig.cmake does not say ABI $abi")
  if ((${#problems[@]} == 0)); then pass "installed prefix: SONAME chain, both libraries, version $version, C ABI $abi everywhere"
  else fail "installed prefix layout and versions" "${problems[@]}"; fi
}

# --destdir stages a relocatable tree (the .pc names the final prefix, the CMake package finds
# itself where it lies) and --uninstall removes every file it installed.
check_staged_install() {
  local stage="$OUT/stage" final=/opt/wsbroker problems=() left
  rm -rf "$stage"
  if ! bash scripts/install.sh --no-build --destdir "$stage" --prefix "$final" >"$OUT/logs/install-staged.log" 2>&1; then
    fail "scripts/install.sh --destdir" "see $OUT/logs/install-staged.log"; tail_log "$OUT/logs/install-staged.log"; return 0
  fi
  grep -qx "prefix=$final" "$stage$final/lib/pkgconfig/wsbroker.pc" || problems+=("wsbroker.pc does not say prefix=$final")
  if command -v cmake >/dev/null 2>&1; then
    cmake_chat "$OUT/route-cmake-staged" -DWSBROKER_USE_CONFIG=ON -DCMAKE_PREFIX_PATH="$stage$final" \
      >"$OUT/logs/route-cmake-staged.log" 2>&1 || problems+=("find_package(wsbroker CONFIG) in the staged (moved) tree failed")
  fi
  bash scripts/install.sh --uninstall --destdir "$stage" --prefix "$final" >>"$OUT/logs/install-staged.log" 2>&1 \
    || problems+=("--uninstall failed")
  left="$(find "$stage" \( -type f -o -type l \) 2>/dev/null | head -n 5)"
  [[ -z "$left" ]] || problems+=("left after --uninstall: $left")
  if ((${#problems[@]} == 0)); then pass "scripts/install.sh --destdir (relocatable CMake package) and --uninstall"
  else fail "scripts/install.sh --destdir and --uninstall" "${problems[@]}"; fi
}

banner "c-tests 2/5 scripts/install.sh and every consumer route of the installed prefix"
if bash scripts/install.sh --no-build --prefix "$PREFIX" >"$OUT/logs/install.log" 2>&1; then
  pass "scripts/install.sh --prefix $PREFIX"
  # Only the installed prefix: the routes must not find a wsbroker.pc from anywhere else.
  export PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig"
  check_installed_layout
  check_staged_install
  if command -v cmake >/dev/null 2>&1; then
    route "cmake find_package(wsbroker CONFIG)" shared "$OUT/route-cmake-config-shared/chat_server" \
      cmake_chat "$OUT/route-cmake-config-shared" -DWSBROKER_USE_CONFIG=ON -DCMAKE_PREFIX_PATH="$PREFIX"
    route "cmake find_package(wsbroker CONFIG)" static "$OUT/route-cmake-config-static/chat_server" \
      cmake_chat "$OUT/route-cmake-config-static" -DWSBROKER_USE_CONFIG=ON -DWSBROKER_STATIC=ON -DCMAKE_PREFIX_PATH="$PREFIX"
  else
    route_unavailable "cmake find_package(wsbroker CONFIG)" shared cmake
    route_unavailable "cmake find_package(wsbroker CONFIG)" static cmake
  fi
  if command -v cmake >/dev/null 2>&1 && command -v pkg-config >/dev/null 2>&1; then
    route "cmake pkg_check_modules" shared "$OUT/route-cmake-pkgconfig-shared/chat_server" \
      cmake_chat "$OUT/route-cmake-pkgconfig-shared" -DWSBROKER_USE_PKG_CONFIG=ON
    route "cmake pkg_check_modules" static "$OUT/route-cmake-pkgconfig-static/chat_server" \
      cmake_chat "$OUT/route-cmake-pkgconfig-static" -DWSBROKER_USE_PKG_CONFIG=ON -DWSBROKER_STATIC=ON
  else
    route_unavailable "cmake pkg_check_modules" shared "cmake or pkg-config"
    route_unavailable "cmake pkg_check_modules" static "cmake or pkg-config"
  fi
  if command -v pkg-config >/dev/null 2>&1; then
    route "cc \$(pkg-config --cflags --libs wsbroker)" shared "$OUT/bin/chat_server-pc-shared" \
      cc_pkg_config wsbroker "$OUT/bin/chat_server-pc-shared"
    route "cc \$(pkg-config --cflags --libs wsbroker-static)" static "$OUT/bin/chat_server-pc-static" \
      cc_pkg_config wsbroker-static "$OUT/bin/chat_server-pc-static"
  else
    route_unavailable "cc \$(pkg-config --cflags --libs wsbroker)" shared pkg-config
    route_unavailable "cc \$(pkg-config --cflags --libs wsbroker-static)" static pkg-config
  fi
  route "make -C examples/c WSBROKER_LIB=<prefix>/lib" shared "$OUT/route-make-shared/chat_server" \
    make -s -C "$EX_DIR" BUILD_DIR="$OUT/route-make-shared" WARNINGS="-Wall -Wextra -Werror" \
      WSBROKER_INCLUDE="$PREFIX/include" WSBROKER_LIB="$PREFIX/lib" "$OUT/route-make-shared/chat_server"
  route "make -C examples/c WSBROKER_LIB=<prefix>/lib" static "$OUT/route-make-static/chat_server" \
    make -s -C "$EX_DIR" BUILD_DIR="$OUT/route-make-static" STATIC=1 WARNINGS="-Wall -Wextra -Werror" \
      WSBROKER_INCLUDE="$PREFIX/include" WSBROKER_LIB="$PREFIX/lib" "$OUT/route-make-static/chat_server"
else
  fail "scripts/install.sh --prefix $PREFIX" "see $OUT/logs/install.log"; tail_log "$OUT/logs/install.log"
fi

banner "c-tests 3/5 run the examples against stomp.py, websockets and @stomp/stompjs"
for ex in "${EXAMPLES[@]}"; do
  [[ -x "$OUT/bin/$ex" ]] || die "$ex was not built; see the compile failures above"
done
run_all 0 "native"
if [[ -x "$OUT/bin/chat_server-static" ]]; then
  run_case "native chat_server-static (libwsbroker.a) --mode poll + chat_client.py, SIGTERM" 0 term chat -- \
    "$OUT/bin/chat_server-static" --port 0 --tcp-port 0 --mode poll
fi
for mode in poll callback; do
  run_case "native game_loop --mode $mode --exit-after 30 (no client)" 0 exit none -- \
    "$OUT/bin/game_loop" --port 0 --tcp-port 0 --mode "$mode" --exit-after 30
done
# Embedding safety (tests/c/embedding_safety.c): SIGPIPE left at its default action while
# clients reset mid-stream, absurd lengths, publish before start, free racing publishers.
embedding_safety() {
  local bin="$OUT/bin/embedding_safety$1"; shift
  "$CC" "${CFLAGS_STRICT[@]}" "$@" "$CLIENT_DIR/embedding_safety.c" -o "$bin" \
    -L"$LIB_DIR" -lwsbroker -Wl,-rpath,"$LIB_DIR" -pthread && timeout 120 "$bin"
}
check_build "embedding_safety.c (SIGPIPE not ignored, RST clients, free racing publishers)" \
  embedding_safety ""
check_build "embedding_safety.c under AddressSanitizer" \
  embedding_safety -asan -fsanitize=address -fno-omit-frame-pointer
if "$OUT/bin/chat_server" --mode bogus >/dev/null 2>&1; then rc=0; else rc=$?; fi
if [[ "$rc" -eq 2 ]]; then pass "chat_server --mode bogus exits 2"; else fail "chat_server --mode bogus exits 2" "exit code $rc"; fi

# A taken port: wsb_server_start fails with WSB_ERR_ADDRESS_IN_USE, reported, exit code 1.
python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
print(s.getsockname()[1], flush=True); time.sleep(30)' >"$OUT/logs/port-holder" &
holder=$!
for _ in $(seq 50); do [[ -s "$OUT/logs/port-holder" ]] && break; sleep 0.1; done
taken="$(cat "$OUT/logs/port-holder")"
if "$OUT/bin/auth" --port "$taken" >/dev/null 2>"$OUT/logs/address-in-use.stderr"; then rc=0; else rc=$?; fi
kill "$holder" 2>/dev/null || true; wait "$holder" 2>/dev/null || true
if [[ "$rc" -eq 1 ]] && grep -q WSB_ERR_ADDRESS_IN_USE "$OUT/logs/address-in-use.stderr"; then
  pass "auth --port <taken> exits 1 with WSB_ERR_ADDRESS_IN_USE"
else
  fail "auth --port <taken> exits 1 with WSB_ERR_ADDRESS_IN_USE" "exit code $rc"; tail_log "$OUT/logs/address-in-use.stderr"
fi

banner "c-tests 4/5 the same under valgrind"
if [[ "${C_TESTS_VALGRIND:-1}" == 0 ]]; then
  log "C_TESTS_VALGRIND=0: skipped"
else
  if ! command -v valgrind >/dev/null 2>&1; then
    apt_install valgrind
  fi
  need valgrind
  run_all 1 "valgrind"
  printf '\nvalgrind summaries:\n'
  for s in "${VG_SUMMARIES[@]}"; do printf '  %s\n' "$s"; done
fi

banner "c-tests 5/5 the same with the examples built with AddressSanitizer"
if [[ "${C_TESTS_ASAN:-1}" == 0 ]]; then
  log "C_TESTS_ASAN=0: skipped"
else
  mkdir -p "$OUT/bin/asan"
  asan_ok=1
  for ex in "${EXAMPLES[@]}"; do
    check_build "cc -fsanitize=address $ex.c" \
      "$CC" "${CFLAGS_STRICT[@]}" -fsanitize=address -fno-omit-frame-pointer "$EX_DIR/$ex.c" \
      -o "$OUT/bin/asan/$ex" -L"$LIB_DIR" -lwsbroker -Wl,-rpath,"$LIB_DIR" -pthread
    [[ -x "$OUT/bin/asan/$ex" ]] || asan_ok=0
  done
  if [[ -x "$OUT/bin/game_client_cpp" ]]; then
    check_build "c++ -fsanitize=address game_client.cpp" \
      "$CXX" "${CXXFLAGS_STRICT[@]}" -fsanitize=address -fno-omit-frame-pointer \
      "$REPO_ROOT/examples/cpp/game_client.cpp" -o "$OUT/bin/asan/game_client_cpp" \
      -L"$LIB_DIR" -lwsbroker -Wl,-rpath,"$LIB_DIR" -pthread
  fi
  if ((asan_ok)); then
    run_all 2 "asan" "$OUT/bin/asan"
  fi
fi

CURRENT_STEP="summary"
if ((${#ROUTES[@]} > 0)); then
  printf '\nconsumer routes of the installed prefix (%s):\n' "$PREFIX"
  for r in "${ROUTES[@]}"; do
    IFS='|' read -r tool linkage result <<<"$r"
    printf '  %-52s %-7s %s\n' "$tool" "$linkage" "$result"
  done
fi
tally_summary c-tests "$OUT"
