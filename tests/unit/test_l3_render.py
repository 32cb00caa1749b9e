"""What a router's nat table says (no root needed): floating IPs DNAT in and SNAT out by the
gateway interface, then the router's own SNAT for the rest; nothing without a gateway."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from novalite.guest.ssh import elf_needs
from novalite.network.dataplane import l3, names

QR = l3.RouterPort("11111111-aaaa", "net-a", "fa:16:3e:00:00:01", ("10.0.0.1/24",))
QG = l3.RouterPort("22222222-bbbb", "public", "fa:16:3e:00:00:02", ("172.24.4.10/24",))


def test_floating_ips_and_snat_in_order() -> None:
    router = l3.Router(
        "r1",
        interfaces=(QR,),
        gateway=QG,
        gateway_ip="172.24.4.1",
        floating_ips=(l3.FloatingIP("172.24.4.20", "10.0.0.5"),),
        internal_cidrs=("10.0.0.0/24",),
    )
    script = l3.render_nft(router)
    qg = names.router_gateway_ns(QG.port_id)
    assert "ip daddr 172.24.4.20 dnat to 10.0.0.5" in script
    fip_snat = script.index(f'oifname "{qg}" ip saddr 10.0.0.5 snat to 172.24.4.20')
    router_snat = script.index(f'oifname "{qg}" ip saddr {{ 10.0.0.0/24 }} snat to 172.24.4.10')
    assert fip_snat < router_snat  # the floating IP wins over the router's address
    assert script.startswith(f"table ip {l3.NFT_TABLE} {{}}\ndelete table ip {l3.NFT_TABLE}\n")


def test_no_snat_and_no_gateway() -> None:
    no_snat = l3.render_nft(l3.Router("r1", interfaces=(QR,), gateway=QG, enable_snat=False))
    assert "snat" not in no_snat
    internal_only = l3.render_nft(
        l3.Router("r1", interfaces=(QR,), floating_ips=(l3.FloatingIP("172.24.4.20", "10.0.0.5"),))
    )
    assert "dnat" not in internal_only and "snat" not in internal_only


def test_leg_names_fit_linux_limits() -> None:
    port = "0123456789abcdef-0000"
    for name in (
        names.router_interface_ns(port),
        names.router_interface_host(port),
        names.router_gateway_ns(port),
        names.router_gateway_host(port),
    ):
        assert len(name) <= 15


def test_elf_needs_reads_interpreter_and_libraries() -> None:
    sh = shutil.which("ls")
    if sh is None:
        pytest.skip("no ls binary")
    interp, needed = elf_needs(Path(sh).read_bytes())
    assert interp and interp.endswith(".so.2")
    assert "libc.so.6" in needed
