"""Cinder v3 snapshots and backups through HTTP: the statuses, the data really copied (a volume
made from a snapshot and a restored backup hold the bytes the volume had), the quotas (413 in
Cinder's words), a volume with snapshots refused delete unless it cascades, another project's
snapshot or backup a 404, and bad input a 400, never a 500."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import Api

V = "/volume/v3"
MV = {"OpenStack-API-Version": "volume 3.60"}


def _wait(stack: Api, path: str, key: str, status: str, as_: str = "demo") -> dict[str, Any]:
    r = stack.wait_for(path, lambda r: r.json()[key]["status"] not in ("creating", "restoring"), as_=as_)
    body = r.json()[key]
    assert body["status"] == status, body
    return body  # type: ignore[no-any-return]


def _volume(stack: Api, body: dict[str, Any], as_: str = "demo") -> dict[str, Any]:
    r = stack.post(f"{V}/volumes", json={"volume": body}, as_=as_, headers=MV)
    assert r.status_code == 202, r.text
    return _wait(stack, f"{V}/volumes/{r.json()['volume']['id']}", "volume", "available", as_)


def _snapshot(stack: Api, volume_id: str, as_: str = "demo", **extra: Any) -> dict[str, Any]:
    r = stack.post(
        f"{V}/snapshots", json={"snapshot": {"volume_id": volume_id, **extra}}, as_=as_, headers=MV
    )
    assert r.status_code == 202, r.text
    assert r.json()["snapshot"]["status"] == "creating"
    return _wait(stack, f"{V}/snapshots/{r.json()['snapshot']['id']}", "snapshot", "available", as_)


def _fault(r: Any, status: int, name: str) -> str:
    assert r.status_code == status, r.text
    return str(r.json()[name]["message"])


def _file(stack: Api, volume_id: str) -> Path:
    return Path(stack.runtime.settings.data_dir) / "volumes" / f"volume-{volume_id}"  # type: ignore[attr-defined]


def test_snapshot_lifecycle_and_volume_from_snapshot_copies_the_data(stack: Api) -> None:
    vol = _volume(stack, {"size": 1, "name": "src"})
    with open(_file(stack, vol["id"]), "r+b") as f:
        f.seek(4096)
        f.write(b"snapshot me")
    snap = _snapshot(stack, vol["id"], name="s1", description="first", metadata={"k": "v"})
    assert snap["size"] == 1 and snap["volume_id"] == vol["id"] and snap["metadata"] == {"k": "v"}
    assert snap["os-extended-snapshot-attributes:progress"] == "100%"
    assert snap["os-extended-snapshot-attributes:project_id"] == stack.ids["demo_project"]
    listed = stack.get(f"{V}/snapshots").json()["snapshots"]
    assert [s["id"] for s in listed] == [snap["id"]]
    detail = stack.get(f"{V}/snapshots/detail", params={"volume_id": vol["id"]}).json()["snapshots"]
    assert detail[0]["name"] == "s1"
    r = stack.put(f"{V}/snapshots/{snap['id']}", json={"snapshot": {"name": "s2"}})
    assert r.status_code == 200 and r.json()["snapshot"]["name"] == "s2"
    # the volume changes after the snapshot; the new volume holds what the snapshot saw
    with open(_file(stack, vol["id"]), "r+b") as f:
        f.seek(4096)
        f.write(b"changed!!!!")
    clone = _volume(stack, {"snapshot_id": snap["id"], "name": "from-snap"})
    assert clone["snapshot_id"] == snap["id"] and clone["size"] == 1
    with open(_file(stack, clone["id"]), "rb") as f:
        f.seek(4096)
        assert f.read(11) == b"snapshot me"
    assert _file(stack, clone["id"]).stat().st_size == 1024**3
    r = stack.post(f"{V}/volumes", json={"volume": {"snapshot_id": snap["id"], "size": 0}}, headers=MV)
    assert r.status_code == 400
    # a volume with snapshots: refused delete, unless it cascades
    msg = _fault(stack.delete(f"{V}/volumes/{vol['id']}"), 400, "badRequest")
    assert "have snapshots" in msg
    assert stack.delete(f"{V}/volumes/{vol['id']}", params={"cascade": "true"}).status_code == 202
    assert stack.get(f"{V}/snapshots/{snap['id']}").status_code == 404
    assert stack.get(f"{V}/volumes/{vol['id']}").status_code == 404
    assert not list((_file(stack, vol["id"]).parent).glob(f"snapshot-{snap['id']}*"))
    assert stack.delete(f"{V}/volumes/{clone['id']}").status_code == 202


def test_snapshot_delete_and_quotas(stack: Api) -> None:
    vol = _volume(stack, {"size": 2})
    snap = _snapshot(stack, vol["id"])
    limits = stack.get(f"{V}/limits").json()["limits"]["absolute"]
    assert limits["totalSnapshotsUsed"] == 1 and limits["totalGigabytesUsed"] == 4
    assert stack.delete(f"{V}/snapshots/{snap['id']}").status_code == 202
    assert stack.get(f"{V}/snapshots/{snap['id']}").status_code == 404
    assert stack.get(f"{V}/limits").json()["limits"]["absolute"]["totalSnapshotsUsed"] == 0
    pid = stack.ids["demo_project"]
    r = stack.put(f"{V}/os-quota-sets/{pid}", json={"quota_set": {"snapshots": 1}}, as_="admin")
    assert r.status_code == 200, r.text
    _snapshot(stack, vol["id"])
    r = stack.post(f"{V}/snapshots", json={"snapshot": {"volume_id": vol["id"]}})
    assert _fault(r, 413, "overLimit") == "Maximum number of snapshots allowed (1) exceeded"
    r = stack.put(
        f"{V}/os-quota-sets/{pid}", json={"quota_set": {"snapshots": 5, "gigabytes": 5}}, as_="admin"
    )
    assert r.status_code == 200
    msg = _fault(stack.post(f"{V}/snapshots", json={"snapshot": {"volume_id": vol["id"]}}), 413, "overLimit")
    assert msg.startswith("Requested volume or snapshot exceeds allowed gigabytes quota")


def test_snapshot_refusals(stack: Api) -> None:
    vol = _volume(stack, {"size": 1})
    r = stack.post(f"{V}/snapshots", json={"snapshot": {"volume_id": "nope"}})
    assert _fault(r, 404, "itemNotFound") == "Volume nope could not be found."
    assert stack.post(f"{V}/snapshots", json={"snapshot": {}}).status_code == 400
    assert stack.post(f"{V}/snapshots", json={"nothing": 1}).status_code == 400
    assert (
        stack.post(f"{V}/snapshots", json={"snapshot": {"volume_id": vol["id"], "force": "x"}}).status_code
        == 400
    )
    r = stack.post(f"{V}/volumes", json={"volume": {"snapshot_id": "missing"}}, headers=MV)
    assert _fault(r, 404, "itemNotFound") == "Snapshot missing could not be found."
    # an in-use volume needs force below 3.66
    admin_reset = {"os-reset_status": {"status": "in-use"}}
    assert stack.post(f"{V}/volumes/{vol['id']}/action", json=admin_reset, as_="admin").status_code == 202
    r = stack.post(f"{V}/snapshots", json={"snapshot": {"volume_id": vol["id"]}})
    assert "status must be available, but current status is: in-use" in _fault(r, 400, "badRequest")
    _snapshot(stack, vol["id"], force=True)
    # another project (the admin's own) sees none of it; all_tenants shows it to the admin
    snap = stack.get(f"{V}/snapshots").json()["snapshots"][0]
    admin_list = stack.get(f"{V}/snapshots", as_="admin").json()["snapshots"]
    assert admin_list == []
    assert len(stack.get(f"{V}/snapshots", params={"all_tenants": "1"}, as_="admin").json()["snapshots"]) == 1
    assert stack.get(f"{V}/snapshots/{snap['id']}", as_="admin").status_code == 200


def test_backup_create_restore_delete(stack: Api) -> None:
    vol = _volume(stack, {"size": 1, "name": "data"})
    with open(_file(stack, vol["id"]), "r+b") as f:
        f.seek(1 << 20)
        f.write(b"backed up bytes")
    r = stack.post(f"{V}/backups", json={"backup": {"volume_id": vol["id"], "name": "b1"}}, headers=MV)
    assert r.status_code == 202, r.text
    summary = r.json()["backup"]
    assert set(summary) == {"id", "name", "links"} and summary["name"] == "b1"
    backup = _wait(stack, f"{V}/backups/{summary['id']}", "backup", "available")
    assert backup["size"] == 1 and backup["volume_id"] == vol["id"] and backup["container"]
    stored = Path(stack.runtime.settings.data_dir) / "backups" / f"backup-{backup['id']}"  # type: ignore[attr-defined]
    assert stored.exists()
    assert stack.get(f"{V}/volumes/{vol['id']}").json()["volume"]["status"] == "available"
    assert [b["id"] for b in stack.get(f"{V}/backups").json()["backups"]] == [backup["id"]]
    assert stack.get(f"{V}/backups/detail").json()["backups"][0]["status"] == "available"
    limits = stack.get(f"{V}/limits").json()["limits"]["absolute"]
    assert limits["totalBackupsUsed"] == 1 and limits["totalBackupGigabytesUsed"] == 1
    # restore to a new volume
    r = stack.post(f"{V}/backups/{backup['id']}/restore", json={"restore": {}})
    assert r.status_code == 202, r.text
    restore = r.json()["restore"]
    assert restore["backup_id"] == backup["id"] and restore["volume_name"] == f"restore_backup_{backup['id']}"
    new = _wait(stack, f"{V}/volumes/{restore['volume_id']}", "volume", "available")
    assert new["size"] == 1
    with open(_file(stack, new["id"]), "rb") as f:
        f.seek(1 << 20)
        assert f.read(15) == b"backed up bytes"
    # restore over an existing volume
    target = _volume(stack, {"size": 2})
    r = stack.post(f"{V}/backups/{backup['id']}/restore", json={"restore": {"volume_id": target["id"]}})
    assert r.status_code == 202 and r.json()["restore"]["volume_id"] == target["id"]
    _wait(stack, f"{V}/volumes/{target['id']}", "volume", "available")
    _wait(stack, f"{V}/backups/{backup['id']}", "backup", "available")
    with open(_file(stack, target["id"]), "rb") as f:
        f.seek(1 << 20)
        assert f.read(15) == b"backed up bytes"
    assert _file(stack, target["id"]).stat().st_size == 2 * 1024**3
    assert stack.delete(f"{V}/backups/{backup['id']}").status_code == 202
    assert stack.get(f"{V}/backups/{backup['id']}").status_code == 404
    assert not stored.exists()


def test_backup_refusals_and_quotas(stack: Api) -> None:
    vol = _volume(stack, {"size": 2})
    r = stack.post(f"{V}/backups", json={"backup": {"volume_id": "nope"}})
    assert _fault(r, 404, "itemNotFound") == "Volume nope could not be found."
    assert stack.post(f"{V}/backups", json={"backup": {}}).status_code == 400
    r = stack.post(f"{V}/backups/nope/restore", json={"restore": {}})
    assert _fault(r, 404, "itemNotFound") == "Backup nope could not be found."
    assert stack.delete(f"{V}/backups/nope").status_code == 404
    reset = {"os-reset_status": {"status": "in-use"}}
    assert stack.post(f"{V}/volumes/{vol['id']}/action", json=reset, as_="admin").status_code == 202
    r = stack.post(f"{V}/backups", json={"backup": {"volume_id": vol["id"]}})
    assert (
        _fault(r, 400, "badRequest") == "Invalid volume: Backing up an in-use volume must use the force flag."
    )
    reset = {"os-reset_status": {"status": "available"}}
    assert stack.post(f"{V}/volumes/{vol['id']}/action", json=reset, as_="admin").status_code == 202
    pid = stack.ids["demo_project"]
    quota = {"quota_set": {"backup_gigabytes": 1}}
    assert stack.put(f"{V}/os-quota-sets/{pid}", json=quota, as_="admin").status_code == 200
    r = stack.post(f"{V}/backups", json={"backup": {"volume_id": vol["id"]}})
    assert _fault(r, 413, "overLimit") == (
        "Requested backup exceeds allowed Backup gigabytes quota. Requested 2G, quota is 1G and 0G has "
        "been consumed."
    )
    quota = {"quota_set": {"backup_gigabytes": 100, "backups": 0}}
    assert stack.put(f"{V}/os-quota-sets/{pid}", json=quota, as_="admin").status_code == 200
    r = stack.post(f"{V}/backups", json={"backup": {"volume_id": vol["id"]}})
    assert _fault(r, 413, "overLimit") == "Maximum number of backups allowed (0) exceeded"
    assert stack.get(f"{V}/volumes/{vol['id']}").json()["volume"]["status"] == "available"


def test_snapshot_metadata_and_admin_actions(stack: Api) -> None:
    vol = _volume(stack, {"size": 1})
    snap = _snapshot(stack, vol["id"], metadata={"a": "1"})
    base = f"{V}/snapshots/{snap['id']}"
    assert stack.get(f"{base}/metadata").json() == {"metadata": {"a": "1"}}
    assert stack.post(f"{base}/metadata", json={"metadata": {"b": "2"}}).json()["metadata"] == {
        "a": "1",
        "b": "2",
    }
    assert stack.put(f"{base}/metadata", json={"metadata": {"c": "3"}}).json()["metadata"] == {"c": "3"}
    assert stack.put(f"{base}/metadata/c", json={"meta": {"c": "4"}}).json() == {"meta": {"c": "4"}}
    assert stack.get(f"{base}/metadata/c").json() == {"meta": {"c": "4"}}
    assert stack.put(f"{base}/metadata/c", json={"meta": {"d": "4"}}).status_code == 400
    assert stack.delete(f"{base}/metadata/c").status_code == 200
    r = stack.get(f"{base}/metadata/c")
    assert _fault(r, 404, "itemNotFound") == f"Snapshot {snap['id']} has no metadata with key c."
    # admin actions: a member is refused, the admin resets and force-deletes
    reset = {"os-reset_status": {"status": "error"}}
    assert stack.post(f"{base}/action", json=reset).status_code == 403
    assert stack.post(f"{base}/action", json=reset, as_="admin").status_code == 202
    assert stack.get(base).json()["snapshot"]["status"] == "error"
    bad = {"os-reset_status": {"status": "sideways"}}
    assert stack.post(f"{base}/action", json=bad, as_="admin").status_code == 400
    assert stack.post(f"{base}/action", json={"os-nothing": {}}, as_="admin").status_code == 400
    assert stack.post(f"{base}/action", json={"os-force_delete": {}}, as_="admin").status_code == 202
    assert stack.get(base).status_code == 404


def test_backup_update_and_admin_actions(stack: Api) -> None:
    vol = _volume(stack, {"size": 1})
    r = stack.post(f"{V}/backups", json={"backup": {"volume_id": vol["id"], "name": "b"}}, headers=MV)
    backup = _wait(stack, f"{V}/backups/{r.json()['backup']['id']}", "backup", "available")
    base = f"{V}/backups/{backup['id']}"
    below = stack.put(base, json={"backup": {"name": "x"}}, headers={"OpenStack-API-Version": "volume 3.8"})
    assert below.status_code == 404
    r = stack.put(base, json={"backup": {"name": "renamed", "metadata": {"k": "v"}}}, headers=MV)
    assert r.status_code == 200 and r.json()["backup"]["name"] == "renamed"
    shown = stack.get(base, headers=MV).json()["backup"]
    assert shown["name"] == "renamed" and shown["metadata"] == {"k": "v"} and shown["user_id"]
    assert stack.put(base, json={"backup": {"size": 3}}, headers=MV).status_code == 400
    reset = {"os-reset_status": {"status": "error"}}
    assert stack.post(f"{base}/action", json=reset).status_code == 403
    assert stack.post(f"{base}/action", json=reset, as_="admin").status_code == 202
    assert stack.get(base).json()["backup"]["status"] == "error"
    assert stack.post(f"{base}/action", json={"os-force_delete": {}}, as_="admin").status_code == 202
    assert stack.get(base).status_code == 404


def test_start_recovers_interrupted_copies(stack: Api) -> None:
    from novalite.db.models.volume import Volume, VolumeBackup, VolumeSnapshot
    from novalite.volume import service

    vol = _volume(stack, {"size": 1})
    snap = _snapshot(stack, vol["id"])
    r = stack.post(f"{V}/backups", json={"backup": {"volume_id": vol["id"]}}, headers=MV)
    backup = _wait(stack, f"{V}/backups/{r.json()['backup']['id']}", "backup", "available")
    rt = stack.runtime  # type: ignore[attr-defined]
    with rt.db.session() as s:
        s.get(Volume, vol["id"]).status = "backing-up"
        s.get(VolumeSnapshot, snap["id"]).status = "creating"
        s.get(VolumeBackup, backup["id"]).status = "creating"
    with rt.db.session() as s:
        service.seed(rt, s, {})
    assert stack.get(f"{V}/volumes/{vol['id']}").json()["volume"]["status"] == "available"
    assert stack.get(f"{V}/snapshots/{snap['id']}").json()["snapshot"]["status"] == "error"
    assert stack.get(f"{V}/backups/{backup['id']}").json()["backup"]["status"] == "error"
    assert stack.delete(f"{V}/backups/{backup['id']}").status_code == 202
    assert stack.delete(f"{V}/snapshots/{snap['id']}").status_code == 202


def test_volume_from_snapshot_keeps_the_type_and_bootable_flag(stack: Api) -> None:
    r = stack.post(f"{V}/types", json={"volume_type": {"name": "fast"}}, as_="admin", headers=MV)
    assert r.status_code == 200, r.text
    vol = _volume(stack, {"size": 1, "volume_type": "fast"})
    reset = {"os-set_bootable": {"bootable": True}}
    assert stack.post(f"{V}/volumes/{vol['id']}/action", json=reset).status_code == 200
    snap = _snapshot(stack, vol["id"])
    clone = _volume(stack, {"snapshot_id": snap["id"], "size": 2})
    assert clone["volume_type"] == "fast" and clone["bootable"] == "true" and clone["size"] == 2


def test_compute_agent_builds_a_volume_from_a_snapshot(stack: Api) -> None:
    """The compute side's volume step turns a ``snapshot`` block device mapping into a new volume
    holding the snapshot's data, attached to the server (the create pipeline's own BDM check lets
    snapshots through once it asks ``volume.service.get_snapshot``)."""
    from novalite.volume import service

    vol = _volume(stack, {"size": 1})
    with open(_file(stack, vol["id"]), "r+b") as f:
        f.write(b"boot sector")
    snap = _snapshot(stack, vol["id"])
    body = {"server": {"name": "s", "flavorRef": "1", "imageRef": _image_id(stack), "networks": "none"}}
    r = stack.post("/compute/v2.1/servers", json=body, version="2.67")
    assert r.status_code == 202, r.text
    server_id = r.json()["server"]["id"]
    rt = stack.runtime  # type: ignore[attr-defined]
    with rt.db.reader() as s:
        assert service.get_snapshot(s, _demo_ctx(stack), snap["id"]) is not None
    bdm = {
        "source_type": "snapshot",
        "destination_type": "volume",
        "snapshot_id": snap["id"],
        "boot_index": 1,
    }
    with rt.db.session() as s:
        out = service.attach_for_instance(
            s, instance_uuid=server_id, host="h", block_device_mapping=[bdm], runtime=rt
        )
    new = stack.get(f"{V}/volumes/{out[0]['volume_id']}").json()["volume"]
    assert new["snapshot_id"] == snap["id"] and new["status"] == "in-use" and new["size"] == 1
    with open(_file(stack, new["id"]), "rb") as f:
        assert f.read(11) == b"boot sector"


def _image_id(stack: Api) -> str:
    images = stack.get("/image/v2/images").json()["images"]
    return str(next(i for i in images if i["status"] == "active")["id"])


def _demo_ctx(stack: Api) -> Any:
    from novalite.context import RequestContext

    return RequestContext(
        user_id=stack.ids["demo_user"], project_id=stack.ids["demo_project"], roles=("member",)
    )


def test_server_boots_from_a_volume_snapshot(stack: Api) -> None:
    """POST /servers with a ``snapshot`` block device: the server goes ACTIVE on a new volume that
    holds the snapshot's data and is attached to it; a snapshot that does not exist is a 400."""
    vol = _volume(stack, {"size": 1, "bootable": True})
    with open(_file(stack, vol["id"]), "r+b") as f:
        f.write(b"root fs")
    snap = _snapshot(stack, vol["id"])
    bdm = {"source_type": "snapshot", "destination_type": "volume", "uuid": snap["id"], "boot_index": 0}
    body = {
        "server": {
            "name": "from-snap",
            "flavorRef": "1",
            "networks": "none",
            "block_device_mapping_v2": [bdm],
        }
    }
    r = stack.post("/compute/v2.1/servers", json=body, version="2.67")
    assert r.status_code == 202, r.text
    server_id = r.json()["server"]["id"]
    server = stack.wait_for(
        f"/compute/v2.1/servers/{server_id}", lambda r: r.json()["server"]["status"] != "BUILD"
    ).json()["server"]
    assert server["status"] == "ACTIVE", server
    attached = stack.get(f"/compute/v2.1/servers/{server_id}/os-volume_attachments").json()
    (att,) = attached["volumeAttachments"]
    new = stack.get(f"{V}/volumes/{att['volumeId']}").json()["volume"]
    assert new["snapshot_id"] == snap["id"] and new["status"] == "in-use"
    with open(_file(stack, new["id"]), "rb") as f:
        assert f.read(7) == b"root fs"
    bdm["uuid"] = "9b7a4c3e-0000-4000-8000-000000000000"
    r = stack.post("/compute/v2.1/servers", json=body, version="2.67")
    assert r.status_code == 400 and "failed to get snapshot" in r.json()["badRequest"]["message"], r.text
