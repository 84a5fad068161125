#!/usr/bin/env bash
# Every test: the workspace suite (unit, integration, doc, trybuild and the
# child-process tests), the loom models of the cross-worker protocol, and
# the unsafe core under AddressSanitizer/LeakSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/setup.sh

echo "== cargo test --workspace"
cargo test --workspace --all-targets
cargo test --workspace --doc

echo "== loom: the inbox and the sleep/unpark protocol"
LOOM_MAX_PREEMPTIONS=4 RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
    cargo test -p sprint-core --lib --release loom

echo "== AddressSanitizer + LeakSanitizer: sprint-core and sprint-io tests"
RUSTC_BOOTSTRAP=1 RUSTFLAGS="-Zsanitizer=address" CARGO_TARGET_DIR=target/asan \
    cargo test -p sprint-core -p sprint-io --target x86_64-unknown-linux-gnu --tests
