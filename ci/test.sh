#!/usr/bin/env bash
# Every test: the workspace suite (unit, integration, doc, trybuild and the
# child-process tests), the loom models of the cross-worker protocol, and
# the unsafe core under AddressSanitizer/LeakSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/setup.sh

# A wedged test fails the run in bounded time (the harness names a test
# running for over 60 s) instead of eating CI's whole limit.
bounded() { timeout --kill-after=30 "$1" "${@:2}"; }

echo "== cargo test --workspace"
bounded 1500 cargo test --workspace --all-targets
bounded 600 cargo test --workspace --doc

echo "== loom: the inbox and the sleep/unpark protocol"
LOOM_MAX_PREEMPTIONS=4 RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
    bounded 900 cargo test -p sprint-core --lib --release loom

echo "== AddressSanitizer + LeakSanitizer: sprint-alloc, sprint-core and sprint-io tests"
# --cfg sprint_asan poisons free slab cells, so a use after free of a task
# cell carved from an arena is caught too.
RUSTC_BOOTSTRAP=1 RUSTFLAGS="-Zsanitizer=address --cfg sprint_asan" CARGO_TARGET_DIR=target/asan \
    bounded 1500 cargo test -p sprint-alloc -p sprint-core -p sprint-io --target x86_64-unknown-linux-gnu --tests

echo "== macOS and Windows build with their settings gated"
bounded 900 bash ci/cross-check.sh

echo "== fuzz"
# Each target for FUZZ_SECONDS (60 s) under AddressSanitizer; a crash fails.
FUZZ_SECONDS=${FUZZ_SECONDS:-60} CARGO_TARGET_DIR=target/fuzz bounded 1800 bash ci/fuzz.sh
