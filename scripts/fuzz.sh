#!/usr/bin/env bash
# Coverage-guided fuzzing of the sans-IO layers with cargo-fuzz (libFuzzer).
#
#   scripts/fuzz.sh TARGET|all [SECONDS]     (default 60 s per target)
#
# Targets: ws_decoder ws_handshake stomp_decoder stomp_encoder stomp_session sockjs_frame (logic in
# src/fuzzing/).
# Seeds come from fuzz/corpus/<target>/ (regenerate with fuzz/gen_corpus.py); new inputs
# libFuzzer finds are added there too — commit only small, interesting ones. Crashes land in
# fuzz/artifacts/<target>/; reproduce with `cargo fuzz run <target> <file>`.
# CI runs the same functions over the corpus on stable: `cargo test --lib fuzzing::smoke` (src/fuzzing/smoke.rs).
set -euo pipefail

cd "$(dirname "$0")/.."
TARGETS=(ws_decoder ws_handshake stomp_decoder stomp_encoder stomp_session sockjs_frame)
target=${1:?usage: scripts/fuzz.sh TARGET|all [SECONDS]}
seconds=${2:-60}

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

# cargo-fuzz passes nightly-only -Z flags (sanitizer, coverage instrumentation) to rustc.
# RUSTC_BOOTSTRAP=1 makes a stable toolchain accept them; no nightly install is needed.
export RUSTC_BOOTSTRAP=1

if [[ $target == all ]]; then
    selected=("${TARGETS[@]}")
else
    selected=("$target")
fi
for t in "${selected[@]}"; do
    mkdir -p "fuzz/corpus/$t"
    echo "== fuzzing $t for ${seconds}s"
    cargo fuzz run "$t" "fuzz/corpus/$t" -- -max_total_time="$seconds"
done
