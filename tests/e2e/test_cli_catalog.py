"""The real `openstack` CLI and openstacksdk against `novalite serve`: flavors, key pairs,
quotas, limits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RunningServer

pytestmark = pytest.mark.e2e
ADMIN = "novalite-admin"


def _json(server: RunningServer, *args: str, cloud: str = "novalite") -> Any:
    return json.loads(server.openstack(*args, "-f", "json", cloud=cloud).stdout)


def test_flavor_list_and_show(server: RunningServer) -> None:
    listed = _json(server, "flavor", "list")
    assert {f["Name"] for f in listed} >= {"m1.tiny", "m1.small", "m1.medium", "m1.large", "m1.xlarge"}
    tiny = _json(server, "flavor", "show", "m1.tiny")  # by name: 404 on /flavors/m1.tiny, then the list
    assert (tiny["id"], tiny["ram"], tiny["vcpus"], tiny["disk"]) == ("1", 512, 1, 1)


def test_private_flavor_lifecycle(server: RunningServer) -> None:
    created = _json(
        server,
        "flavor",
        "create",
        "--id",
        "cli-1",
        "--ram",
        "128",
        "--vcpus",
        "1",
        "--disk",
        "1",
        "--private",
        "--property",
        "hw:cpu_policy=shared",
        "cli.private",
        cloud=ADMIN,
    )
    assert created["id"] == "cli-1" and created["os-flavor-access:is_public"] is False
    assert "cli.private" not in {f["Name"] for f in _json(server, "flavor", "list")}
    server.openstack("flavor", "set", "--project", "demo", "cli.private", cloud=ADMIN)
    assert "cli.private" in {f["Name"] for f in _json(server, "flavor", "list", "--all")}
    shown = _json(server, "flavor", "show", "cli.private", cloud=ADMIN)
    assert shown["properties"] == {"hw:cpu_policy": "shared"}
    demo_project = _json(server, "token", "issue")["project_id"]
    assert demo_project in shown["access_project_ids"]
    server.openstack("flavor", "delete", "cli.private", cloud=ADMIN)
    proc = server.openstack("flavor", "show", "cli-1", check=False)
    assert proc.returncode != 0


def test_member_cannot_create_flavor(server: RunningServer) -> None:
    proc = server.openstack("flavor", "create", "--ram", "64", "nope", check=False)
    assert proc.returncode != 0
    assert "403" in proc.stderr


def test_keypair_lifecycle(server: RunningServer, tmp_path: Path) -> None:
    private = tmp_path / "cli-key.pem"
    # the CLI generates the key locally and imports the public half
    created = _json(server, "keypair", "create", "--private-key", str(private), "cli-key")
    assert created["name"] == "cli-key" and created["fingerprint"].count(":") == 15
    assert private.read_text().startswith("-----BEGIN")
    shown = _json(server, "keypair", "show", "cli-key")
    assert shown["fingerprint"] == created["fingerprint"]
    assert "cli-key" in {k["Name"] for k in _json(server, "keypair", "list")}
    server.openstack("keypair", "delete", "cli-key")
    assert "cli-key" not in {k["Name"] for k in _json(server, "keypair", "list")}


def test_quota_and_limits(server: RunningServer) -> None:
    server.openstack("quota", "set", "--instances", "8", "demo", cloud=ADMIN)
    rows = _json(server, "quota", "show", "demo", cloud=ADMIN)
    quota = {row["Resource"]: row["Limit"] for row in rows}
    assert quota["instances"] == 8 and quota["cores"] == 20 and quota["key-pairs"] == 100
    limits = _json(server, "limits", "show", "--absolute")
    values = {row["Name"]: row["Value"] for row in limits}
    assert values["instances"] == 8 and values["keypairs"] == 100


def test_sdk_flavors_and_keypairs(server: RunningServer) -> None:
    conn = server.sdk()
    names = {f.name for f in conn.compute.flavors()}
    assert "m1.small" in names
    small = conn.compute.find_flavor("m1.small")
    assert small is not None and small.ram == 2048 and small.vcpus == 1
    key = conn.compute.create_keypair(name="sdk-key")  # generated server-side at 2.10
    assert key.private_key.startswith("-----BEGIN")
    assert conn.compute.get_keypair("sdk-key").fingerprint == key.fingerprint
    conn.compute.delete_keypair("sdk-key")
    assert conn.compute.find_keypair("sdk-key") is None


def test_availability_zone_list(server: RunningServer) -> None:
    # a member gets 403 on the detail call and the CLI falls back to the plain list
    zones = _json(server, "availability", "zone", "list", "--compute")
    assert {(z["Zone Name"], z["Zone Status"]) for z in zones} == {("nova", "available")}
