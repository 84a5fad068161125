#!/usr/bin/env bash
# Runs the executor micro-benchmarks (Sprint beside tokio, monoio and
# glommio) RUNS times (default 3) and prints a markdown table per group of
# each runtime's median over the runs of criterion's point estimate, the
# spread (lowest and highest run), and its ratio to Sprint and to glommio.
# The groups: spawn_join (256-task batches), spawn_join_deep (1 M tasks
# outstanding, Sprint at every level; ns per task, with the spawning
# thread's minor page faults in the first round and the most in any later
# round), ping_pong. FILTER (a criterion filter, e.g. spawn_join_deep)
# runs only the groups or runtimes it matches.
#
#   bash ci/bench-executor.sh [RUNS] [FILTER]
set -euo pipefail
# A relative CARGO_TARGET_DIR names the caller's directory, not the
# repository's.
if [[ -n "${CARGO_TARGET_DIR:-}" ]]; then
    CARGO_TARGET_DIR="$(realpath -m -- "$CARGO_TARGET_DIR")"
    export CARGO_TARGET_DIR
fi
cd "$(dirname "$0")/.."
runs="${1:-3}"
filter="${2:-}"
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
for i in $(seq "$runs"); do
    echo "run $i of $runs" >&2
    cargo bench -q -p sprint-bench --bench executor -- $filter 2>/dev/null | tee -a "$out" | grep -E "^[a-z_]+/" >&2 || true
done
python3 - "$out" <<'PY'
import re, statistics, sys
text = open(sys.argv[1]).read()
pat = re.compile(r"([a-z_]+)/([a-z_]+)\s+time:\s+\[([\d.]+) (\w+) ([\d.]+) (\w+) ([\d.]+) (\w+)\]")
fpat = re.compile(r"^faults: ([a-z_]+)/([a-z_]+) first (\d+) later_max (\d+)", re.M)
scale = {"ps": 1e-3, "ns": 1.0, "µs": 1e3, "us": 1e3, "ms": 1e6}
res, faults = {}, {}
for m in pat.finditer(text):
    res.setdefault(m.group(1), {}).setdefault(m.group(2), []).append(float(m.group(5)) * scale[m.group(6)])
for m in fpat.finditer(text):
    faults.setdefault((m.group(1), m.group(2)), []).append((int(m.group(3)), int(m.group(4))))
def ratio(med, v):
    return f"{med / statistics.median(v):.2f}" if v else "-"
for group, by_rt in res.items():
    print(f"\n{group} (ns per {'task' if group == 'spawn_join_deep' else 'operation'}, {len(next(iter(by_rt.values())))} runs)\n")
    has_faults = any(g == group for g, _ in faults)
    head = "| runtime | median | spread | × Sprint | × glommio |"
    rule = "|---|---:|---:|---:|---:|"
    if has_faults:
        head += " faults, first round (median) | faults, later rounds (most) |"
        rule += "---:|---:|"
    print(head)
    print(rule)
    for rt, v in by_rt.items():
        med = statistics.median(v)
        row = f"| {rt} | {med:.1f} | {min(v):.1f}–{max(v):.1f} | {ratio(med, by_rt.get('sprint'))} | {ratio(med, by_rt.get('glommio'))} |"
        if has_faults:
            f = faults.get((group, rt), [])
            first = statistics.median(x for x, _ in f) if f else "-"
            later = max(y for _, y in f) if f else "-"
            row += f" {first} | {later} |"
        print(row)
PY
