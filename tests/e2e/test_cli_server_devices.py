"""A server's network interfaces, security groups and volumes end to end with the unmodified
``openstack`` CLI against ``novalite serve`` (the create-with-network and boot-from-volume basics
are in test_cli_network_volume.py)."""

from __future__ import annotations

import json
import time
from typing import Any

from tests.conftest import RunningServer


def _json(server: RunningServer, *args: str) -> Any:
    return json.loads(server.openstack(*args, "-f", "json").stdout)


def _wait_volume(server: RunningServer, name: str, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        vol = _json(server, "volume", "show", name)
        if vol["status"] == status or time.monotonic() > deadline:
            assert vol["status"] == status, vol
            return vol  # type: ignore[no-any-return]
        time.sleep(0.5)


def _addresses(server: RunningServer, name: str) -> str:
    return json.dumps(_json(server, "server", "show", name)["addresses"])


def test_create_with_network_security_group_and_port(server: RunningServer) -> None:
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
        "--security-group",
        "default",
        "--wait",
        "sgvm",
    )
    assert vm["status"] == "ACTIVE" and vm["addresses"]["private"][0].startswith("10.0.0.")
    assert "default" in json.dumps(vm["security_groups"])
    port = _json(server, "port", "create", "--network", "private", "userport")
    nic = _json(
        server,
        "server",
        "create",
        "--flavor",
        "m1.tiny",
        "--image",
        "novalite-tiny",
        "--nic",
        f"port-id={port['id']}",
        "--wait",
        "nicvm",
    )
    assert nic["status"] == "ACTIVE"
    assert port["fixed_ips"][0]["ip_address"] in json.dumps(nic["addresses"])
    assert _json(server, "port", "show", "userport")["device_id"] == nic["id"]
    server.openstack("server", "delete", "--wait", "sgvm", "nicvm")
    kept = _json(server, "port", "show", "userport")  # the user's port outlives the server, unbound
    assert kept["device_id"] == "" and kept["status"] == "DOWN"
    server.openstack("port", "delete", "userport")
    assert _json(server, "port", "list", "--network", "private") == []


def test_add_and_remove_port_and_security_group(server: RunningServer) -> None:
    vm = _json(
        server,
        "server",
        "create",
        "--flavor",
        "m1.tiny",
        "--image",
        "novalite-tiny",
        "--no-network",
        "--wait",
        "devvm",
    )
    assert vm["addresses"] == {}
    port = _json(
        server, "port", "create", "--network", "private", "--fixed-ip", "ip-address=10.0.0.33", "extra"
    )
    server.openstack("server", "add", "port", "devvm", "extra")
    assert "10.0.0.33" in _addresses(server, "devvm")
    assert _json(server, "port", "show", "extra")["device_id"] == vm["id"]
    _json(server, "security", "group", "create", "web")
    server.openstack("server", "add", "security", "group", "devvm", "web")
    groups = json.dumps(_json(server, "server", "show", "devvm")["security_groups"])
    assert "web" in groups
    server.openstack("server", "remove", "security", "group", "devvm", "web")
    assert "web" not in json.dumps(_json(server, "server", "show", "devvm").get("security_groups", []))
    server.openstack("server", "remove", "port", "devvm", port["id"])
    assert "10.0.0.33" not in _addresses(server, "devvm")
    assert _json(server, "port", "show", "extra")["device_id"] == ""
    server.openstack("server", "add", "network", "devvm", "private")
    assert "10.0.0." in _addresses(server, "devvm")
    server.openstack("server", "delete", "--wait", "devvm")
    server.openstack("port", "delete", "extra")
    server.openstack("security", "group", "delete", "web")
    assert _json(server, "port", "list", "--network", "private") == []


def test_add_and_remove_volume(server: RunningServer) -> None:
    vm = _json(
        server,
        "server",
        "create",
        "--flavor",
        "m1.tiny",
        "--image",
        "novalite-tiny",
        "--no-network",
        "--wait",
        "volvm",
    )
    _json(server, "volume", "create", "--size", "1", "datavol")
    _wait_volume(server, "datavol", "available")
    server.openstack("server", "add", "volume", "volvm", "datavol")
    vol = _wait_volume(server, "datavol", "in-use")
    assert [a["server_id"] for a in vol["attachments"]] == [vm["id"]]
    attached = json.dumps(_json(server, "server", "show", "volvm")["volumes_attached"])
    assert vol["id"] in attached
    listed = _json(server, "server", "volume", "list", "volvm")
    assert [(v["Volume ID"], v["Device"]) for v in listed] == [(vol["id"], "/dev/vdb")]
    server.openstack("server", "remove", "volume", "volvm", "datavol")
    _wait_volume(server, "datavol", "available")
    assert _json(server, "server", "volume", "list", "volvm") == []
    server.openstack("server", "delete", "--wait", "volvm")
    server.openstack("volume", "delete", "datavol")
