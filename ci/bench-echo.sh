#!/usr/bin/env bash
# The echo benchmark of issue 3: round-trip latency (1 connection, 64-byte
# ping-pong) and server CPU per response (64 connections at a fixed rate),
# Sprint on each driver at Basic, Standard and Turbo beside tokio
# current_thread, monoio and a busy-polling std loop (the floor). Each
# server runs pinned to CPU 0 in its own process; the generator runs on
# CPU 1. Prints a markdown table: median and spread over the runs.
#   bash ci/bench-echo.sh [runs]
set -euo pipefail
# A relative CARGO_TARGET_DIR names the caller's directory, not the
# repository's.
if [[ -n "${CARGO_TARGET_DIR:-}" ]]; then
    CARGO_TARGET_DIR="$(realpath -m -- "$CARGO_TARGET_DIR")"
    export CARGO_TARGET_DIR
fi
cd "$(dirname "$0")/.."
cargo build --release -q -p sprint-bench --example echo
"${CARGO_TARGET_DIR:-target}"/release/examples/echo run --runs "${1:-3}"
