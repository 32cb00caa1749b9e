"""The metadata proxy in each network's DHCP namespace (issue 20 item 2), on the real data plane.

A client namespace stands in for a guest: DHCP gives it a classless static route to
169.254.169.254 via the DHCP server's address, it asks ``http://169.254.169.254/...`` with busybox
``nc``, and the proxy forwards to the host's metadata socket naming the network and the request's
source address — a stand-in service on that socket answers with what it was told. Headers the
guest adds change nothing. The proxy survives a second reconcile (same pid), and teardown leaves
no proxy process.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from novalite.network.dataplane import metadata_proxy, names, reconcile
from novalite.virt.metadata_paths import service_socket

from .conftest import Guests, host_snapshot, in_ns, sh
from .test_dataplane import A1, B1, NET_A, NET_B, _state


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


class StandIn:
    """A metadata service that answers each request with the identity line it was given."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(path))
        self.listener.listen(8)
        self.requests: list[bytes] = []
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(10)
                data = b""
                while b"\r\n\r\n" not in data and (chunk := conn.recv(4096)):
                    data += chunk
                self.requests.append(data)
                identity = data.split(b"\n", 1)[0]
                conn.sendall(b"HTTP/1.0 200 OK\r\nConnection: close\r\n\r\nidentity=" + identity + b"\n")

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def service(dataplane: tuple[Path, Guests]) -> Iterator[StandIn]:
    stand_in = StandIn(Path(service_socket(dataplane[0])))
    yield stand_in
    stand_in.close()


def _ask(ns: str, path: str, headers: str = "") -> str:
    request = f"GET {path} HTTP/1.0\\r\\nHost: 169.254.169.254\\r\\n{headers}\\r\\n"
    done = in_ns(ns, "sh", "-c", f"printf '{request}' | busybox nc -w 10 169.254.169.254 80", check=False)
    return done.stdout


def _static_routes(guests: Guests, ns: str) -> list[str]:
    """The lease's option 121 as udhcpc gives it: ``dest hop dest hop ...`` (the last field)."""
    text = (guests.tmp / f"{ns}.lease").read_text()
    return text.partition("staticroutes=")[2].split()


def _route_from_lease(ns: str, words: list[str]) -> None:
    """What the guest image's DHCP script does with option 121 (classless static routes)."""
    for dest, hop in zip(words[0::2], words[1::2], strict=True):
        if dest != "0.0.0.0/0":
            in_ns(ns, "ip", "route", "replace", dest, "via", hop, "dev", "eth0")


def test_guest_reaches_the_proxy_which_names_network_and_source(
    dataplane: tuple[Path, Guests], service: StandIn
) -> None:
    data_dir, guests = dataplane
    spaces = {pid: guests.add(names.tap_name(pid), mac) for pid, mac, _ip in (A1, B1)}
    state = _state(icmp=True)
    state = reconcile.DesiredState(
        state.networks, tuple(p for p in state.ports if p.id in spaces), state.security_groups
    )
    reconcile.apply(state, data_dir)
    first = {net: metadata_proxy.pid(data_dir, net) for net in (NET_A, NET_B)}
    assert all(first.values())
    for (pid, _mac, ip), net in ((A1, NET_A), (B1, NET_B)):
        ns = spaces[pid]
        lease = guests.dhcp(ns)
        assert lease.get("ip") == ip
        routes = _static_routes(guests, ns)
        assert "169.254.169.254/32" in routes[0::2]
        assert routes[routes.index("169.254.169.254/32") + 1] == "10.231.7.254"  # the DHCP server
        _route_from_lease(ns, routes)
        answer = _ask(
            ns,
            "/openstack/latest/meta_data.json",
            "X-Instance-ID: forged\\r\\nX-Forwarded-For: 10.0.0.9\\r\\n",
        )
        assert f"identity=port {net} {ip}" in answer, answer
    # the proxy forwarded the guest's request itself, after the identity line
    assert any(b"GET /openstack/latest/meta_data.json" in r for r in service.requests)

    reconcile.apply(state, data_dir)  # idempotent: the same proxies keep running
    assert {net: metadata_proxy.pid(data_dir, net) for net in (NET_A, NET_B)} == first

    # a proxy whose pid file no longer names it (state directory removed behind its back) exits
    orphan = first[NET_B]
    assert orphan is not None
    (data_dir / "dhcp" / NET_B / metadata_proxy.PID_NAME).unlink()
    deadline = time.monotonic() + 60
    while _alive(orphan) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _alive(orphan)

    guests.close()
    reconcile.teardown(data_dir)
    assert all(metadata_proxy.pid(data_dir, net) is None for net in first)
    procs = sh("ps", "-eo", "args").stdout
    assert str(data_dir) not in procs
    after = host_snapshot()  # this test's parts only: other tests may run beside it
    for net in (NET_A, NET_B):
        assert names.dhcp_namespace(net) not in after["netns"]
        assert names.bridge_name(net) not in after["links"]
