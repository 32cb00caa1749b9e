"""What the QEMU host's data plane wants for routers (compute/routing.py), read from what the
network API stored: legs with their addresses and MACs, the default route, SNAT, floating IPs
only once associated, the external bridge addressed only with --expose-external-network.
(The devices themselves: tests/netns/test_routers.py and tests/e2e/test_qemu_routers.py.)"""

from __future__ import annotations

from typing import Any

from novalite.compute import networking
from tests.conftest import Api
from tests.functional.test_routers_floating_ips import N, _net, _ok, _router, _v4_subnet


def _state(stack: Api, expose: bool = False) -> Any:
    with stack.runtime.db.reader() as s:  # type: ignore[attr-defined]
        return networking.desired_state(s, "no-such-host", expose_external_network=expose)


def test_router_legs_snat_and_floating_ips(stack: Api) -> None:
    public, private = _net(stack, "public"), _net(stack, "private")
    subnet = _v4_subnet(stack, private)
    assert _state(stack).routers == ()  # no router: nothing wanted

    router = _router(stack, external_gateway_info={"network_id": public["id"]})
    gw_ip = router["external_gateway_info"]["external_fixed_ips"][0]["ip_address"]
    _ok(stack.put(f"{N}/routers/{router['id']}/add_router_interface", json={"subnet_id": subnet}))
    port = _ok(stack.post(f"{N}/ports", json={"port": {"network_id": private["id"]}}), 201)["port"]
    fixed = next(ip["ip_address"] for ip in port["fixed_ips"] if ":" not in ip["ip_address"])
    fip = _ok(
        stack.post(f"{N}/floatingips", json={"floatingip": {"floating_network_id": public["id"]}}), 201
    )["floatingip"]

    state = _state(stack)
    (wanted,) = state.routers
    assert wanted.id == router["id"] and wanted.enable_snat
    assert wanted.gateway.addresses == (f"{gw_ip}/24",) and wanted.gateway_ip == "172.24.4.1"
    (leg,) = wanted.interfaces
    assert leg.network_id == private["id"] and leg.addresses == ("10.0.0.1/26",)
    assert wanted.internal_cidrs == ("10.0.0.0/26",)
    assert wanted.floating_ips == ()  # allocated, not associated
    # the router's networks get bridges; none is addressed in the host's namespace
    assert {n.id for n in state.networks} == {public["id"], private["id"]}
    assert all(n.host_addresses == () for n in state.networks)

    _ok(stack.put(f"{N}/floatingips/{fip['id']}", json={"floatingip": {"port_id": port["id"]}}))
    (wanted,) = _state(stack).routers
    assert [(f.address, f.fixed_ip) for f in wanted.floating_ips] == [(fip["floating_ip_address"], fixed)]

    exposed = {n.id: n.host_addresses for n in _state(stack, expose=True).networks}
    assert exposed == {public["id"]: ("172.24.4.1/24",), private["id"]: ()}

    # disassociated, then the router deleted: nothing wanted any more
    _ok(stack.put(f"{N}/floatingips/{fip['id']}", json={"floatingip": {"port_id": None}}))
    assert _state(stack).routers[0].floating_ips == ()
    _ok(stack.put(f"{N}/routers/{router['id']}/remove_router_interface", json={"subnet_id": subnet}))
    _ok(stack.put(f"{N}/routers/{router['id']}", json={"router": {"external_gateway_info": {}}}))
    assert _state(stack).routers == ()
    assert stack.delete(f"{N}/routers/{router['id']}").status_code == 204
    state = _state(stack)
    assert state.routers == () and state.networks == ()
