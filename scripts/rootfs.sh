#!/bin/bash
# Debootstraps the Debian SUITE (bullseye: systemd 247, bookworm: 252, trixie: 257)
# that the e2e containers and ./demo.sh boot, once, into
# ${KRILL_E2E_CACHE:-/var/cache/krill-e2e}/SUITE, and prints that path. Safe to run
# concurrently: one lock per root.
#
# `rootfs.sh SUITE docker` prints SUITE-docker instead: the same root plus Debian's
# docker.io engine, for the e2e tests of `type: docker` services in a real engine.
# `rootfs.sh SUITE ops` prints SUITE-ops: the root plus what an operator's robot has
# and the e2e tests of `krill top` and `krill fleet` drive: tmux, sshd and iproute2.
# `rootfs.sh SUITE user` prints SUITE-user: the root plus a session bus and logind's
# PAM module, for user workspaces (`krill --user`) of lingering users.
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

# variant ROOT-CHECK PACKAGES...: a copy of the base root with Debian PACKAGES added,
# once; then runs `setup_NAME` on it.
variant() {
    local name=$1 check=$2
    shift 2
    local root=$cache/$suite-$name
    exec 8>"$cache/$suite-$name.lock"
    flock 8
    if [ ! -e "$root/$check" ]; then
        echo "adding $* to a copy of $suite in $root (once, about 20 seconds)" >&2
        rm -rf "$root.tmp"
        cp -a "$cache/$suite" "$root.tmp"
        cp /etc/resolv.conf "$root.tmp/etc/resolv.conf"
        mount --bind /proc "$root.tmp/proc"
        trap 'umount "$root.tmp/proc" 2>/dev/null || true' EXIT
        chroot "$root.tmp" sh -c "apt-get update -q && DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -q --no-install-recommends $* && apt-get clean" >&2
        umount "$root.tmp/proc"
        trap - EXIT
        "setup_$name" "$root.tmp"
        mv "$root.tmp" "$root"
    fi
    echo "$root"
}

setup_docker() {
    # The e2e root is an overlay mount (no overlay2 on top of it: vfs), and the
    # container's private network has no iptables to set up a bridge with.
    mkdir -p "$1/etc/docker"
    printf '%s\n' '{"storage-driver": "vfs", "iptables": false, "ip6tables": false, "bridge": "none"}' \
        >"$1/etc/docker/daemon.json"
}

setup_ops() {
    # Host keys are made at first boot of each container (the copies must differ);
    # the package's postinst made some in the chroot: drop them.
    rm -f "$1"/etc/ssh/ssh_host_*
    mkdir -p "$1/etc/systemd/system/ssh.service.d"
    printf '[Service]\nExecStartPre=\nExecStartPre=/usr/bin/ssh-keygen -A\nExecStartPre=/usr/sbin/sshd -t\n' \
        >"$1/etc/systemd/system/ssh.service.d/keys.conf"
}

setup_user() {
    :
}

base
case $variant in
"") echo "$cache/$suite" ;;
docker) variant docker usr/sbin/dockerd docker.io ;;
ops) variant ops usr/bin/tmux tmux openssh-server iproute2 ;;
user) variant user usr/lib/systemd/user/dbus.socket dbus-user-session libpam-systemd ;;
*) echo "rootfs.sh: unknown variant '$variant' (known: docker, ops, user)" >&2; exit 2 ;;
esac
