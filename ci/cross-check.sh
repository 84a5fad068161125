#!/usr/bin/env bash
# macOS and Windows: the libraries and sprint-tune must build there, with
# every Linux setting compiled out and reported unsupported. A type check
# (`cargo check`) needs only the targets' standard libraries, no linker.
set -euo pipefail
cd "$(dirname "$0")/.."
targets=(x86_64-apple-darwin x86_64-pc-windows-gnu)
if ! rustup target add "${targets[@]}"; then
    echo "!! cross-check skipped: rustup could not install ${targets[*]} (no network to static.rust-lang.org?)" >&2
    exit 0
fi
for t in "${targets[@]}"; do
    echo "== cargo check --target $t (sprint, sprint-tune, sprint-core, sprint-io, sprint-alloc)"
    RUSTFLAGS="-D warnings" CARGO_TARGET_DIR=target/cross cargo check --target "$t" \
        -p sprint -p sprint-core -p sprint-io -p sprint-alloc --lib --bins
done
