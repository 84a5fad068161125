#!/usr/bin/env bash
# hyper 1.x hello world under wrk: Sprint at Basic, Standard and Turbo
# (one worker, pinned to CPU 1, each connection `spawn`ed) and tokio
# current_thread (pinned to CPU 1), wrk pinned to CPU 0; the servers
# interleaved, RUNS times. Prints each run and, per server, the median and
# the spread of requests/s and p99.
#   bash ci/bench-http.sh [RUNS] [SECONDS]
set -euo pipefail
# A relative CARGO_TARGET_DIR names the caller's directory, not the
# repository's.
if [[ -n "${CARGO_TARGET_DIR:-}" ]]; then
    CARGO_TARGET_DIR="$(realpath -m -- "$CARGO_TARGET_DIR")"
    export CARGO_TARGET_DIR
fi
cd "$(dirname "$0")/.."
runs=${1:-3}
secs=${2:-10}
command -v wrk >/dev/null || { echo "bench-http: wrk is missing (apt-get install wrk)" >&2; exit 1; }
cargo build --release -q -p sprint-bench --example hyper_hello
bin="${CARGO_TARGET_DIR:-target}/release/examples/hyper_hello"
servers=("tokio" "sprint basic" "sprint standard" "sprint turbo")
out=$(mktemp)
port=18080
for r in $(seq "$runs"); do
    for s in "${servers[@]}"; do
        port=$((port + 1))
        set -- $s
        if [ "$1" = tokio ]; then
            "$bin" --runtime tokio --addr 127.0.0.1:$port --cpu 1 2>/dev/null &
        else
            "$bin" --runtime sprint --level "$2" --spawn --addr 127.0.0.1:$port --cpu 1 2>/dev/null &
        fi
        pid=$!
        for _ in $(seq 100); do
            (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break
            sleep 0.05
        done
        res=$(taskset -c 0 wrk -t1 -c64 -d"${secs}s" --latency "http://127.0.0.1:$port/")
        kill "$pid"; wait "$pid" 2>/dev/null || true
        rps=$(awk '/Requests\/sec/ {print $2}' <<<"$res")
        p99=$(awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub("us","",v); v=v/1000} else if (v ~ /ms$/) {sub("ms","",v)} else if (v ~ /s$/) {sub("s","",v); v=v*1000}; print v}' <<<"$res")
        timeouts=$(awk '/timeout/ {print $NF}' <<<"$res")
        name=${s/sprint /}
        printf 'run %d %-9s %10s req/s  p99 %8.3f ms  timeouts %s\n' "$r" "$name" "$rps" "$p99" "${timeouts:-0}"
        echo "$name $rps $p99" >>"$out"
    done
done
echo
printf '%-9s %22s %26s\n' server "req/s median (range)" "p99 ms median (range)"
stat() { # median (lowest-highest) of the numbers on stdin
    sort -g | awk '{v[NR]=$1} END {printf "%.3f (%.3f-%.3f)", v[int((NR+1)/2)], v[1], v[NR]}'
}
for s in "${servers[@]}"; do
    name=${s/sprint /}
    rps=$(awk -v n="$name" '$1==n {print $2}' "$out" | stat)
    p99=$(awk -v n="$name" '$1==n {print $3}' "$out" | stat)
    printf '%-9s %30s %30s\n' "$name" "$rps" "$p99"
done
rm -f "$out"
