#!/usr/bin/env bash
# C tests of wsbroker: the C examples compiled against include/wsbroker.h and the release
# library, then run against real STOMP clients, natively and under valgrind.
#
#   cargo build --release && bash scripts/c-tests.sh
#
# 1. compile examples/c/*.c with -std=c99 -Wall -Wextra -Werror against libwsbroker.so, one of
#    them against libwsbroker.a (static link), the header as C++, the C++17 RAII wrapper
#    include/wsbroker.hpp and examples/cpp/game_client.cpp (-Wall -Wextra -Werror), the minimal program of
#    docs/using-from-c.md; build through
#    examples/c/Makefile (shared and STATIC=1), the generated wsbroker.pc (pkg-config) and
#    examples/c/CMakeLists.txt (when cmake is installed)
# 2. run each example in poll and callback mode with its client from tests/c/ (stomp.py in .venv,
#    @stomp/stompjs in tests/interop/node/node_modules; both installed here if missing) and
#    assert both exit codes (the example: 0 after --exit-after or after SIGTERM); the chat
#    server also with the library's own client: the C++ game-loop example (wsb::Client)
# 3. (valgrind) the C++ client runs under valgrind too, against the chat server under valgrind
# 3. the same pairs with the example under valgrind (no invalid accesses, no definite leaks)
# 4. the same pairs with the examples built with AddressSanitizer (-fsanitize=address, leak
#    detection on; linking the release libwsbroker.so, whose Rust code is not instrumented:
#    this checks the C side, and LeakSanitizer still sees every malloc, Rust's included)
#
# Environment: CC (default cc), CXX (default c++), C_TESTS_VALGRIND=0 skips step 3,
# C_TESTS_ASAN=0 skips step 4, CARGO_TARGET_DIR. Logs and binaries go to target/c-tests/. Last line: `c-tests: N passed, N failed`.
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

PASSED=0
FAILED=0
FAILURES=()

pass() { PASSED=$((PASSED + 1)); printf '  ok    %s\n' "$1"; }
fail() {
  FAILED=$((FAILED + 1)); FAILURES+=("$1"); printf '  FAIL  %s\n' "$1"
  [[ $# -gt 1 ]] && printf '        %s\n' "${@:2}"
  return 0
}
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

banner "c-tests 1/4 compile the C examples"
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
# pkg-config: an install-like prefix made of symlinks, wsbroker.pc generated from wsbroker.pc.in.
# The build-system checks need these; install them like the other test tools when missing.
command -v pkg-config >/dev/null 2>&1 || apt_install pkg-config || true
command -v cmake >/dev/null 2>&1 || apt_install cmake || true
if command -v pkg-config >/dev/null 2>&1; then
  PREFIX="$OUT/prefix"
  mkdir -p "$PREFIX/include" "$PREFIX/lib/pkgconfig"
  ln -sf "$INCLUDE_DIR/wsbroker.h" "$PREFIX/include/wsbroker.h"
  ln -sf "$LIB_DIR/libwsbroker.so" "$PREFIX/lib/libwsbroker.so"
  ln -sf "$LIB_DIR/libwsbroker.a" "$PREFIX/lib/libwsbroker.a"
  VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)"
  sed -e "s|@PREFIX@|$PREFIX|g" -e "s|@VERSION@|$VERSION|g" "$EX_DIR/wsbroker.pc.in" >"$PREFIX/lib/pkgconfig/wsbroker.pc"
  check_build "pkg-config wsbroker: cc \$(pkg-config --cflags --libs wsbroker)" \
    sh -c "PKG_CONFIG_PATH=\"$PREFIX/lib/pkgconfig\" && export PKG_CONFIG_PATH &&
           \"$CC\" -std=c99 -Wall -Wextra -Werror -I\"$EX_DIR\" \"$EX_DIR/auth.c\" -o \"$OUT/bin/auth-pkgconfig\" \
             \$(pkg-config --cflags --libs wsbroker) -Wl,-rpath,\"$PREFIX/lib\" -pthread &&
           \"$OUT/bin/auth-pkgconfig\" --help 2>/dev/null; test \$? -eq 2"
  # --static: without the .so in the prefix the linker must take libwsbroker.a + Libs.private.
  mkdir -p "$OUT/prefix-static/lib/pkgconfig" "$OUT/prefix-static/include"
  ln -sf "$INCLUDE_DIR/wsbroker.h" "$OUT/prefix-static/include/wsbroker.h"
  ln -sf "$LIB_DIR/libwsbroker.a" "$OUT/prefix-static/lib/libwsbroker.a"
  sed -e "s|@PREFIX@|$OUT/prefix-static|g" -e "s|@VERSION@|$VERSION|g" "$EX_DIR/wsbroker.pc.in" \
    >"$OUT/prefix-static/lib/pkgconfig/wsbroker.pc"
  check_build "pkg-config --static wsbroker: static link" \
    sh -c "PKG_CONFIG_PATH=\"$OUT/prefix-static/lib/pkgconfig\" && export PKG_CONFIG_PATH &&
           \"$CC\" -std=c99 -Wall -Wextra -Werror \"$EX_DIR/auth.c\" -o \"$OUT/bin/auth-pkgconfig-static\" \
             \$(pkg-config --static --cflags --libs wsbroker) &&
           \"$OUT/bin/auth-pkgconfig-static\" --help 2>/dev/null; test \$? -eq 2"
else
  log "pkg-config not installed: skipping the wsbroker.pc checks"
fi
if command -v cmake >/dev/null 2>&1; then
  check_build "cmake examples/c (shared)" \
    sh -c "cmake -S \"$EX_DIR\" -B \"$OUT/cmake\" -DWSBROKER_ROOT=\"$REPO_ROOT\" -DCMAKE_C_FLAGS=-Werror >/dev/null &&
           cmake --build \"$OUT/cmake\" -j 2"
  check_build "cmake examples/c -DWSBROKER_STATIC=ON" \
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

banner "c-tests 2/4 run the examples against stomp.py, websockets and @stomp/stompjs"
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

banner "c-tests 3/4 the same under valgrind"
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

banner "c-tests 4/4 the same with the examples built with AddressSanitizer"
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
if ((FAILED > 0)); then
  printf '\nfailed:\n'
  for f in "${FAILURES[@]}"; do printf '  %s\n' "$f"; done
fi
printf '\n(%ds; logs and binaries in %s)\n' "$((SECONDS - START_TIME))" "$OUT"
printf 'c-tests: %d passed, %d failed\n' "$PASSED" "$FAILED"
((FAILED == 0))
