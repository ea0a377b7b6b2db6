#!/bin/bash
# The newcomer's first command: builds krill's .deb and brings up the demo workspace
# (examples/demo/demo.yaml), then prints `krill status` and the Try-It table.
#
#   sudo ./demo.sh [--yes] [--deps]
#
# * PID 1 is systemd: installs the .deb on this machine and runs `krill up` here,
#   after asking (or at once with --yes). Remove it with `apt remove krill`.
# * Otherwise (a container, WSL, CI): boots a throwaway Debian bookworm container
#   with systemd-nspawn (root filesystem debootstrapped once and cached in
#   /var/cache/krill-e2e, or KRILL_E2E_CACHE), installs the .deb there and opens a
#   shell inside it; leaving the shell powers the container off and deletes it.
#   Without a terminal (or with --yes) it prints the status and tears down.
# * --deps first installs the build tools (scripts/deps.sh: zig, cargo-zigbuild,
#   cargo-deb, systemd-container, debootstrap).
set -euo pipefail
cd "$(dirname "$0")"

yes=false
deps=false
for a in "$@"; do
    case "$a" in
    --yes | -y) yes=true ;;
    --deps) deps=true ;;
    -h | --help)
        sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "demo.sh: unknown argument $a (see --help)" >&2
        exit 2
        ;;
    esac
done
if [ "$(id -u)" != 0 ]; then
    echo "demo.sh: needs root (it installs a package or boots a container); run: sudo $0 $*" >&2
    exit 1
fi
if $deps; then
    scripts/deps.sh
fi
for tool in cargo-zigbuild cargo-deb; do
    command -v "$tool" >/dev/null || {
        echo "demo.sh: $tool is missing; run: sudo $0 --deps" >&2
        exit 1
    }
done

echo "==> building krill (release, glibc 2.31) and its .deb"
build_log=$(mktemp /tmp/krill-build.XXXXXX)
scripts/build-deb.sh >"$build_log" 2>&1 || {
    cat "$build_log" >&2
    echo "demo.sh: the build failed (log above)" >&2
    exit 1
}
rm -f "$build_log"
deb=$(ls -t target/x86_64-unknown-linux-gnu/debian/krill_*_amd64.deb | head -1)
demo=/usr/share/doc/krill/examples/demo/demo.yaml

try_it() {
    cat <<'EOT'

Try it (the demo: sensor --started--> processor --started--> dashboard, critical):
  | scenario                    | command                                                   | expected                                     |
  | kill processor              | kill $(systemctl show -P MainPID krill-demo-processor)     | restarts at once; dashboard keeps running     |
  | kill processor 4 times      | (repeat the kill after each restart)                       | max_restarts 3: fails for good, dashboard stops |
  | kill dashboard 3 times      | kill $(systemctl show -P MainPID krill-demo-dashboard)     | critical: emergency stop, every service stops |
  | see why it stopped          | krill status demo                                          | the reason of every stop                      |
  | start again                 | krill up /usr/share/doc/krill/examples/demo/demo.yaml      | everything runs                               |
Logs: krill logs demo -f        Units: systemctl list-units 'krill-demo*'
EOT
}

if [ "$(cat /proc/1/comm 2>/dev/null)" = systemd ]; then
    if ! $yes; then
        read -r -p "Install $deb on this machine and start the demo workspace? [y/N] " answer
        case "$answer" in [yY]*) ;; *)
            echo "Nothing installed."
            exit 0
            ;;
        esac
    fi
    apt-get install -y -qq "./$deb" >/dev/null
    krill up "$demo"
    krill status demo || true
    try_it
    echo "Remove everything with: sudo apt remove krill"
    exit 0
fi

echo "==> PID 1 is not systemd here: the demo runs in a throwaway systemd container"
root=$(scripts/rootfs.sh bookworm)
work=$(mktemp -d /tmp/krill-demo.XXXXXX)
mkdir -p "$work/upper" "$work/work" "$work/root"
nspawn_pid=
cleanup() {
    if [ -n "$nspawn_pid" ]; then
        kill -TERM "$nspawn_pid" 2>/dev/null || true
        wait "$nspawn_pid" 2>/dev/null || true
    fi
    if [ -n "${cgroup:-}" ]; then
        echo 1 >"$cgroup/cgroup.kill" 2>/dev/null || true
        find "$cgroup" -depth -type d -exec rmdir {} + 2>/dev/null || true
    fi
    umount "$work/root" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
mount -t overlay overlay -o "lowerdir=$root,upperdir=$work/upper,workdir=$work/work" "$work/root"
cp "$deb" "$work/root/tmp/krill.deb"
chroot "$work/root" dpkg -i /tmp/krill.deb >/dev/null
# A cgroup of its own: with no systemd on the host, nspawn would root the container
# at this shell's cgroup, shared with any other container started from here.
unified=/sys/fs/cgroup
[ -e "$unified/cgroup.controllers" ] || unified=/sys/fs/cgroup/unified
cgroup=$unified$(sed -n 's/^0:://p' /proc/self/cgroup)/krill-demo-$$
mkdir -p "$cgroup"
SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$cgroup" \
    systemd-nspawn -D "$work/root" -b --register=no --keep-unit \
    --console=passive --private-network --machine=krill-demo >"$work/nspawn.log" 2>&1 &
nspawn_pid=$!
pid1=
for _ in $(seq 1 300); do
    pid1=$(pgrep -P "$nspawn_pid" -x systemd || true)
    if [ -n "$pid1" ]; then
        state=$(nsenter -t "$pid1" -a systemctl is-system-running --wait 2>/dev/null || true)
        case "$state" in running | degraded) break ;; esac
    fi
    sleep 0.1
done
[ -n "$pid1" ] || {
    echo "demo.sh: the container did not boot; see $work/nspawn.log" >&2
    cat "$work/nspawn.log" >&2
    exit 1
}
inside() { nsenter -t "$pid1" -a "$@"; }
inside krill up "$demo"
inside krill status demo || true
try_it
if ! $yes && [ -t 0 ]; then
    echo
    echo "==> a shell inside the container (systemd $(inside systemctl --version | awk 'NR==1{print $2}')); exit it to throw the container away"
    inside /bin/bash -l || true
fi
