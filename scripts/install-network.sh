#!/usr/bin/env bash
# Install the Debian packages the network data plane (src/novalite/network/dataplane) and its
# tests (tests/netns) need: dnsmasq (DHCP per network), nftables (security groups), iproute2
# (ip netns), busybox (udhcpc and ping inside the tests' client namespaces), openssh-client
# (ssh into guests by floating IP, tests/e2e/test_qemu_routers.py).
# Idempotent and quiet: does nothing when every package is already installed.
# Needs root (or sudo) when something is missing.   usage: scripts/install-network.sh
set -euo pipefail
packages=(dnsmasq-base nftables iproute2 busybox-static openssh-client)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo -n"   # never prompt: fail instead
echo "install-network.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
