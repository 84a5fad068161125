#!/usr/bin/env bash
# The cost of the observability set on a relay-shaped path, in
# instructions per message counted by callgrind (deterministic where wall
# time is noisy). The whole path runs on the one worker thread, so the
# count is that thread's (--separate-threads); each mode runs at two
# message counts, and the difference divided by the difference in
# messages removes start-up and shutdown. Then ns per record on the hot
# path (criterion). Usage:
#   bash ci/bench-observability.sh [small] [large]
set -euo pipefail
# A relative CARGO_TARGET_DIR names the caller's directory, not the
# repository's.
if [[ -n "${CARGO_TARGET_DIR:-}" ]]; then
    CARGO_TARGET_DIR="$(realpath -m -- "$CARGO_TARGET_DIR")"
    export CARGO_TARGET_DIR
fi
cd "$(dirname "$0")/.."
small=${1:-2000}
large=${2:-12000}
cargo build --release -q -p sprint-bench --example observability
bin=$(realpath "${CARGO_TARGET_DIR:-target}")/release/examples/observability
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The worker thread's instruction count (its profile is the one that runs
# the worker loop, sprint_core::sched::worker::run::). The stall
# threshold is 1 s: callgrind runs the program ~50 times slower, which
# turns ordinary polls into false stalls whose reports would be counted;
# every poll is still checked against the threshold.
ir() {
    rm -f "$tmp"/cg*
    valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$tmp/cg" \
        "$bin" --messages "$1" --stall-us 1000000 "${@:2}" >/dev/null 2>&1
    local f
    f=$(grep -l 'sprint_core::sched::worker::run::' "$tmp"/cg-* | head -1)
    sed -n 's/^summary: \([0-9]*\)/\1/p' "$f"
}
per_message() {
    local a b
    a=$(ir "$small" "$@")
    b=$(ir "$large" "$@")
    echo $(( (b - a) / (large - small) ))
}
off=$(per_message --metrics off)
on=$(per_message --metrics on)
all=$(per_message --metrics on --sample-every 1)
bare=$(per_message --metrics off --latency off)
echo "worker instructions per message (relay-shaped path: 1 publisher, 4 subscribers, epoll):"
echo "  metrics off:                          $off"
echo "  metrics on (sampling 1 in 16):        $on"
echo "  metrics on, every operation timed:    $all"
echo "  metrics off, the relay not timing:    $bare"
awk -v on="$on" -v off="$off" -v all="$all" -v bare="$bare" 'BEGIN {
    printf "on/off = %.4f (target <= 1.03), +%d per message\n", on / off, on - off
    printf "every operation timed/off = %.4f\n", all / off
    printf "on/(off, relay not timing) = %.4f: the relay'"'"'s own latency timestamps too\n", on / bare
}'
echo "== ns per record (criterion)"
cargo bench -q -p sprint-bench --bench observability -- --noplot 2>&1 | grep -E "^histogram|time:"
