"""Routers and floating IPs end to end (issue 19, item 6): openstacksdk's ``create_server`` with its
default ``auto_ip`` ends ACTIVE with a floating IP, and the ``openstack`` CLI's router and
floating IP commands work against ``novalite serve``."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import RunningServer


def _json(server: RunningServer, *args: str, cloud: str = "novalite") -> Any:
    return json.loads(server.openstack(*args, "-f", "json", cloud=cloud).stdout)


def _floating(addresses: dict[str, Any]) -> list[str]:
    return [a["addr"] for net in addresses.values() for a in net if a.get("OS-EXT-IPS:type") == "floating"]


def test_router_floating_ips_cli_and_sdk_auto_ip(server: RunningServer) -> None:
    router = _json(server, "router", "create", "r1")
    server.openstack("router", "set", "--external-gateway", "public", "r1")
    server.openstack("router", "add", "subnet", "r1", "private-subnet")
    conn = server.sdk()
    shown = _json(server, "router", "show", "r1")
    assert shown["external_gateway_info"]["network_id"] == conn.network.find_network("public").id
    assert shown["interfaces_info"][0]["subnet_id"] == conn.network.find_subnet("private-subnet").id

    # openstacksdk's cloud layer with its defaults: auto_ip finds the public network and maps an address
    vm = conn.create_server("sdk-auto-ip", image="novalite-tiny", flavor="m1.tiny", wait=True, timeout=120)
    assert vm.status == "ACTIVE"
    mapped = _floating(vm.addresses)
    assert len(mapped) == 1 and mapped[0].startswith("172.24.4.")
    assert conn.get_server(vm.id).public_v4 == mapped[0]
    assert [f.floating_ip_address for f in conn.network.ips(status="ACTIVE")] == mapped

    # the CLI: allocate, map to a port, list, server add floating ip, unmap by deleting the server
    other = _json(
        server, "server", "create", "--flavor", "m1.tiny", "--image", "novalite-tiny", "--wait", "cli-vm"
    )
    port = _json(server, "port", "list", "--server", other["id"])[0]["ID"]
    fip = _json(server, "floating", "ip", "create", "public")
    server.openstack("floating", "ip", "set", "--port", port, fip["id"])
    listed = {f["ID"]: f for f in _json(server, "floating", "ip", "list")}
    assert listed[fip["id"]]["Port"] == port and listed[fip["id"]]["Fixed IP Address"]
    # one floating IP per fixed IP: unmap the first before mapping another the CLI's way
    server.openstack("floating", "ip", "unset", "--port", fip["id"])
    second = _json(server, "floating", "ip", "create", "public")
    server.openstack("server", "add", "floating", "ip", "cli-vm", second["floating_ip_address"])
    addresses = _json(server, "server", "show", "cli-vm")["addresses"]
    assert second["floating_ip_address"] in json.dumps(addresses)

    # a subnet with a router interface cannot go; deleting the servers unmaps their floating IPs
    refused = server.openstack("subnet", "delete", "private-subnet", check=False)
    assert refused.returncode != 0
    server.openstack("server", "delete", "--wait", "cli-vm", "sdk-auto-ip")
    left = _json(server, "floating", "ip", "list")
    assert len(left) == 3 and {f["Port"] for f in left} == {None}

    server.openstack("floating", "ip", "delete", *[f["ID"] for f in left])
    assert _json(server, "floating", "ip", "list") == []
    server.openstack("router", "remove", "subnet", "r1", "private-subnet")
    server.openstack("router", "delete", router["id"])
    assert _json(server, "router", "list") == []
