#!/usr/bin/env bash
# The fuzz suite (fuzz/, cargo-fuzz layout, libFuzzer through
# libfuzzer-sys): the relay's frame parser, transaction decoding, the
# relay's state machine, its P2P side and the configuration parser, each run for
# FUZZ_SECONDS (default 60) under AddressSanitizer from a small seed
# corpus. Any crash, sanitizer report, leak, timeout or out-of-memory fails
# the run and leaves the input in $CARGO_TARGET_DIR/artifacts/<target>/.
#
# Built with plain cargo and the flags cargo-fuzz passes (so nothing
# beyond crates.io is needed); RUSTC_BOOTSTRAP=1 lets the stable compiler
# take -Zsanitizer. `cargo fuzz run <target>` works on the same folder.
#
#   FUZZ_SECONDS=20 bash ci/fuzz.sh            # every target
#   bash ci/fuzz.sh frame relay_core           # some
set -euo pipefail
# CARGO_TARGET_DIR as the caller meant it (relative to where it ran).
if [ -n "${CARGO_TARGET_DIR:-}" ]; then
    mkdir -p "$CARGO_TARGET_DIR"
    CARGO_TARGET_DIR=$(cd "$CARGO_TARGET_DIR" && pwd)
fi
cd "$(dirname "$0")/../fuzz"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$(pwd)/target}
seconds=${FUZZ_SECONDS:-60}
triple=x86_64-unknown-linux-gnu
all=(frame transaction relay_core p2p config)
targets=("${@:-${all[@]}}")

export RUSTC_BOOTSTRAP=1
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares -Zsanitizer=address --cfg fuzzing \
-Cdebug-assertions -Coverflow-checks -Cforce-frame-pointers"
bins=()
for t in "${targets[@]}"; do bins+=(--bin "$t"); done
echo "building ${targets[*]} (ASan, coverage) into $CARGO_TARGET_DIR"
cargo build --release --target "$triple" "${bins[@]}"

# The seed corpus is committed and small (fuzz/corpus/<target>: a real
# transaction, framed and bare); libFuzzer adds what it finds to a scratch
# copy. Every crash found so far is kept in fuzz/regressions/<target>.
work=$CARGO_TARGET_DIR/fuzz-work
rm -rf "$work"
mkdir -p "$work"
artifacts=$CARGO_TARGET_DIR/artifacts
status=0
for t in "${targets[@]}"; do
    corpus=$work/$t
    mkdir -p "$corpus" "$artifacts/$t"
    if [ -d "corpus/$t" ]; then cp -r "corpus/$t/." "$corpus/"; fi
    bin=$CARGO_TARGET_DIR/$triple/release/$t
    # Every committed input first, on its own: a regression fails here
    # whatever the random search does afterwards.
    if [ -d "regressions/$t" ] && compgen -G "regressions/$t/*" >/dev/null; then
        echo "== $t: regressions"
        if ! "$bin" regressions/"$t"/* 2>"$work/$t.regressions.log"; then
            grep -m1 -A6 -E "panicked at|ERROR: " "$work/$t.regressions.log" || true
            tail -n 12 "$work/$t.regressions.log"
            echo "FAIL: $t crashed on a kept regression input"
            status=1
            continue
        fi
    fi
    echo "== $t: ${seconds}s"
    if "$bin" "$corpus" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -max_len=65536 -print_final_stats=1 -artifact_prefix="$artifacts/$t/" \
        2>"$work/$t.log"; then
        grep -E '^stat::number_of_executed_units|^Done' "$work/$t.log" || true
    else
        # The panic or sanitizer report first, then how libFuzzer ended.
        grep -m1 -A6 -E "panicked at|ERROR: AddressSanitizer|ERROR: LeakSanitizer|ERROR: libFuzzer" "$work/$t.log" || true
        tail -n 12 "$work/$t.log"
        echo "FAIL: $t; the input is in $artifacts/$t/"
        status=1
    fi
done
exit $status
