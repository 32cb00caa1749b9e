"""Neutron routers and floating IPs (issue 19, item 6) and the compute proxies for them:
what a user of the network API, the openstack CLI or Nova's os-floating-ips sees."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from tempest.lib import exceptions as lib_exc
from tempest.lib.services.compute.floating_ips_client import FloatingIPsClient

from tests.conftest import Api
from tests.functional.tempest_inprocess import tempest_client

N = "/network/v2.0"
SERVERS = "/compute/v2.1/servers"


def _ok(r: httpx.Response, status: int = 200) -> Any:
    assert r.status_code == status, r.text
    return r.json() if r.content else None


def _error(r: httpx.Response, status: int, kind: str) -> str:
    assert r.status_code == status, r.text
    body = r.json()["NeutronError"]
    assert body["type"] == kind, r.text
    return str(body["message"])


def _net(stack: Api, name: str, as_: str = "demo") -> dict[str, Any]:
    nets = _ok(stack.get(f"{N}/networks?name={name}", as_=as_))["networks"]
    project = stack.ids[f"{as_}_project"]
    return next(n for n in nets if n["project_id"] == project or n["router:external"])


def _v4_subnet(stack: Api, net: dict[str, Any]) -> str:
    for sid in net["subnets"]:
        if _ok(stack.get(f"{N}/subnets/{sid}"))["subnet"]["ip_version"] == 4:
            return str(sid)
    raise AssertionError("no IPv4 subnet")


def _router(stack: Api, name: str = "r1", **fields: Any) -> dict[str, Any]:
    return _ok(stack.post(f"{N}/routers", json={"router": {"name": name, **fields}}), 201)["router"]  # type: ignore[no-any-return]


def _boot(stack: Api) -> str:
    image = stack.get("/image/v2/images?name=novalite-tiny").json()["images"][0]["id"]
    body = {"server": {"name": "vm", "imageRef": image, "flavorRef": "1"}}
    sid = str(_ok(stack.post(SERVERS, json=body), 202)["server"]["id"])
    stack.wait_for(f"{SERVERS}/{sid}", lambda r: r.json()["server"]["status"] in ("ACTIVE", "ERROR"))
    return sid


def _server_port(stack: Api, sid: str) -> dict[str, Any]:
    return _ok(stack.get(f"{N}/ports?device_id={sid}"))["ports"][0]  # type: ignore[no-any-return]


def test_router_gateway_interfaces_and_in_use_refusals(stack: Api) -> None:
    public, private = _net(stack, "public"), _net(stack, "private")
    subnet = _v4_subnet(stack, private)
    router = _router(stack, external_gateway_info={"network_id": public["id"]})
    gw = router["external_gateway_info"]
    assert gw["network_id"] == public["id"] and gw["enable_snat"] is True
    assert gw["external_fixed_ips"][0]["ip_address"].startswith("172.24.4.")
    assert router["availability_zones"] == ["nova"] and router["status"] == "ACTIVE"

    # enable_snat is admin-only
    body = {"router": {"external_gateway_info": {"network_id": public["id"], "enable_snat": False}}}
    assert stack.put(f"{N}/routers/{router['id']}", json=body).status_code == 403
    changed = _ok(stack.put(f"{N}/routers/{router['id']}", json=body, as_="admin"))["router"]
    assert changed["external_gateway_info"]["enable_snat"] is False

    # a gateway on a network that is not external
    bad = {"router": {"external_gateway_info": {"network_id": private["id"]}}}
    msg = _error(stack.put(f"{N}/routers/{router['id']}", json=bad), 400, "BadRequest")
    assert "is not an external network" in msg

    added = _ok(stack.put(f"{N}/routers/{router['id']}/add_router_interface", json={"subnet_id": subnet}))
    assert added["subnet_id"] == subnet and added["id"] == router["id"]
    port = _ok(stack.get(f"{N}/ports/{added['port_id']}"))["port"]
    assert port["device_owner"] == "network:router_interface" and port["device_id"] == router["id"]
    gateway_ip = _ok(stack.get(f"{N}/subnets/{subnet}"))["subnet"]["gateway_ip"]
    assert port["fixed_ips"] == [{"subnet_id": subnet, "ip_address": gateway_ip}]

    # the same subnet again overlaps; the interface port, subnet, network and router are in use
    again = stack.put(f"{N}/routers/{router['id']}/add_router_interface", json={"subnet_id": subnet})
    assert "overlaps" in _error(again, 400, "BadRequest")
    _error(stack.delete(f"{N}/ports/{added['port_id']}"), 409, "ServicePortInUse")
    _error(stack.delete(f"{N}/subnets/{subnet}"), 409, "SubnetInUse")
    _error(stack.delete(f"{N}/networks/{private['id']}"), 409, "NetworkInUse")
    _error(stack.delete(f"{N}/routers/{router['id']}"), 409, "RouterInUse")

    listed = _ok(stack.get(f"{N}/routers?name=r1"))["routers"]
    assert [r["id"] for r in listed] == [router["id"]]
    assert _ok(stack.get(f"{N}/routers", as_="admin"))["routers"]  # admins see every project's

    removed = stack.put(f"{N}/routers/{router['id']}/remove_router_interface", json={"subnet_id": subnet})
    assert _ok(removed)["port_id"] == added["port_id"]
    assert stack.get(f"{N}/ports/{added['port_id']}").status_code == 404
    again = stack.put(f"{N}/routers/{router['id']}/remove_router_interface", json={"subnet_id": subnet})
    _error(again, 404, "RouterInterfaceNotFoundForSubnet")
    assert stack.delete(f"{N}/routers/{router['id']}").status_code == 204
    gw_ports = _ok(stack.get(f"{N}/ports?device_id={router['id']}", as_="admin"))["ports"]
    assert gw_ports == []


def test_floating_ip_allocate_associate_and_server_delete(stack: Api) -> None:
    public, private = _net(stack, "public"), _net(stack, "private")
    subnet = _v4_subnet(stack, private)
    sid = _boot(stack)
    port = _server_port(stack, sid)

    fip = _ok(stack.post(f"{N}/floatingips", json={"floatingip": {"floating_network_id": public["id"]}}), 201)
    fip = fip["floatingip"]
    assert fip["status"] == "DOWN" and fip["port_id"] is None and fip["port_details"] is None
    assert fip["floating_ip_address"].startswith("172.24.4.")

    # not reachable yet: no router joins the server's subnet to the public network
    assoc = {"floatingip": {"port_id": port["id"]}}
    msg = _error(
        stack.put(f"{N}/floatingips/{fip['id']}", json=assoc), 404, "ExternalGatewayForFloatingIPNotFound"
    )
    assert f"External network {public['id']} is not reachable from subnet {subnet}" in msg

    router = _router(stack, external_gateway_info={"network_id": public["id"]})
    _ok(stack.put(f"{N}/routers/{router['id']}/add_router_interface", json={"subnet_id": subnet}))
    mapped = _ok(stack.put(f"{N}/floatingips/{fip['id']}", json=assoc))["floatingip"]
    fixed = [ip["ip_address"] for ip in port["fixed_ips"] if "." in ip["ip_address"]][0]
    assert mapped["status"] == "ACTIVE" and mapped["router_id"] == router["id"]
    assert mapped["port_id"] == port["id"] and mapped["fixed_ip_address"] == fixed
    assert mapped["port_details"]["device_id"] == sid

    # Nova's addresses list it as floating; filters find it
    addresses = _ok(stack.get(f"{SERVERS}/{sid}"))["server"]["addresses"]["private"]
    assert {"floating"} == {
        a["OS-EXT-IPS:type"] for a in addresses if a["addr"] == fip["floating_ip_address"]
    }
    found = _ok(stack.get(f"{N}/floatingips?port_id={port['id']}"))["floatingips"]
    assert [f["id"] for f in found] == [fip["id"]]
    assert _ok(stack.get(f"{N}/floatingips?status=DOWN"))["floatingips"] == []

    # the interface is needed by the floating IP
    remove = stack.put(f"{N}/routers/{router['id']}/remove_router_interface", json={"subnet_id": subnet})
    _error(remove, 409, "RouterInterfaceInUseByFloatingIP")
    gw_off = {"router": {"external_gateway_info": {}}}
    _error(
        stack.put(f"{N}/routers/{router['id']}", json=gw_off), 409, "RouterExternalGatewayInUseByFloatingIp"
    )

    # deleting the server unmaps the floating IP; it stays allocated
    assert stack.delete(f"{SERVERS}/{sid}").status_code == 204
    stack.wait_for(f"{SERVERS}/{sid}", lambda r: r.status_code == 404)
    after = _ok(stack.get(f"{N}/floatingips/{fip['id']}"))["floatingip"]
    assert after["port_id"] is None and after["status"] == "DOWN" and after["router_id"] is None

    assert stack.delete(f"{N}/floatingips/{fip['id']}").status_code == 204
    assert stack.get(f"{N}/floatingips/{fip['id']}").status_code == 404
    fip_ports = _ok(stack.get(f"{N}/ports?device_owner=network:floatingip", as_="admin"))["ports"]
    assert fip_ports == []


def test_floating_ip_refusals_and_quota(stack: Api) -> None:
    public, private = _net(stack, "public"), _net(stack, "private")
    create = stack.post(f"{N}/floatingips", json={"floatingip": {"floating_network_id": private["id"]}})
    assert "is not a valid external network" in _error(create, 400, "BadRequest")
    fixed = {"floating_network_id": public["id"], "floating_ip_address": "172.24.4.77"}
    assert stack.post(f"{N}/floatingips", json={"floatingip": fixed}).status_code == 403
    made = _ok(stack.post(f"{N}/floatingips", json={"floatingip": fixed}, as_="admin"), 201)["floatingip"]
    assert made["floating_ip_address"] == "172.24.4.77"

    quota = _ok(stack.get(f"{N}/quotas/{stack.ids['demo_project']}"))["quota"]
    assert quota["router"] == 10 and quota["floatingip"] == 50
    body = {"quota": {"floatingip": 1, "router": 0}}
    _ok(stack.put(f"{N}/quotas/{stack.ids['demo_project']}", json=body, as_="admin"))
    one = {"floatingip": {"floating_network_id": public["id"]}}
    _ok(stack.post(f"{N}/floatingips", json=one), 201)
    assert "['floatingip']" in _error(stack.post(f"{N}/floatingips", json=one), 409, "OverQuota")
    assert "['router']" in _error(stack.post(f"{N}/routers", json={"router": {}}), 409, "OverQuota")
    details = _ok(stack.get(f"{N}/quotas/{stack.ids['demo_project']}/details"))["quota"]
    assert details["floatingip"] == {"limit": 1, "used": 1, "reserved": 0}


def test_extensions_pools_and_availability_zones(stack: Api) -> None:
    aliases = {e["alias"] for e in _ok(stack.get(f"{N}/extensions"))["extensions"]}
    assert {"router", "ext-gw-mode", "fip-port-details", "floatingip-pools", "availability_zone"} <= aliases
    assert {"network_availability_zone", "router_availability_zone"} <= aliases
    pools = _ok(stack.get(f"{N}/floatingip_pools"))["floatingip_pools"]
    assert [p["cidr"] for p in pools] == ["172.24.4.0/24"]
    zones = _ok(stack.get(f"{N}/availability_zones"))["availability_zones"]
    assert {(z["name"], z["resource"], z["state"]) for z in zones} == {
        ("nova", "network", "available"),
        ("nova", "router", "available"),
    }


def test_compute_floating_ip_proxies_and_actions(stack: Api) -> None:
    public, private = _net(stack, "public"), _net(stack, "private")
    router = _router(stack, external_gateway_info={"network_id": public["id"]})
    _ok(
        stack.put(
            f"{N}/routers/{router['id']}/add_router_interface", json={"subnet_id": _v4_subnet(stack, private)}
        )
    )
    sid = _boot(stack)
    pools = _ok(stack.get("/compute/v2.1/os-floating-ip-pools"))["floating_ip_pools"]
    assert pools == [{"name": "public"}]
    assert stack.get("/compute/v2.1/os-floating-ips", version="2.36").status_code == 404

    fip = _ok(stack.post("/compute/v2.1/os-floating-ips", json={"pool": "public"}))["floating_ip"]
    assert fip["pool"] == "public" and fip["instance_id"] is None and fip["fixed_ip"] is None
    missing = stack.post("/compute/v2.1/os-floating-ips", json={"pool": "nope"})
    assert missing.status_code == 404 and "Floating IP pool not found." in missing.text

    add = {"addFloatingIp": {"address": fip["ip"]}}
    assert stack.post(f"{SERVERS}/{sid}/action", json=add, version="2.44").status_code == 404
    assert stack.post(f"{SERVERS}/{sid}/action", json=add).status_code == 202
    shown = _ok(stack.get(f"/compute/v2.1/os-floating-ips/{fip['id']}"))["floating_ip"]
    assert shown["instance_id"] == sid and shown["fixed_ip"].startswith("10.0.0.")
    listed = _ok(stack.get("/compute/v2.1/os-floating-ips"))["floating_ips"]
    assert [f["id"] for f in listed] == [fip["id"]]
    unknown = stack.post(f"{SERVERS}/{sid}/action", json={"addFloatingIp": {"address": "172.24.4.250"}})
    assert unknown.status_code == 404 and "Floating IP not found for address 172.24.4.250." in unknown.text

    remove = {"removeFloatingIp": {"address": fip["ip"]}}
    assert stack.post(f"{SERVERS}/{sid}/action", json=remove).status_code == 202
    again = stack.post(f"{SERVERS}/{sid}/action", json=remove)
    assert again.status_code == 409 and "is not associated with instance" in again.text
    assert stack.delete(f"/compute/v2.1/os-floating-ips/{fip['id']}").status_code == 202
    gone = stack.get(f"/compute/v2.1/os-floating-ips/{fip['id']}")
    assert gone.status_code == 404 and f"Floating IP not found for ID {fip['id']}" in gone.text


def test_detaching_or_deleting_the_port_unmaps_its_floating_ip(stack: Api) -> None:
    public, private = _net(stack, "public"), _net(stack, "private")
    router = _router(stack, external_gateway_info={"network_id": public["id"]})
    body = {"subnet_id": _v4_subnet(stack, private)}
    _ok(stack.put(f"{N}/routers/{router['id']}/add_router_interface", json=body))
    sid = _boot(stack)
    port = _server_port(stack, sid)
    fip = {"floatingip": {"floating_network_id": public["id"], "port_id": port["id"]}}
    made = _ok(stack.post(f"{N}/floatingips", json=fip), 201)["floatingip"]
    assert made["status"] == "ACTIVE" and made["port_id"] == port["id"]

    r = stack.delete(f"{SERVERS}/{sid}/os-interface/{port['id']}")
    assert r.status_code == 202, r.text
    stack.wait_for(f"{N}/ports/{port['id']}", lambda r: r.status_code == 404)
    after = _ok(stack.get(f"{N}/floatingips/{made['id']}"))["floatingip"]
    assert after["port_id"] is None and after["fixed_ip_address"] is None and after["status"] == "DOWN"

    # a port of the user's own: deleting it unmaps too
    mine = _ok(stack.post(f"{N}/ports", json={"port": {"network_id": private["id"]}}), 201)["port"]
    _ok(stack.put(f"{N}/floatingips/{made['id']}", json={"floatingip": {"port_id": mine["id"]}}))
    assert stack.delete(f"{N}/ports/{mine['id']}").status_code == 204
    assert _ok(stack.get(f"{N}/floatingips/{made['id']}"))["floatingip"]["port_id"] is None


def test_compute_floating_ips_match_tempest_schemas(stack: Api) -> None:
    """Tempest's own os-floating-ips client (its response schemas, status codes) at 2.1."""
    public, private = _net(stack, "public"), _net(stack, "private")
    router = _router(stack, external_gateway_info={"network_id": public["id"]})
    body = {"subnet_id": _v4_subnet(stack, private)}
    _ok(stack.put(f"{N}/routers/{router['id']}/add_router_interface", json=body))
    sid = _boot(stack)
    client = tempest_client(stack, FloatingIPsClient)
    fip = client.create_floating_ip(pool="public")["floating_ip"]
    client.associate_floating_ip_to_server(fip["ip"], sid)
    shown = client.show_floating_ip(fip["id"])["floating_ip"]
    assert shown["instance_id"] == sid
    assert [f["id"] for f in client.list_floating_ips()["floating_ips"]] == [fip["id"]]
    client.disassociate_floating_ip_from_server(fip["ip"], sid)
    client.delete_floating_ip(fip["id"])
    assert client.is_resource_deleted(fip["id"])
    with pytest.raises(lib_exc.NotFound):
        client.create_floating_ip(pool="no-such-pool")


def test_floating_ips_on_postgres(stack_factory: Any) -> None:
    """The same flows on PostgreSQL (skipped loudly without it)."""
    stack = stack_factory(postgres=True)
    test_floating_ip_allocate_associate_and_server_delete(stack)
    test_floating_ip_refusals_and_quota(stack)


def test_extra_routes(stack: Api) -> None:
    private = _net(stack, "private")
    subnet = _v4_subnet(stack, private)
    router = _router(stack)
    assert router["routes"] == []
    url = f"{N}/routers/{router['id']}"
    routes = [{"destination": "192.168.50.0/24", "nexthop": "10.0.0.10"}]
    posted = stack.post(f"{N}/routers", json={"router": {"name": "x", "routes": routes}})
    assert posted.status_code == 400, posted.text
    # the nexthop must be on a subnet of the router
    assert "the nexthop is not connected with router" in _error(
        stack.put(url, json={"router": {"routes": routes}}), 400, "InvalidRoutes"
    )
    _ok(stack.put(f"{url}/add_router_interface", json={"subnet_id": subnet}))
    assert _ok(stack.put(url, json={"router": {"routes": routes}}))["router"]["routes"] == routes
    assert _ok(stack.get(url))["router"]["routes"] == routes
    bad = [{"destination": "nope", "nexthop": "10.0.0.10"}]
    _error(stack.put(url, json={"router": {"routes": bad}}), 400, "InvalidInput")
    remove = stack.put(f"{url}/remove_router_interface", json={"subnet_id": subnet})
    _error(remove, 409, "RouterInterfaceInUseByRoute")
    assert _ok(stack.put(url, json={"router": {"routes": None}}))["router"]["routes"] == []  # null clears
    _ok(stack.put(f"{url}/remove_router_interface", json={"subnet_id": subnet}))
    aliases = {e["alias"] for e in _ok(stack.get(f"{N}/extensions"))["extensions"]}
    assert "extraroute" in aliases


def test_id_less_lists_take_paging_parameters_without_error(stack: Api) -> None:
    """Regression (fuzzer): a marker on availability_zones or floatingip_pools was a 500."""
    for collection in ("availability_zones", "floatingip_pools"):
        r = stack.get(f"{N}/{collection}?marker=-9223372036854775809")
        assert r.status_code == 404, r.text
        assert len(_ok(stack.get(f"{N}/{collection}?limit=1"))[collection]) == 1
