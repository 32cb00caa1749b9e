"""Remote consoles and the os-volumes / os-snapshots proxies against Tempest's own response
schemas (the harness of test_tempest_schemas.py: Tempest's unmodified service clients check the
status codes, the echoed microversion and every body)."""

from __future__ import annotations

from typing import Any

import pytest
from tempest.lib import exceptions as lib_exc
from tempest.lib.services.compute.servers_client import ServersClient
from tempest.lib.services.compute.snapshots_client import SnapshotsClient
from tempest.lib.services.compute.volumes_client import VolumesClient

from tests.functional.tempest_inprocess import microversion, tempest_client
from tests.functional.test_tempest_schemas_servers import boot


@pytest.mark.parametrize("version", ["2.6", "2.8", "2.99"])
def test_remote_consoles_match_tempest(stack: Any, version: str) -> None:
    server_id = boot(stack, "2.1")["id"]
    client = tempest_client(stack, ServersClient)
    with microversion(version):
        console = client.get_remote_console(server_id, console_type="novnc", protocol="vnc")["remote_console"]
        assert console["type"] == "novnc" and "token" in console["url"]
        serial = client.get_remote_console(server_id, console_type="serial", protocol="serial")
        assert serial["remote_console"]["url"].startswith("ws://")


def test_legacy_vnc_console_matches_tempest(stack: Any) -> None:
    server_id = boot(stack, "2.1")["id"]
    client = tempest_client(stack, ServersClient)
    with microversion("2.1"):
        console = client.get_vnc_console(server_id, type="novnc")["console"]
        assert console["type"] == "novnc"


def test_volume_and_snapshot_proxies_match_tempest(stack: Any) -> None:
    volumes = tempest_client(stack, VolumesClient)
    snapshots = tempest_client(stack, SnapshotsClient)
    with microversion("2.1"):
        vol = volumes.create_volume(size=1, display_name="tempest-vol", metadata={"k": "v"})["volume"]
        stack.wait_for(
            f"/volume/v3/volumes/{vol['id']}", lambda r: r.json()["volume"]["status"] == "available"
        )
        assert volumes.show_volume(vol["id"])["volume"]["displayName"] == "tempest-vol"
        assert [v["id"] for v in volumes.list_volumes()["volumes"]] == [vol["id"]]
        assert [v["id"] for v in volumes.list_volumes(detail=True)["volumes"]] == [vol["id"]]
        snap = snapshots.create_snapshot(vol["id"], display_name="tempest-snap")["snapshot"]
        stack.wait_for(
            f"/volume/v3/snapshots/{snap['id']}", lambda r: r.json()["snapshot"]["status"] == "available"
        )
        assert snapshots.show_snapshot(snap["id"])["snapshot"]["volumeId"] == vol["id"]
        assert [s["id"] for s in snapshots.list_snapshots(detail=True)["snapshots"]] == [snap["id"]]
        snapshots.delete_snapshot(snap["id"])
        with pytest.raises(lib_exc.NotFound):
            snapshots.show_snapshot(snap["id"])
        volumes.delete_volume(vol["id"])
        with pytest.raises(lib_exc.NotFound):
            volumes.show_volume(vol["id"])
