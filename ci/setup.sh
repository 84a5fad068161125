#!/usr/bin/env bash
# Installs what Sprint's build and tests need on a fresh Debian machine that
# has only the Rust toolchain. Idempotent: skips what is already there.
set -euo pipefail

# libhwloc-dev: topology (hwlocality); libudev-dev: hwloc links it;
# prometheus: the real server the metrics test scrapes with; g++: libFuzzer
# (built by libfuzzer-sys for ci/fuzz.sh) is C++; wrk: ci/bench-http.sh's
# load generator; python3-bitcoinlib: the independent Bitcoin P2P peer of
# relay/tests/p2p_python.rs.
packages=(pkg-config valgrind libhwloc-dev libudev-dev prometheus g++ wrk python3-bitcoinlib)
missing=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "ci/setup.sh: need root to install: ${missing[*]}" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt clippy
