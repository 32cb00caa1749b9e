#!/usr/bin/env bash
# Install the Debian packages the QEMU path needs: QEMU itself (TCG or KVM), qemu-img,
# and the tools novalite.guest.builder uses to build the default guest disk image
# (static busybox, SYSLINUX with its MBR, mtools, mkfs.fat).
# Idempotent and quiet: does nothing when every package is already installed.
# Needs root (or sudo) when something is missing.   usage: scripts/install-qemu.sh
set -euo pipefail
packages=(qemu-system-x86 qemu-utils busybox-static syslinux syslinux-common mtools dosfstools)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo -n"   # never prompt: fail instead
echo "install-qemu.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
