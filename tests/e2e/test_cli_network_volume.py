"""The unmodified ``openstack`` CLI against the embedded Neutron and Cinder subsets."""

from __future__ import annotations

import json
import time
from typing import Any

from tests.conftest import RunningServer


def _json(server: RunningServer, *args: str, cloud: str = "novalite") -> Any:
    return json.loads(server.openstack(*args, "-f", "json", cloud=cloud).stdout)


def test_network_commands(server: RunningServer) -> None:
    names = {n["Name"] for n in _json(server, "network", "list")}
    assert {"public", "private"} <= names
    net = _json(server, "network", "create", "--tag", "blue", "n1")
    assert net["name"] == "n1" and net["status"] == "ACTIVE"
    assert [n["Name"] for n in _json(server, "network", "list", "--tags", "blue")] == ["n1"]
    shown = _json(server, "network", "show", "n1")
    assert shown["id"] == net["id"]
    subnet = _json(server, "subnet", "create", "--network", "n1", "--subnet-range", "10.9.0.0/24", "s1")
    assert subnet["cidr"] == "10.9.0.0/24" and subnet["gateway_ip"] == "10.9.0.1"
    assert subnet["network_id"] == net["id"]
    port = _json(server, "port", "create", "--network", "n1", "p1")
    assert port["mac_address"].startswith("fa:16:3e:")
    fixed = port["fixed_ips"]
    assert "10.9.0.2" in json.dumps(fixed)
    assert [p["Name"] for p in _json(server, "port", "list", "--network", "n1")] == ["p1"]
    proc = server.openstack("network", "delete", "n1", check=False)
    assert proc.returncode != 0  # the port is still there
    server.openstack("port", "delete", "p1")
    server.openstack("subnet", "delete", "s1")
    server.openstack("network", "delete", "n1")
    assert "n1" not in {n["Name"] for n in _json(server, "network", "list")}
    missing = server.openstack("network", "show", "n1", check=False)
    assert missing.returncode != 0 and "n1" in missing.stderr


def test_security_group_commands(server: RunningServer) -> None:
    sg = _json(server, "security", "group", "create", "sg1")
    assert sg["name"] == "sg1"
    names = {g["Name"] for g in _json(server, "security", "group", "list")}
    assert {"default", "sg1"} <= names
    rule = _json(
        server, "security", "group", "rule", "create", "--protocol", "tcp", "--dst-port", "22", "sg1"
    )
    assert rule["protocol"] == "tcp" and rule["port_range_min"] == 22 and rule["port_range_max"] == 22
    rules = _json(server, "security", "group", "rule", "list", "sg1")
    assert any(r.get("Port Range") == "22:22" for r in rules)
    dup = server.openstack(
        "security", "group", "rule", "create", "--protocol", "tcp", "--dst-port", "22", "sg1", check=False
    )
    assert dup.returncode != 0
    server.openstack("security", "group", "delete", "sg1")


def test_volume_commands(server: RunningServer) -> None:
    vol = _json(server, "volume", "create", "--size", "1", "v1")
    assert vol["name"] == "v1" and vol["size"] == 1
    deadline = time.monotonic() + 60
    while _json(server, "volume", "show", "v1")["status"] != "available":
        assert time.monotonic() < deadline, "volume never became available"
        time.sleep(0.5)
    listed = _json(server, "volume", "list")
    assert [(v["Name"], v["Status"], v["Size"]) for v in listed] == [("v1", "available", 1)]
    server.openstack("volume", "delete", "v1")
    assert _json(server, "volume", "list") == []
    missing = server.openstack("volume", "show", "v1", check=False)
    assert missing.returncode != 0


def test_quota_set_and_show_cover_network_and_volume(server: RunningServer) -> None:
    server.openstack(
        "quota", "set", "--networks", "7", "--ports", "50", "--volumes", "4", "demo", cloud="novalite-admin"
    )
    limits = {
        row["Resource"]: row["Limit"]
        for row in _json(server, "quota", "show", "demo", cloud="novalite-admin")
    }
    assert (limits["networks"], limits["ports"], limits["volumes"], limits["gigabytes"]) == (7, 50, 4, 1000)
    denied = server.openstack("quota", "set", "--networks", "9", "demo", check=False)
    assert denied.returncode != 0


def test_openstacksdk_network_and_block_storage(server: RunningServer) -> None:
    conn = server.sdk()
    private = conn.network.find_network("private")
    assert private is not None and private.subnet_ids
    port = conn.network.create_port(network_id=private.id, name="sdk-port")
    try:
        assert port.fixed_ips and port.mac_address.startswith("fa:16:3e:")
        assert conn.network.get_port(port.id).name == "sdk-port"
    finally:
        conn.network.delete_port(port.id)
    assert conn.network.find_port("sdk-port") is None
    vol = conn.block_storage.create_volume(size=1, name="sdk-vol")
    vol = conn.block_storage.wait_for_status(vol, status="available", wait=60)
    assert vol.size == 1 and vol.volume_type == "__DEFAULT__"
    conn.block_storage.delete_volume(vol)
    conn.block_storage.wait_for_delete(vol, wait=60)
    assert conn.block_storage.find_volume("sdk-vol") is None


def test_servers_get_ports_and_boot_volumes(server: RunningServer) -> None:
    vm = _json(
        server,
        "server",
        "create",
        "--flavor",
        "m1.tiny",
        "--image",
        "novalite-tiny",
        "--network",
        "private",
        "--wait",
        "netvm",
    )
    assert vm["addresses"]["private"][0].startswith("10.0.0.")
    ports = _json(server, "port", "list", "--server", "netvm")
    assert len(ports) == 1 and ports[0]["Status"] == "ACTIVE"
    bfv = _json(
        server,
        "server",
        "create",
        "--flavor",
        "m1.tiny",
        "--image",
        "novalite-tiny",
        "--boot-from-volume",
        "1",
        "--no-network",
        "--wait",
        "bfvvm",
    )
    assert bfv["status"] == "ACTIVE"
    volumes = _json(server, "volume", "list")
    assert [(v["Status"], v["Size"]) for v in volumes] == [("in-use", 1)]
    assert [a["server_id"] for a in volumes[0]["Attached to"]] == [bfv["id"]]
    server.openstack("server", "delete", "--wait", "netvm", "bfvvm")
    assert _json(server, "port", "list", "--network", "private") == []
    # the CLI does not ask for delete_on_termination: the boot volume stays, detached
    assert [(v["Status"], v["Attached to"]) for v in _json(server, "volume", "list")] == [("available", [])]
    server.openstack("volume", "delete", volumes[0]["ID"])
