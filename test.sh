#!/bin/sh
# Runs every check and test of krill: format, lints, unit and golden tests,
# systemd-analyze verify, and the end-to-end tests in a real systemd (as root with
# systemd-container and debootstrap installed; see README).
set -eu
cd "$(dirname "$0")"
cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
cargo build --release --workspace --bins
cargo test --workspace -- --test-threads=2
