"""Each QEMU host's own DHCP port on each network it serves (compute/dhcp_ports.py, issue 20): two
hosts with a server on one network get two ``network:dhcp`` ports, one bound to each, with their
own MAC and address from the subnet's pool -- so their dnsmasqs, joined by VXLAN on one segment,
are two servers and do not NAK each other's guests. Made once (idempotent), gone with the host's
last port on the network, and with the network. (The devices: tests/netns/test_dataplane.py; two
real hosts: tests/e2e/test_qemu_two_hosts.py.)"""

from __future__ import annotations

from typing import Any

from novalite.compute import dhcp_ports, networking
from novalite.network.dataplane import reconcile
from tests.conftest import Api
from tests.functional.test_evacuate import _boot_on

PORTS = "/network/v2.0/ports"


def _sync(stack: Api, host: str) -> tuple[Any, list[dhcp_ports.DhcpPort]]:
    """What the host's agent does before applying its data plane: its state with its DHCP ports."""
    db = stack.runtime.db  # type: ignore[attr-defined]
    with db.reader() as s:
        state = networking.desired_state(s, host)
    want = dhcp_ports.wanted(state)
    have = db.write(lambda s: dhcp_ports.sync(s, host, want))
    assert dhcp_ports.in_line(have, want)
    return dhcp_ports.with_dhcp_ports(state, have), have


def _dhcp_ports(stack: Api) -> list[dict[str, Any]]:
    r = stack.get(f"{PORTS}?device_owner=network:dhcp", as_="admin")
    assert r.status_code == 200, r.text
    return sorted(r.json()["ports"], key=lambda p: p["binding:host_id"])


def _dhcp_config(state: Any) -> Any:
    [net] = state.networks
    return reconcile.dhcp_config(net, state.ports)


def test_each_host_gets_its_own_dhcp_port_on_the_network(stack_factory: Any) -> None:
    stack = stack_factory(fake_hosts=2)
    _boot_on(stack, "one", "fake-host-1")
    two = _boot_on(stack, "two", "fake-host-2")
    state_1, have_1 = _sync(stack, "fake-host-1")
    state_2, have_2 = _sync(stack, "fake-host-2")
    [net] = state_1.networks
    ports = _dhcp_ports(stack)
    assert [p["binding:host_id"] for p in ports] == ["fake-host-1", "fake-host-2"]
    assert {p["network_id"] for p in ports} == {net.id}
    assert ports[0]["mac_address"] != ports[1]["mac_address"]
    ips = [p["fixed_ips"][0]["ip_address"] for p in ports]
    assert ips[0] != ips[1]
    assert ports[0]["device_id"] == dhcp_ports.device_id("fake-host-1", net.id)
    assert all(p["status"] == "ACTIVE" and p["security_groups"] == [] for p in ports)
    # the servers' addresses are not the DHCP servers'
    r = stack.get(f"{PORTS}?device_owner=compute:nova", as_="admin")
    assert not {ip["ip_address"] for p in r.json()["ports"] for ip in p["fixed_ips"]} & set(ips)

    # the data plane serves DHCP from that port: its MAC on the veth, its address as the server's
    # (and so the next hop of the guests' route to the metadata proxy)
    config = _dhcp_config(state_1)
    assert config.mac == ports[0]["mac_address"]
    assert config.server_addresses() == [ips[0]]
    assert _dhcp_config(state_2).server_addresses() == [ips[1]]

    # again: nothing new
    assert _sync(stack, "fake-host-1")[1] == have_1 and _sync(stack, "fake-host-2")[1] == have_2
    assert [p["id"] for p in _dhcp_ports(stack)] == [p["id"] for p in ports]

    # host 2's last server on the network gone: its DHCP port goes; host 1's stays
    assert stack.delete(f"/compute/v2.1/servers/{two}", as_="admin").status_code == 204
    stack.wait_for(f"/compute/v2.1/servers/{two}", lambda r: r.status_code == 404, as_="admin")
    assert _sync(stack, "fake-host-2")[1] == []
    assert [p["id"] for p in _dhcp_ports(stack)] == [ports[0]["id"]]


def test_a_duplicate_dhcp_port_of_a_host_is_removed(stack_factory: Any) -> None:
    stack = stack_factory(fake_hosts=1)
    _boot_on(stack, "one", "fake-host-1")
    _, [port] = _sync(stack, "fake-host-1")
    body = {
        "network_id": port.network_id,
        "device_owner": "network:dhcp",
        "binding:host_id": "fake-host-1",
    }
    r = stack.post(PORTS, as_="admin", json={"port": body})
    assert r.status_code == 201, r.text
    _, again = _sync(stack, "fake-host-1")
    assert again == [port]  # the older one kept, the extra deleted
    assert [p["id"] for p in _dhcp_ports(stack)] == [port.id]
