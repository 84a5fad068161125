#!/usr/bin/env bash
# Runs the executor micro-benchmarks (Sprint beside tokio, monoio and
# glommio) RUNS times (default 3) and prints a markdown table of each
# runtime's median over the runs of criterion's point estimate, the spread
# (lowest and highest run), and its ratio to Sprint.
#
#   bash ci/bench-executor.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-3}"
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
for i in $(seq "$runs"); do
    echo "run $i of $runs" >&2
    cargo bench -q -p sprint-bench --bench executor 2>/dev/null | tee -a "$out" | grep -E "^[a-z_]+/" >&2 || true
done
python3 - "$out" <<'PY'
import re, statistics, sys
text = open(sys.argv[1]).read()
pat = re.compile(r"([a-z_]+)/([a-z_]+)\s+time:\s+\[([\d.]+) (\w+) ([\d.]+) (\w+) ([\d.]+) (\w+)\]")
scale = {"ps": 1e-3, "ns": 1.0, "µs": 1e3, "us": 1e3, "ms": 1e6}
res = {}
for m in pat.finditer(text):
    res.setdefault(m.group(1), {}).setdefault(m.group(2), []).append(float(m.group(5)) * scale[m.group(6)])
for group, by_rt in res.items():
    base = statistics.median(by_rt["sprint"]) if "sprint" in by_rt else None
    print(f"\n{group} (ns per operation, {len(next(iter(by_rt.values())))} runs)\n")
    print("| runtime | median | spread | × Sprint |")
    print("|---|---:|---:|---:|")
    for rt, v in by_rt.items():
        med = statistics.median(v)
        ratio = f"{med / base:.2f}" if base else "-"
        print(f"| {rt} | {med:.1f} | {min(v):.1f}–{max(v):.1f} | {ratio} |")
PY
