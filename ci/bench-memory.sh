#!/usr/bin/env bash
# The memory benchmark of issue 4: spawn+join and a relay-shaped message
# path (a bounded channel, each message fanned out to 8 spawned
# subscribers) on Sprint with and without its arena, at Enterprise and
# Turbo, and on tokio; per task and per message: time, global allocations
# (a counting global allocator) and the worker thread's minor page faults.
#   bash ci/bench-memory.sh [runs]
set -euo pipefail
# A relative CARGO_TARGET_DIR names the caller's directory, not the
# repository's.
if [[ -n "${CARGO_TARGET_DIR:-}" ]]; then
    CARGO_TARGET_DIR="$(realpath -m -- "$CARGO_TARGET_DIR")"
    export CARGO_TARGET_DIR
fi
cd "$(dirname "$0")/.."
cargo build --release -q -p sprint-bench --example memory
"${CARGO_TARGET_DIR:-target}"/release/examples/memory --runs "${1:-3}"
