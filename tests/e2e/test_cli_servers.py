"""Servers end to end with the unmodified ``openstack`` CLI and openstacksdk against ``novalite serve``."""

from __future__ import annotations

import json
import time
from typing import Any

from tests.conftest import RunningServer


def _json(server: RunningServer, *args: str, cloud: str = "novalite") -> Any:
    return json.loads(server.openstack(*args, "-f", "json", cloud=cloud).stdout)


def test_cli_create_show_list_delete(server: RunningServer) -> None:
    created = _json(
        server,
        "server",
        "create",
        "--flavor",
        "m1.tiny",
        "--image",
        "novalite-tiny",
        "--no-network",
        "--wait",
        "vm1",
    )
    assert created["status"] == "ACTIVE"
    assert created["name"] == "vm1"
    shown = _json(server, "server", "show", "vm1")
    assert shown["id"] == created["id"] and shown["status"] == "ACTIVE"
    assert "m1.tiny" in json.dumps(shown["flavor"])
    listed = _json(server, "server", "list")
    assert [s["Name"] for s in listed if s["ID"] == created["id"]] == ["vm1"]
    server.openstack("server", "delete", "--wait", "vm1")
    gone = server.openstack("server", "show", created["id"], check=False)
    assert gone.returncode != 0 and "No Server found" in gone.stderr


def test_cli_multi_create(server: RunningServer) -> None:
    server.openstack(
        "server",
        "create",
        "--flavor",
        "m1.tiny",
        "--image",
        "novalite-tiny",
        "--no-network",
        "--min",
        "3",
        "--max",
        "5",
        "--wait",
        "multi",
    )
    listed = _json(server, "server", "list", "--name", "^multi-")
    names = sorted(s["Name"] for s in listed)
    assert names == ["multi-1", "multi-2", "multi-3", "multi-4", "multi-5"]
    deadline = time.monotonic() + 120
    while any(s["Status"] != "ACTIVE" for s in listed) and time.monotonic() < deadline:
        time.sleep(1)
        listed = _json(server, "server", "list", "--name", "^multi-")
    assert {s["Status"] for s in listed} == {"ACTIVE"}
    server.openstack("server", "delete", "--wait", *names)
    assert _json(server, "server", "list", "--name", "^multi-") == []


def test_cli_failed_spawn_shows_fault(server: RunningServer) -> None:
    proc = server.openstack(
        "server",
        "create",
        "--flavor",
        "m1.tiny",
        "--image",
        "novalite-tiny",
        "--no-network",
        "--property",
        "novalite:fail_spawn=always",
        "--wait",
        "doomed",
        check=False,
    )
    assert proc.returncode != 0  # --wait reports the ERROR
    shown = _json(server, "server", "show", "doomed")
    assert shown["status"] == "ERROR"
    fault = (
        shown["fault"] if isinstance(shown["fault"], dict) else json.loads(shown["fault"].replace("'", '"'))
    )
    assert fault["code"] in (500, 400) and fault["message"]
    server.openstack("server", "delete", "--wait", "doomed")


def test_sdk_create_wait_delete(server: RunningServer) -> None:
    conn = server.sdk()
    image = conn.image.find_image("novalite-tiny")
    flavor = conn.compute.find_flavor("m1.tiny")
    created = conn.compute.create_server(
        name="sdk-vm", image_id=image.id, flavor_id=flavor.id, networks="none"
    )
    assert created.admin_password
    active = conn.compute.wait_for_server(created, status="ACTIVE", wait=120, interval=1)
    assert active.status == "ACTIVE" and active.name == "sdk-vm"
    assert any(s.id == created.id for s in conn.compute.servers(details=True))
    conn.compute.delete_server(created)
    conn.compute.wait_for_delete(created, wait=120, interval=1)
    assert conn.compute.find_server(created.id) is None
