#!/bin/sh
# Installs krill under DESTDIR (default: /). Used as is by the e2e harness, so that
# what is tested is what users get.
#
#   packaging/install.sh [DESTDIR] [BINDIR]
#
# BINDIR holds the built binaries (default: target/release).
set -eu
DESTDIR=${1:-/}
SRC=$(cd "$(dirname "$0")/.." && pwd)
BINDIR=${2:-$SRC/target/release}

for b in krill-gen krill-ctl krill-supervisor; do
    [ -x "$BINDIR/$b" ] || { echo "install.sh: $BINDIR/$b not built (cargo build --release)" >&2; exit 1; }
done

install -d "$DESTDIR/usr/bin" "$DESTDIR/usr/lib/systemd/system-generators" \
    "$DESTDIR/usr/lib/systemd/system" "$DESTDIR/usr/share/dbus-1/system.d" \
    "$DESTDIR/etc/krill/recipes" "$DESTDIR/etc/krill/enabled" "$DESTDIR/usr/lib/krill/recipes"
install -m 0755 "$BINDIR/krill-gen" "$BINDIR/krill-ctl" "$BINDIR/krill-supervisor" "$DESTDIR/usr/bin/"
ln -sf krill-ctl "$DESTDIR/usr/bin/krill"
ln -sf ../../../bin/krill-gen "$DESTDIR/usr/lib/systemd/system-generators/krill-gen"
for u in "$SRC"/units/*.service "$SRC"/units/*.socket "$SRC"/units/*.target; do
    [ -e "$u" ] && install -m 0644 "$u" "$DESTDIR/usr/lib/systemd/system/"
done
for p in "$SRC"/units/*.conf; do
    [ -e "$p" ] && install -m 0644 "$p" "$DESTDIR/usr/share/dbus-1/system.d/"
done
# SDKs: Python (Debian's module path) and the C++ header.
install -d "$DESTDIR/usr/lib/python3/dist-packages/krill" "$DESTDIR/usr/include"
install -m 0644 "$SRC/sdk/python/krill/__init__.py" "$DESTDIR/usr/lib/python3/dist-packages/krill/"
install -m 0644 "$SRC/sdk/cpp/krill.hpp" "$DESTDIR/usr/include/"
# The supervisor and its socket start at boot (the socket first, so heartbeats can
# connect before the supervisor runs).
systemctl --root="$DESTDIR" enable krill-supervisor.socket krill-supervisor.service >/dev/null 2>&1 || {
    install -d "$DESTDIR/etc/systemd/system/sockets.target.wants" "$DESTDIR/etc/systemd/system/multi-user.target.wants"
    ln -sf /usr/lib/systemd/system/krill-supervisor.socket "$DESTDIR/etc/systemd/system/sockets.target.wants/"
    ln -sf /usr/lib/systemd/system/krill-supervisor.service "$DESTDIR/etc/systemd/system/multi-user.target.wants/"
}
# Group allowed to call EmergencyStop (see the D-Bus policy).
if [ -w "$DESTDIR/etc/group" ] && ! grep -q '^krill:' "$DESTDIR/etc/group"; then
    groupadd --root "$DESTDIR" --system krill 2>/dev/null || true
fi
exit 0
