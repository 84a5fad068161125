#!/usr/bin/env bash
# hyper 1.x hello world under wrk: Sprint at Basic, Standard and Turbo
# (one worker, pinned to CPU 1, each connection `spawn`ed, served through
# sprint::compat) and tokio current_thread (pinned to CPU 1, hyper-util's
# TokioIo), wrk pinned to CPU 0; the servers interleaved, RUNS times.
# Prints each run and, per server, the median and the spread (lowest-
# highest) of requests/s and p99, and of each run's ratio to the tokio run
# beside it; and each side's CPU over the run: the server's busy share and
# CPU µs per request (from /proc/PID/stat), wrk's busy share (its rusage),
# so a run the generator limited can be told apart (wrk near 100 %).
# Builds under CARGO_TARGET_DIR (default target/).
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
hz=$(getconf CLK_TCK)
ticks() { # user+system clock ticks of process $1 so far
    awk '{print $14 + $15}' "/proc/$1/stat"
}
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
        # wrk in a session of its own: with autogroup scheduling (on here,
        # and in most distributions) a session's threads share one CPU
        # weight, so a server worker at nice -15 (Turbo) in wrk's session
        # would take wrk's share on the other CPU, and anything else on
        # that CPU (kernel threads, other sessions) would delay wrk, not
        # the server. A real client is never in the server's session.
        # bash's `time` reports the user and system CPU of what it waited
        # for: wrk, through setsid and taskset.
        t0=$(ticks "$pid")
        res=$( { TIMEFORMAT='wrk-cpu %U %S'; time setsid -w taskset -c 0 wrk -t1 -c64 -d"${secs}s" --latency "http://127.0.0.1:$port/"; } 2>&1 )
        t1=$(ticks "$pid")
        kill "$pid"; wait "$pid" 2>/dev/null || true
        rps=$(awk '/Requests\/sec/ {print $2}' <<<"$res")
        p99=$(awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub("us","",v); v=v/1000} else if (v ~ /ms$/) {sub("ms","",v)} else if (v ~ /s$/) {sub("s","",v); v=v*1000}; print v}' <<<"$res")
        timeouts=$(awk '/timeout/ {print $NF}' <<<"$res")
        reqs=$(awk '/requests in/ {print $1}' <<<"$res")
        # The server's busy share and CPU per request; wrk's busy share.
        srv=$(awk -v a="$t0" -v b="$t1" -v hz="$hz" -v s="$secs" -v n="$reqs" \
            'BEGIN {c = (b - a) / hz; printf "%.0f %.3f", 100 * c / s, 1e6 * c / n}')
        wrkb=$(awk -v s="$secs" '$1=="wrk-cpu" {printf "%.0f", 100 * ($2 + $3) / s}' <<<"$res")
        set -- $srv
        name=${s/sprint /}
        printf 'run %d %-9s %10s req/s  p99 %8.3f ms  timeouts %s  server busy %3s %% (%s us/req)  wrk busy %3s %%\n' \
            "$r" "$name" "$rps" "$p99" "${timeouts:-0}" "$1" "$2" "$wrkb"
        echo "$name $r $rps $p99 $2 $1 $wrkb" >>"$out"
    done
done
echo
stat() { # median (lowest-highest) of the numbers on stdin
    sort -g | awk '{v[NR]=$1} END {printf "%.3f (%.3f-%.3f)", v[int((NR+1)/2)], v[1], v[NR]}'
}
# Each run's figure over the tokio run of the same round.
ratio() { # name column
    awk -v n="$1" -v c="$2" '$1=="tokio" {t[$2]=$c} $1==n {v[$2]=$c} END {for (r in v) print v[r] / t[r]}' "$out"
}
printf '%-9s %24s %24s %24s %24s %24s %18s %18s\n' server "req/s median (range)" "x tokio" "p99 ms median (range)" "x tokio" \
    "server us/req" "server busy %" "wrk busy %"
for s in "${servers[@]}"; do
    name=${s/sprint /}
    rps=$(awk -v n="$name" '$1==n {print $3}' "$out" | stat)
    p99=$(awk -v n="$name" '$1==n {print $4}' "$out" | stat)
    rps_x=$(ratio "$name" 3 | stat)
    p99_x=$(ratio "$name" 4 | stat)
    cpu=$(awk -v n="$name" '$1==n {print $5}' "$out" | stat)
    sbusy=$(awk -v n="$name" '$1==n {print $6}' "$out" | sort -g | awk '{v[NR]=$1} END {printf "%d (%d-%d)", v[int((NR+1)/2)], v[1], v[NR]}')
    wbusy=$(awk -v n="$name" '$1==n {print $7}' "$out" | sort -g | awk '{v[NR]=$1} END {printf "%d (%d-%d)", v[int((NR+1)/2)], v[1], v[NR]}')
    printf '%-9s %24s %24s %24s %24s %24s %18s %18s\n' "$name" "$rps" "$rps_x" "$p99" "$p99_x" "$cpu" "$sbusy" "$wbusy"
done
rm -f "$out"
