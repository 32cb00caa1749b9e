"""The unmodified ``openstack`` CLI and openstacksdk against volume snapshots and backups and
Keystone's catalog (services, endpoints, the block-storage entry)."""

from __future__ import annotations

import json
import time
from typing import Any

from tests.conftest import RunningServer


def _json(server: RunningServer, *args: str, cloud: str = "novalite") -> Any:
    return json.loads(server.openstack(*args, "-f", "json", cloud=cloud).stdout)


def _wait(server: RunningServer, *show: str, status: str = "available") -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        item: dict[str, Any] = _json(server, *show)
        if item["status"] == status:
            return item
        assert item["status"] not in ("error", "error_restoring"), item
        assert time.monotonic() < deadline, f"{' '.join(show)} never became {status}: {item['status']}"
        time.sleep(0.5)


def test_catalog_service_and_endpoint_commands(server: RunningServer) -> None:
    types = {row["Type"] for row in _json(server, "catalog", "list")}
    assert {"compute", "identity", "image", "network", "placement", "block-storage", "volumev3"} <= types
    services = {row["Type"]: row["Name"] for row in _json(server, "service", "list", cloud="novalite-admin")}
    assert services["block-storage"] == "cinder" and services["compute"] == "nova"
    endpoints = _json(
        server, "endpoint", "list", "--service", "compute", "--interface", "public", cloud="novalite-admin"
    )
    assert [(e["Service Type"], e["Interface"]) for e in endpoints] == [("compute", "public")]
    assert endpoints[0]["URL"].endswith("/compute/v2.1")
    refused = server.openstack("endpoint", "list", check=False)
    assert refused.returncode != 0 and "403" in refused.stderr
    admin = "novalite-admin"
    server.openstack("service", "create", "--name", "swift", "object-store", cloud=admin)
    url = "http://swift.example:8080/v1"
    server.openstack("endpoint", "create", "--region", "RegionOne", "swift", "public", url, cloud=admin)
    catalog = json.dumps(_json(server, "catalog", "show", "object-store"))
    assert url in catalog
    server.openstack("service", "delete", "swift", cloud=admin)
    assert "object-store" not in {row["Type"] for row in _json(server, "catalog", "list")}


def test_volume_snapshot_and_backup_commands(server: RunningServer) -> None:
    server.openstack("volume", "create", "--size", "1", "snap-src")
    _wait(server, "volume", "show", "snap-src")
    snap = _json(server, "volume", "snapshot", "create", "--volume", "snap-src", "s1")
    assert snap["name"] == "s1"
    _wait(server, "volume", "snapshot", "show", "s1")
    assert [(s["Name"], s["Status"]) for s in _json(server, "volume", "snapshot", "list")] == [
        ("s1", "available")
    ]
    from_snap = _json(server, "volume", "create", "--snapshot", "s1", "from-snap")
    assert from_snap["snapshot_id"] == snap["id"]
    _wait(server, "volume", "show", "from-snap")
    backup = _json(server, "volume", "backup", "create", "--name", "b1", "snap-src")
    _wait(server, "volume", "backup", "show", backup["id"])
    assert [b["Name"] for b in _json(server, "volume", "backup", "list")] == ["b1"]
    server.openstack("volume", "backup", "restore", "b1", "restored")
    _wait(server, "volume", "show", "restored")
    _wait(server, "volume", "backup", "show", "b1")
    refused = server.openstack("volume", "delete", "snap-src", check=False)
    assert refused.returncode != 0
    server.openstack("--os-volume-api-version", "3.9", "volume", "backup", "set", "--name", "b2", "b1")
    server.openstack("volume", "backup", "delete", "b2")
    server.openstack("volume", "snapshot", "set", "--property", "tier=gold", "s1")
    assert "gold" in json.dumps(_json(server, "volume", "snapshot", "show", "s1"))
    server.openstack("volume", "snapshot", "set", "--state", "error", snap["id"], cloud="novalite-admin")
    assert _json(server, "volume", "snapshot", "show", "s1")["status"] == "error"
    server.openstack("volume", "snapshot", "delete", "--force", snap["id"], cloud="novalite-admin")
    deadline = time.monotonic() + 30
    while _json(server, "volume", "snapshot", "list"):
        assert time.monotonic() < deadline
        time.sleep(0.5)
    server.openstack("volume", "delete", "snap-src", "from-snap", "restored")
    assert _json(server, "volume", "backup", "list") == []


def test_openstacksdk_finds_block_storage(server: RunningServer) -> None:
    conn = server.sdk()
    assert conn.block_storage.get_endpoint().endswith("/volume/v3")
    assert all(snap.status for snap in conn.block_storage.snapshots())
