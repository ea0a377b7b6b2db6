#!/bin/bash
# Debootstraps the Debian SUITE (bullseye: systemd 247, bookworm: 252, trixie: 257)
# that the e2e containers and ./demo.sh boot, once, into
# ${KRILL_E2E_CACHE:-/var/cache/krill-e2e}/SUITE, and prints that path. Safe to run
# concurrently: one lock per suite.
set -euo pipefail
suite=${1:?usage: rootfs.sh SUITE}
cache=${KRILL_E2E_CACHE:-/var/cache/krill-e2e}
root=$cache/$suite
mkdir -p "$cache"
exec 9>"$cache/$suite.lock"
flock 9
if [ ! -x "$root/usr/lib/systemd/systemd" ]; then
    echo "debootstrapping Debian $suite into $root (once, about 2 minutes)" >&2
    rm -rf "$root.tmp"
    debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,python3,procps \
        "$suite" "$root.tmp" >&2
    mv "$root.tmp" "$root"
fi
echo "$root"
