#!/bin/bash
# Builds the shipped binaries for glibc 2.31 (Debian 11+, Ubuntu 20.04+) and the .deb
# that every e2e container and ./demo.sh install:
# target/x86_64-unknown-linux-gnu/debian/krill_<version>-1_amd64.deb.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo zigbuild --release --target x86_64-unknown-linux-gnu.2.31 --workspace --bins
cargo run -q -p krill-dist -- target/dist
cargo deb -p krill-ctl --no-build --target x86_64-unknown-linux-gnu
