#!/bin/bash
# Debootstraps the Debian SUITE (bullseye: systemd 247, bookworm: 252, trixie: 257)
# that the e2e containers and ./demo.sh boot, once, into
# ${KRILL_E2E_CACHE:-/var/cache/krill-e2e}/SUITE, and prints that path. Safe to run
# concurrently: one lock per root.
#
# `rootfs.sh SUITE docker` prints SUITE-docker instead: the same root plus Debian's
# docker.io engine, for the e2e tests of `type: docker` services in a real engine.
set -euo pipefail
suite=${1:?usage: rootfs.sh SUITE [docker]}
variant=${2:-}
cache=${KRILL_E2E_CACHE:-/var/cache/krill-e2e}
mkdir -p "$cache"

base() {
    local root=$cache/$suite
    exec 9>"$cache/$suite.lock"
    flock 9
    if [ ! -x "$root/usr/lib/systemd/systemd" ]; then
        echo "debootstrapping Debian $suite into $root (once, about 2 minutes)" >&2
        rm -rf "$root.tmp"
        debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,python3,procps \
            "$suite" "$root.tmp" >&2
        mv "$root.tmp" "$root"
    fi
    exec 9>&-
}

docker_root() {
    local root=$cache/$suite-docker
    exec 8>"$cache/$suite-docker.lock"
    flock 8
    if [ ! -x "$root/usr/sbin/dockerd" ]; then
        echo "adding docker.io to a copy of $suite in $root (once, about 20 seconds)" >&2
        rm -rf "$root.tmp"
        cp -a "$cache/$suite" "$root.tmp"
        cp /etc/resolv.conf "$root.tmp/etc/resolv.conf"
        mount --bind /proc "$root.tmp/proc"
        trap 'umount "$root.tmp/proc" 2>/dev/null || true' EXIT
        chroot "$root.tmp" sh -c 'apt-get update -q && DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -q --no-install-recommends docker.io && apt-get clean' >&2
        umount "$root.tmp/proc"
        trap - EXIT
        # The e2e root is an overlay mount (no overlay2 on top of it: vfs), and the
        # container's private network has no iptables to set up a bridge with.
        mkdir -p "$root.tmp/etc/docker"
        printf '%s\n' '{"storage-driver": "vfs", "iptables": false, "ip6tables": false, "bridge": "none"}' \
            >"$root.tmp/etc/docker/daemon.json"
        mv "$root.tmp" "$root"
    fi
    echo "$root"
}

base
case $variant in
"") echo "$cache/$suite" ;;
docker) docker_root ;;
*) echo "rootfs.sh: unknown variant '$variant' (known: docker)" >&2; exit 2 ;;
esac
