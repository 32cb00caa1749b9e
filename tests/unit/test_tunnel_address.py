"""A QEMU host's tunnel address (services/tunnel.py): ``my_ip`` as given, checked; else the
default route's interface address; else 127.0.0.1."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from novalite.services import tunnel

ROUTES = (
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
    "lo\t0000FEA9\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n"
)


def test_a_given_my_ip_is_used_and_must_be_ipv4() -> None:
    assert tunnel.my_ip(SimpleNamespace(my_ip=" 198.19.0.9 ")) == "198.19.0.9"
    with pytest.raises(SystemExit, match="my_ip must be an IPv4 address"):
        tunnel.my_ip(SimpleNamespace(my_ip="not-an-address"))


def test_no_default_route_is_no_address(tmp_path: Path) -> None:
    table = tmp_path / "route"
    table.write_text(ROUTES)  # a route, but not the default one
    assert tunnel.default_route_address(table) is None
    assert tunnel.default_route_address(tmp_path / "missing") is None


def test_without_my_ip_the_default_route_address_or_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tunnel, "default_route_address", lambda: None)
    assert tunnel.my_ip(SimpleNamespace(my_ip="")) == "127.0.0.1"
    monkeypatch.setattr(tunnel, "default_route_address", lambda: "192.0.2.7")
    assert tunnel.my_ip(SimpleNamespace(my_ip="")) == "192.0.2.7"
