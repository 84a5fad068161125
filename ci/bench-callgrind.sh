#!/usr/bin/env bash
# Instruction counts of one hot path under callgrind (deterministic where
# wall time is noisy): builds the hot_paths example, runs it under
# valgrind with N and with 2N iterations, and prints the instructions per
# iteration (the difference over N, so start-up and shutdown cancel out)
# beside the total of the N run.
#
#   bash ci/bench-callgrind.sh [PATH] [N] [LEVEL]
#   bash ci/bench-callgrind.sh spawn_join 100000
#   bash ci/bench-callgrind.sh ping_pong 100000 basic-epoll
#
# PATH is spawn_join (default) or ping_pong; LEVEL is as hot_paths takes
# it (runtime-bench/examples/hot_paths.rs), standard-epoll by default:
# under valgrind a worker parked in io_uring_enter holds valgrind's thread
# lock and the process hangs, so keep `-epoll`.
set -euo pipefail
# A relative CARGO_TARGET_DIR names the caller's directory, not the
# repository's.
if [[ -n "${CARGO_TARGET_DIR:-}" ]]; then
    CARGO_TARGET_DIR="$(realpath -m -- "$CARGO_TARGET_DIR")"
    export CARGO_TARGET_DIR
fi
cd "$(dirname "$0")/.."
what="${1:-spawn_join}"
n="${2:-100000}"
level="${3:-standard-epoll}"
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }
cargo build --release -q -p sprint-bench --example hot_paths
bin="${CARGO_TARGET_DIR:-target}/release/examples/hot_paths"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
count() {
    valgrind --tool=callgrind --callgrind-out-file="$dir/out.$1" "$bin" "$what" "$1" "$level" >/dev/null 2>"$dir/err.$1" || {
        cat "$dir/err.$1" >&2
        exit 1
    }
    # awk reads to the end: an early exit would end callgrind_annotate
    # with SIGPIPE, which pipefail turns into a failure.
    callgrind_annotate "$dir/out.$1" | awk '/PROGRAM TOTALS/ && !found { gsub(",", "", $1); print $1; found = 1 }'
}
one=$(count "$n")
two=$(count "$((2 * n))")
echo "$what at $level: $(((two - one) / n)) instructions per iteration ($one in all for $n iterations, start-up included)"
