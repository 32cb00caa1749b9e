"""Fixtures for the data plane tests: real bridges, namespaces, dnsmasq and nftables.

They need root with CAP_NET_ADMIN, ``dnsmasq``, ``nft``, ``ip`` and ``busybox``
(``scripts/install-network.sh`` installs them); without them the tests skip loudly, and
fail instead under NOVALITE_REQUIRE_SERVICES=1. "Guests" are client namespaces joined to
the bridges by veth pairs whose host end is named like the port's tap. All traffic stays
inside namespaces the tests create; nothing gets an address in the host's namespace, and
everything is removed in ``finally`` whatever happens.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.guest.conftest import guest_image, qemu_guests  # noqa: F401  (fixtures for test_qemu_guests)

TOOLS = ("dnsmasq", "nft", "ip", "busybox")
LINK_PREFIXES = ("brq-", "tap", "dhp-", "qdhcp-", "qrb-", "qgb-", "qr-", "qg-", "qbh-", "qbx-", "vxl-")

UDHCPC_SCRIPT = """#!/bin/sh
case "$1" in
  bound|renew)
    ip addr add "$ip/${mask:-24}" dev "$interface"
    echo "ip=$ip router=$router dns=$dns mtu=$mtu hostname=$hostname staticroutes=$staticroutes" > "$OUT"
    ;;
esac
exit 0
"""


def _skip_or_fail(msg: str) -> None:
    if os.environ.get("NOVALITE_REQUIRE_SERVICES") == "1":
        pytest.fail(msg + " [NOVALITE_REQUIRE_SERVICES=1]")
    pytest.skip("SKIPPED LOUDLY: " + msg)


def require_netns() -> None:
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        _skip_or_fail(f"{', '.join(missing)} missing; run scripts/install-network.sh")
    if os.geteuid() != 0:
        _skip_or_fail("the data plane tests need root (CAP_NET_ADMIN)")
    probe = f"nlprobe-{uuid.uuid4().hex[:8]}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True, check=False)
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, check=False)
    if made.returncode != 0:
        _skip_or_fail(f"cannot create a network namespace: {made.stderr.strip()}")
    try:
        import pyroute2  # noqa: F401
    except ImportError:
        _skip_or_fail("pyroute2 is not installed (requirements-test.lock)")


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=60, check=check)


def in_ns(ns: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return sh("ip", "netns", "exec", ns, *args, check=check)


def _links(*netns: str) -> list[str]:
    """Our kinds of links in the host's namespace, or in ``netns`` (gone meanwhile: none)."""
    args = ["ip", "-n", netns[0], "-o", "link", "show"] if netns else ["ip", "-o", "link", "show"]
    out = sh(*args, check=False).stdout.splitlines()
    found = (line.split(":")[1].strip().split("@")[0] for line in out)
    return sorted(n for n in found if n.startswith(LINK_PREFIXES))


def host_snapshot() -> dict[str, list[str]]:
    """What the data plane could leave behind on the host: ``links`` are those in the host's
    namespace and in the networks' ``qbr-`` namespaces, ``host_links`` the host's own only."""
    procs = sh("ps", "-eo", "args").stdout.splitlines()
    spaces = sorted(line.split()[0] for line in sh("ip", "netns", "list").stdout.splitlines() if line.strip())
    host_links = _links()
    return {
        "netns": spaces,
        "links": sorted(host_links + [n for ns in spaces if ns.startswith("qbr-") for n in _links(ns)]),
        "host_links": host_links,
        "dnsmasq": sorted(p for p in procs if p.startswith(("dnsmasq", "/usr/sbin/dnsmasq"))),
        "nft": sorted(sh("nft", "list", "tables").stdout.splitlines()),
    }


@dataclass
class Guests:
    """Client namespaces standing in for guests, each on one veth named like a tap."""

    tmp: Path
    namespaces: list[str] = field(default_factory=list)

    def add(self, tap: str, mac: str) -> str:
        ns = f"nltc-{uuid.uuid4().hex[:8]}"
        sh("ip", "netns", "add", ns)
        self.namespaces.append(ns)
        sh("ip", "link", "add", tap, "type", "veth", "peer", "name", "eth0", "netns", ns)
        in_ns(ns, "ip", "link", "set", "eth0", "address", mac)
        in_ns(ns, "ip", "link", "set", "lo", "up")
        in_ns(ns, "ip", "link", "set", "eth0", "up")
        return ns

    def dhcp(self, ns: str) -> dict[str, str]:
        """Run busybox udhcpc once in the namespace; return what the server offered."""
        script = self.tmp / "udhcpc.sh"
        script.write_text(UDHCPC_SCRIPT)
        script.chmod(0o755)
        out = self.tmp / f"{ns}.lease"
        env = {**os.environ, "OUT": str(out)}
        subprocess.run(
            ["ip", "netns", "exec", ns, "busybox", "udhcpc", "-i", "eth0", "-n", "-q", "-f", "-t", "10",
             "-T", "1", "-O", "mtu", "-O", "staticroutes", "-s", str(script)],
            capture_output=True, text=True, timeout=60, check=False, env=env,
        )  # fmt: skip
        if not out.exists():
            return {}
        return dict(kv.split("=", 1) for kv in out.read_text().split() if "=" in kv)

    def pings(self, ns: str, address: str, *, source: str | None = None, tries: int = 5) -> bool:
        """True as soon as one ping gets an answer; False after ``tries`` one-second tries."""
        extra = ["-I", source] if source else []
        for _ in range(tries):
            if (
                in_ns(ns, "busybox", "ping", "-c", "1", "-W", "1", *extra, address, check=False).returncode
                == 0
            ):
                return True
        return False

    def silent(self, ns: str, address: str) -> bool:
        """True when a ping gets no answer (after the rules settled: a few tries, all silent)."""
        return all(
            in_ns(ns, "busybox", "ping", "-c", "1", "-W", "1", address, check=False).returncode != 0
            for _ in range(2)
        )

    def close(self) -> None:
        for ns in self.namespaces:
            sh("ip", "netns", "del", ns, check=False)  # takes its veth pair with it
        self.namespaces.clear()


@pytest.fixture
def dataplane(tmp_path: Path) -> Iterator[tuple[Path, Guests]]:
    require_netns()
    from novalite.network.dataplane import reconcile

    data_dir = tmp_path / "data"
    data_dir.mkdir()
    guests = Guests(tmp_path)
    try:
        yield data_dir, guests
    finally:
        guests.close()
        reconcile.teardown(data_dir)
