#!/bin/bash
# Installs what building and testing krill need on Debian or Ubuntu (as root): the
# systemd tools and debootstrap for the e2e containers, lintian, the Python and C++
# SDK toolchains, zig (PyPI `ziglang`) with cargo-zigbuild for the glibc 2.31 build,
# Debian's rustc-web for the arm64 build, and cargo-deb. Used by .ci/run and ./demo.sh; safe to run again.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# systemd: systemd-analyze for `verify`; systemd-container: systemd-nspawn;
# debootstrap: the e2e rootfs; util-linux: nsenter and mount; python3 and g++: the
# Python and C++ SDK tests; cmake and pkg-config: the C++ SDK's package files;
# zsh and fish: the completion smoke tests; openssh-client, iproute2 and tmux: the
# operator's side of the `krill fleet` and `krill -H HOST top` e2e tests (robots are
# containers on veth links).
apt-get install -y -qq systemd systemd-container debootstrap util-linux python3 g++ \
    lintian python3-pip cmake pkg-config zsh fish \
    openssh-client iproute2 tmux >/dev/null
# The arm64 .deb: rustup cannot fetch an aarch64 standard library here, Debian's
# rustc-web (kept current in bookworm-security) ships one; qemu-user-static runs the
# arm64 binaries in their test.
dpkg --add-architecture arm64
apt-get update -qq
apt-get install -y -qq --no-install-recommends rustc-web cargo-web \
    libstd-rust-web-dev:arm64 qemu-user-static >/dev/null
rustup toolchain list | grep -q '^debian-web' || rustup toolchain link debian-web /usr
rustup component add rustfmt clippy >/dev/null 2>&1 || true
# ziglang: zig for the glibc 2.31 build; jsonschema and pyyaml: the schema test;
# pytest: the Python SDK's tests (and upstream's, run against it);
# prometheus_client: its parser reads the metrics endpoint in the e2e test.
python3 -c 'import ziglang, jsonschema, yaml, pytest, prometheus_client' 2>/dev/null ||
    pip install --quiet --break-system-packages ziglang jsonschema pyyaml pytest prometheus_client
command -v cargo-zigbuild >/dev/null || cargo install --quiet --locked cargo-zigbuild
command -v cargo-deb >/dev/null || cargo install --quiet --locked cargo-deb
