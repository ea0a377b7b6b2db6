#!/bin/bash
# Runs every check and test of krill: format, lints, unit and golden tests,
# systemd-analyze verify, and the end-to-end tests in a real systemd (as root with
# systemd-container and debootstrap installed; see README). Ends with one summary
# line: "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")"
cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
# The shipped binaries and the .deb that every e2e container installs.
scripts/build-deb.sh
if command -v lintian >/dev/null; then
    lintian --fail-on error,warning \
        target/x86_64-unknown-linux-gnu/debian/krill_*.deb
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --all-targets --no-fail-fast -- --test-threads=2 2>&1 | tee "$log" || status=$?
cargo test --workspace --doc 2>&1 | tee -a "$log" || status=$?
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "%d passed, %d failed\n", p, f }' "$log"
exit "$status"
