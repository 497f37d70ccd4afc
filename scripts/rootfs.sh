#!/usr/bin/env bash
# Makes (once) a Debian root file system with debootstrap from Debian's archive and prints its
# path. Used to build and test in the releases Azure and containers run on.
#   scripts/rootfs.sh SUITE [PACKAGE...]
# The root goes to build/rootfs/SUITE[-<hash of the package list>]; a stamp file marks a
# finished root, so a cut-off debootstrap is redone rather than trusted. Set
# SORACAM_DEBIAN_MIRROR to use another mirror (default: the one apt uses, else deb.debian.org).
set -euo pipefail

[ $# -ge 1 ] || { echo "usage: scripts/rootfs.sh SUITE [PACKAGE...]" >&2; exit 2; }
suite=$1
shift
here=$(cd "$(dirname "$0")/.." && pwd)
die() {
    echo "rootfs: $*" >&2
    exit 1
}

name=$suite
if [ $# -gt 0 ]; then
    name="$suite-$(printf '%s\n' "$@" | sort -u | sha256sum | cut -c1-12)"
fi
dest="$here/build/rootfs/$name"
stamp="$dest/.soracam-rootfs-done"
if [ -f "$stamp" ]; then
    echo "$dest"
    exit 0
fi

[ "$(id -u)" = 0 ] || die "debootstrap needs root (run as root or under sudo)"
if ! command -v debootstrap >/dev/null 2>&1; then
    echo "rootfs: installing debootstrap" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap \
        >/dev/null
fi

mirror=${SORACAM_DEBIAN_MIRROR:-}
if [ -z "$mirror" ]; then
    mirror=$(grep -rhoE '^(URIs:|deb) +https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list \
        /etc/apt/sources.list.d 2>/dev/null | head -1 | awk '{print $2}' || true)
    [ -n "$mirror" ] || mirror=http://deb.debian.org/debian
fi

rm -rf "$dest"
mkdir -p "$(dirname "$dest")"
include=()
if [ $# -gt 0 ]; then
    include=("--include=$(
        IFS=,
        echo "$*"
    )")
fi
echo "rootfs: debootstrap $suite from $mirror into $dest" >&2
log="$dest.log"
if ! debootstrap --variant=minbase "${include[@]}" "$suite" "$dest" "$mirror" >"$log" 2>&1; then
    tail -20 "$log" >&2
    die "debootstrap $suite failed (log: $log)"
fi
touch "$stamp"
echo "$dest"
