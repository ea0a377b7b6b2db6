#!/bin/bash
# Builds the shipped binaries for glibc 2.31 (Debian 11+, Ubuntu 20.04+) and the .deb.
#
#   scripts/build-deb.sh          target/x86_64-unknown-linux-gnu/debian/krill_<v>-1_amd64.deb
#                                 (what every e2e container and ./demo.sh install)
#   scripts/build-deb.sh arm64    target/arm64/debian/krill_<v>-1_arm64.deb
#                                 (Jetson, Raspberry Pi)
#
# arm64 needs an aarch64 standard library, which rustup cannot fetch here: Debian's
# rustc-web (bookworm-security, the toolchain Debian keeps current for Firefox) has
# one, libstd-rust-web-dev:arm64. scripts/deps.sh installs it and links it as the
# rustup toolchain `debian-web`; zig links against glibc 2.31 as for amd64. Its own
# target directory keeps the two compilers' caches apart.
set -euo pipefail
cd "$(dirname "$0")/.."
arch=${1:-amd64}
case $arch in
amd64)
    cargo zigbuild --release --target x86_64-unknown-linux-gnu.2.31 --workspace --bins
    cargo run -q -p krill-dist -- target/dist
    cargo deb -p krill-ctl --no-build --target x86_64-unknown-linux-gnu
    ;;
arm64)
    export CARGO_TARGET_DIR=target/arm64
    cargo +debian-web zigbuild --release --target aarch64-unknown-linux-gnu.2.31 \
        --workspace --bins
    # Man pages and completions are the same on every architecture.
    [ -d target/dist ] || CARGO_TARGET_DIR=target cargo run -q -p krill-dist -- target/dist
    cargo deb -p krill-ctl --no-build --no-strip --target aarch64-unknown-linux-gnu
    ;;
*)
    echo "build-deb.sh: unknown architecture '$arch' (amd64 or arm64)" >&2
    exit 2
    ;;
esac
