#!/usr/bin/env bash
# Every test: the workspace suite (unit, integration, doc, trybuild and the
# child-process tests), the benchmarks run once in criterion's test mode,
# the loom models of the cross-worker protocol, the unsafe core under
# AddressSanitizer/LeakSanitizer, the macOS and Windows type check and the
# fuzz targets. Each stage prints its wall time. Every build goes under
# CARGO_TARGET_DIR (default target/); the loom, ASan, cross and fuzz builds,
# whose flags differ, in folders of their own inside it.
set -euo pipefail
cd "$(dirname "$0")/.."
. ci/stage.sh
target=${CARGO_TARGET_DIR:-target}

# .ci/run has installed what is needed and says so; run alone, this does.
[ "${CI_SETUP_DONE:-0}" = 1 ] || stage setup bash ci/setup.sh

# A wedged test fails the run in bounded time (the harness names a test
# running for over 60 s) instead of eating CI's whole limit.
bounded() { timeout --kill-after=30 "$1" "${@:2}"; }

# Without sprint-bench: its benches and examples (and so its
# dev-dependencies glommio, monoio, criterion, plotters, hyper) are no test
# of Sprint's and had most of this build to themselves. They build, and the
# benches run once, in the next stage.
# sprint's tokio-io feature (sprint::compat's tokio traits, its tests):
# no member enables it, so the run does, in the same build (sprint's hyper
# feature comes with the examples).
stage "test: workspace" bounded 1500 cargo test --workspace --exclude sprint-bench --all-targets --features sprint/tokio-io
stage "test: doc" bounded 600 cargo test --workspace --exclude sprint-bench --doc --features sprint/tokio-io
stage "benches and examples (criterion's test mode)" bounded 900 cargo test -p sprint-bench --all-targets
# The relay on monoio and glommio (features off by default; their crates
# are built for sprint-bench just above).
stage "relay on monoio and glommio" bounded 600 cargo test -p sprint-relay --features monoio,glommio --test relay --test p2p_python
# Nothing below reads the debug build (each later stage builds with flags
# of its own into a folder of its own).
prune "$target/debug"

# The inbox and the sleep/unpark protocol.
stage loom bounded 900 env LOOM_MAX_PREEMPTIONS=4 RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR="$target/loom" \
    cargo test -p sprint-core --lib --release loom
prune "$target/loom"

# sprint-alloc, sprint-os, sprint-core and sprint-io tests. --cfg sprint_asan poisons
# free slab cells, so a use after free of a task cell carved from an arena
# is caught too.
stage "AddressSanitizer + LeakSanitizer" bounded 1500 env RUSTC_BOOTSTRAP=1 \
    RUSTFLAGS="-Zsanitizer=address --cfg sprint_asan" CARGO_TARGET_DIR="$target/asan" \
    cargo test -p sprint-alloc -p sprint-os -p sprint-core -p sprint-io --target x86_64-unknown-linux-gnu --tests
prune "$target/asan"

# The libraries build on macOS and Windows with their settings gated
# (under $target/cross).
stage "cross-check" bounded 900 bash ci/cross-check.sh
prune "$target/cross"

# Each target for FUZZ_SECONDS (60 s) under AddressSanitizer; a crash fails.
stage fuzz bounded 1800 env FUZZ_SECONDS="${FUZZ_SECONDS:-60}" CARGO_TARGET_DIR="$target/fuzz" bash ci/fuzz.sh
