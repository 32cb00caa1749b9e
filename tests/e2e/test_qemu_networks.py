"""Tenant networks between real guests (issue 20): ``novalite serve --driver qemu --accelerator tcg
--network-dataplane on`` and the unmodified ``openstack`` CLI. Two guests of the default image on
one network, each on a pre-created port with a fixed IP, ping each other from their user_data
(a loop printing ``peer-ping <n> ok|failed`` on the console): DHCP hands each its port's address,
a security group without ICMP ingress stops the pings, adding the rule lets them through again,
and deleting everything leaves no bridge, tap, DHCP namespace, dnsmasq or nftables table.

Needs root, QEMU, dnsmasq, nft and pyroute2: skips loudly without them, fails under
NOVALITE_REQUIRE_SERVICES=1. Every QEMU started here is killed and every file removed.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from novalite.guest.builder import GuestBuildError, build_guest_image
from tests.conftest import RunningServer, start_server, stop_server
from tests.e2e.test_qemu_servers import _kill_guests
from tests.guest.conftest import _skip_or_fail, guest_cache_dir, require_qemu
from tests.netns.conftest import host_snapshot, require_netns

pytestmark = pytest.mark.e2e

BOOT_TIMEOUT = 180.0  # TCG on two busy cores; a bound, not a target
CIDR, IP1, IP2 = "10.77.31.0/24", "10.77.31.11", "10.77.31.12"
PING = re.compile(r"peer-ping (\d+) (ok|failed)")


def _user_data(peer: str) -> str:
    return (
        "#!/bin/sh\n"
        "(\n"
        "  n=0\n"
        "  while true; do\n"
        "    n=$((n+1))\n"
        f'    if ping -c 1 -W 1 {peer} >/dev/null 2>&1; then echo "peer-ping $n ok"; '
        'else echo "peer-ping $n failed"; fi\n'
        "    sleep 0.5\n"
        "  done\n"
        ") >/dev/console 2>&1 &\n"
    )


class Cloud:
    def __init__(self, root: Path, server: RunningServer) -> None:
        self.root, self.server = root, server

    def cli(self, *args: str, cloud: str = "novalite") -> subprocess.CompletedProcess[str]:
        done = self.server.openstack(*args, check=False, cloud=cloud)
        if done.returncode != 0:  # the service's log says why
            log = self.server.log.read_text(errors="replace")[-6000:]
            raise AssertionError(f"openstack {' '.join(args)} failed:\n{done.stderr}\n--- server.log:\n{log}")
        return done

    def json(self, *args: str, cloud: str = "novalite") -> Any:
        return json.loads(self.cli(*args, "-f", "json", cloud=cloud).stdout)

    def console(self, server: str) -> str:
        return self.cli("console", "log", "show", server).stdout

    def pings(self, server: str) -> list[tuple[int, str]]:
        return [(int(n), result) for n, result in PING.findall(self.console(server))]


def _wait(what: str, check: Callable[[], Any], timeout: float = BOOT_TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(1.0)


def _after(cloud: Cloud, server: str, seen: int, result: str) -> Callable[[], int | None]:
    """The number of the first ping after ``seen`` with ``result``, once there is one."""

    def check() -> int | None:
        return next((n for n, r in cloud.pings(server) if n > seen and r == result), None)

    return check


@pytest.fixture(scope="module")
def cloud() -> Iterator[Cloud]:
    require_qemu()
    require_netns()
    try:
        build_guest_image(guest_cache_dir())
    except GuestBuildError as exc:
        _skip_or_fail(f"cannot build the guest image: {exc}")
    root = Path(tempfile.mkdtemp(prefix="nvn-"))
    server = start_server(
        root,
        "--driver",
        "qemu",
        "--accelerator",
        "tcg",
        "--network-dataplane",
        "on",
        env_extra={"NOVALITE_GUEST_CACHE": str(guest_cache_dir())},
    )
    try:
        c = Cloud(root, server)
        c.cli(
            "flavor",
            "create",
            "--ram",
            "128",
            "--disk",
            "1",
            "--vcpus",
            "1",
            "g1.nano",
            cloud="novalite-admin",
        )
        yield c
    finally:
        if server.process.poll() is None:
            stop_server(server)
        _kill_guests(root)
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.timeout(900)  # TCG guests on a shared 2-core host
def test_guests_on_a_tenant_network_ping_each_other_under_their_security_groups(cloud: Cloud) -> None:
    before = host_snapshot()
    cloud.cli("network", "create", "tn1")
    cloud.cli("subnet", "create", "--network", "tn1", "--subnet-range", CIDR, "ts1")
    cloud.cli("security", "group", "create", "no-icmp")  # egress only: no ingress at all
    for name, ip in (("tp1", IP1), ("tp2", IP2)):
        cloud.cli("port", "create", "--network", "tn1", "--fixed-ip", f"subnet=ts1,ip-address={ip}", name)
    for name, port, peer in (("tv1", "tp1", IP2), ("tv2", "tp2", IP1)):
        user_data = cloud.root / f"{name}.sh"
        user_data.write_text(_user_data(peer))
        created = cloud.json(
            "server", "create", "--image", "novalite-guest", "--flavor", "g1.nano",
            "--nic", f"port-id={port}", "--user-data", str(user_data), "--config-drive", "true",
            "--wait", name,
        )  # fmt: skip
        assert created["status"] == "ACTIVE"

    # each guest leased its port's fixed IP from the network's dnsmasq, and reaches the other
    for name, ip in (("tv1", IP1), ("tv2", IP2)):
        lease = _wait(f"{name}'s DHCP line", lambda n=name: re.search(r"net eth0 (\S+)", cloud.console(n)))
        assert lease.group(1) == f"{ip}/24", cloud.console(name)
        _wait(f"{name} pinging its peer", _after(cloud, name, 0, "ok"))

    # tv2's port in a group without ICMP ingress: tv1's pings go unanswered
    cloud.cli("port", "set", "--no-security-group", "--security-group", "no-icmp", "tp2")
    seen = max(n for n, _ in cloud.pings("tv1"))
    failed = _wait("tv1's pings to fail", _after(cloud, "tv1", seen, "failed"), timeout=60)

    # the rule reaches the running guests: the pings pass again
    cloud.cli("security", "group", "rule", "create", "--ingress", "--protocol", "icmp", "no-icmp")
    _wait("tv1's pings to pass again", _after(cloud, "tv1", failed, "ok"), timeout=60)

    # delete everything: nothing of this test is left on the host (other tests may run a data
    # plane meanwhile: look for what this one made, by its network's and ports' ids)
    marks = [cloud.json("network", "show", "tn1")["id"]]
    marks += [cloud.json("port", "show", p)["id"][:11] for p in ("tp1", "tp2")]
    cloud.cli("server", "delete", "--wait", "tv1", "tv2")
    cloud.cli("port", "delete", "tp1", "tp2")
    cloud.cli("subnet", "delete", "ts1")
    cloud.cli("network", "delete", "tn1")
    cloud.cli("security", "group", "delete", "no-icmp")
    _wait("the data plane to be gone", lambda: not _left(before, marks), timeout=60)
    assert not _left(before, marks)


def _left(before: dict[str, list[str]], marks: list[str]) -> list[str]:
    """Namespaces, links and dnsmasq processes naming this test's network or ports that were not
    there before it (the network's full id names its qbr-/qdhcp- namespaces, its first 11
    characters its brq-/dhp- links)."""
    now = host_snapshot()
    found = [x for k in ("netns", "links", "dnsmasq") for x in now[k] if x not in before[k]]
    keys = [*marks, marks[0][:11]]
    return [x for x in found if any(m in x for m in keys)]
