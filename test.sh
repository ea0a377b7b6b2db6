#!/bin/bash
# Runs every check and test of krill: format, lints, unit and golden tests,
# systemd-analyze verify, and the end-to-end tests in a real systemd (as root with
# systemd-container and debootstrap installed; see README). Ends with one summary
# line: "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")"
# The e2e roots of the systemd matrix, debootstrapped (once, cached) while we build.
matrix=(bullseye trixie)
roots=()
if command -v debootstrap >/dev/null && [ "$(id -u)" = 0 ]; then
    # bookworm plus docker.io, for the real-engine test of `type: docker`.
    scripts/rootfs.sh bookworm docker >/dev/null 2>&1 &
    roots+=($!)
    # Each suite's root, and its copy with a session bus for user workspaces.
    for suite in bookworm "${matrix[@]}"; do
        scripts/rootfs.sh "$suite" user >/dev/null 2>&1 &
        roots+=($!)
    done
fi
cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
# The shipped binaries and the .deb that every e2e container installs.
scripts/build-deb.sh
if command -v lintian >/dev/null; then
    lintian --fail-on error,warning target/x86_64-unknown-linux-gnu/debian/krill_*_amd64.deb
fi
log=$(mktemp)
trap 'rm -f "$log" "$log.arm64"' EXIT
# The arm64 .deb too, where Debian's aarch64 standard library is installed
# (scripts/deps.sh). It builds at the lowest CPU priority while the tests run (they
# mostly wait on containers); its own test runs at the end, when it is built.
arm64_pid=
if rustup toolchain list 2>/dev/null | grep -q '^debian-web'; then
    nice -n 19 scripts/build-deb.sh arm64 >"$log.arm64" 2>&1 &
    arm64_pid=$!
fi
status=0
cargo test --workspace --all-targets --no-fail-fast -- --test-threads=2 \
    --skip arm64_binaries 2>&1 | tee "$log" || status=$?
cargo test --workspace --doc 2>&1 | tee -a "$log" || status=$?
wait "${roots[@]}" # the roots (not the arm64 build)
# systemd-analyze verify of every golden unit set by each matrix systemd itself (its
# own binary, chrooted into its root; bookworm's ran above on the host's 252).
for suite in "${matrix[@]}"; do
    echo "--- systemd-analyze verify: $suite"
    KRILL_VERIFY_ROOT=${KRILL_E2E_CACHE:-/var/cache/krill-e2e}/$suite \
        cargo test -q -p krill --test verify 2>&1 | tee -a "$log" || status=$?
done
# The systemd matrix: everything above ran on bookworm (systemd 252); the contract
# rows (S1-S9, the Try-It table), the supervisor, the package's life and the recipe
# extensions run again on bullseye (247) and trixie (257), both at once (each
# container in its own cgroup).
matrix_tests=(--test contract --test supervisor --test lifecycle --test package --test recipe_power
    --test user_workspaces)
pids=()
for suite in "${matrix[@]}"; do
    KRILL_E2E_SUITE=$suite cargo test -q -p krill-e2e --no-fail-fast "${matrix_tests[@]}" \
        -- --test-threads=2 >"$log.$suite" 2>&1 &
    pids+=($!)
done
for i in "${!matrix[@]}"; do
    wait "${pids[$i]}" || status=$?
    echo "--- systemd matrix: ${matrix[$i]}"
    grep -E '^test result:|FAILED' "$log.${matrix[$i]}" || true
    grep -A6 'panicked' "$log.${matrix[$i]}" || true # why, where CI shows only this
    cat "$log.${matrix[$i]}" >>"$log"
    rm -f "$log.${matrix[$i]}"
done
if [ -n "$arm64_pid" ]; then
    echo "--- arm64 .deb"
    if wait "$arm64_pid"; then
        if command -v lintian >/dev/null; then
            lintian --fail-on error,warning target/arm64/debian/krill_*_arm64.deb || status=$?
        fi
        cargo test -p krill-dist --test arm64_deb 2>&1 | tee -a "$log" || status=$?
    else
        cat "$log.arm64"
        echo "scripts/build-deb.sh arm64 failed"
        status=1
    fi
fi
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "%d passed, %d failed\n", p, f }' "$log"
exit "$status"
