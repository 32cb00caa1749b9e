"""The compute API's Block Storage proxies below 2.36 (issue 19): ``os-volumes`` and
``os-snapshots`` create, list, show and delete through the embedded volume service, in Nova's
camelCase views; gone (404) from 2.36 on."""

from __future__ import annotations

import pytest

from tests.conftest import Api

V21 = "/compute/v2.1"
VOLUMES = V21 + "/os-volumes"
SNAPSHOTS = V21 + "/os-snapshots"
VOLUME_KEYS = {
    "id",
    "status",
    "size",
    "availabilityZone",
    "createdAt",
    "attachments",
    "displayName",
    "displayDescription",
    "volumeType",
    "snapshotId",
    "metadata",
}
SNAPSHOT_KEYS = {"id", "volumeId", "status", "size", "createdAt", "displayName", "displayDescription"}


def available(api: Api, path: str, key: str) -> dict[str, object]:
    r = api.wait_for(path, lambda r: r.json()[key]["status"] != "creating", version="2.1")
    body: dict[str, object] = r.json()[key]
    assert body["status"] == "available", body
    return body


def test_volumes_and_snapshots_through_the_compute_api(stack: Api) -> None:
    body = {"volume": {"size": 1, "display_name": "v1", "display_description": "d", "metadata": {"k": "v"}}}
    r = stack.post(VOLUMES, version="2.1", json=body)
    assert r.status_code == 200, r.text
    vol = r.json()["volume"]
    assert set(vol) == VOLUME_KEYS
    assert (vol["displayName"], vol["size"], vol["metadata"], vol["attachments"]) == (
        "v1",
        1,
        {"k": "v"},
        [{}],
    )
    assert vol["volumeType"] == "__DEFAULT__" and vol["availabilityZone"] == "nova"
    vid = vol["id"]
    assert available(stack, f"{VOLUMES}/{vid}", "volume")["id"] == vid
    # the volume service shows the same volume
    assert stack.get(f"/volume/v3/volumes/{vid}").json()["volume"]["name"] == "v1"
    listed = stack.get(VOLUMES, version="2.35").json()["volumes"]
    assert [v["id"] for v in listed] == [vid]
    assert stack.get(f"{VOLUMES}/detail", version="2.35").json()["volumes"][0]["id"] == vid
    assert stack.get(VOLUMES + "?limit=1&offset=1", version="2.1").json()["volumes"] == []
    assert stack.get(VOLUMES + "?limit=x", version="2.1").status_code == 400

    r = stack.post(SNAPSHOTS, version="2.1", json={"snapshot": {"volume_id": vid, "display_name": "s1"}})
    assert r.status_code == 200, r.text
    snap = r.json()["snapshot"]
    assert set(snap) == SNAPSHOT_KEYS and snap["volumeId"] == vid and snap["displayName"] == "s1"
    available(stack, f"{SNAPSHOTS}/{snap['id']}", "snapshot")
    assert [s["id"] for s in stack.get(f"{SNAPSHOTS}/detail", version="2.1").json()["snapshots"]] == [
        snap["id"]
    ]
    # a volume with a snapshot cannot go; the snapshot can, then the volume
    assert stack.delete(f"{VOLUMES}/{vid}", version="2.1").status_code == 400
    assert stack.delete(f"{SNAPSHOTS}/{snap['id']}", version="2.1").status_code == 202
    assert stack.get(f"{SNAPSHOTS}/{snap['id']}", version="2.1").status_code == 404
    assert stack.delete(f"{VOLUMES}/{vid}", version="2.1").status_code == 202
    r = stack.get(f"{VOLUMES}/{vid}", version="2.1")
    assert r.status_code == 404 and r.json()["itemNotFound"]["message"] == f"Volume {vid} could not be found."


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (VOLUMES, {"volume": {}}),
        (VOLUMES, {"volume": {"size": 0}}),
        (VOLUMES, {"volume": {"size": 1, "name": "cinder-style"}}),
        (SNAPSHOTS, {"snapshot": {}}),
        (SNAPSHOTS, {"snapshot": {"volume_id": "x", "force": "maybe"}}),
    ],
)
def test_bad_bodies_are_400(stack: Api, path: str, body: object) -> None:
    assert stack.post(path, version="2.1", json=body).status_code == 400


def test_missing_and_gone_from_2_36(stack: Api) -> None:
    missing = "0b5d4f5e-0000-4000-8000-000000000000"
    assert stack.get(f"{VOLUMES}/{missing}", version="2.1").status_code == 404
    r = stack.post(SNAPSHOTS, version="2.1", json={"snapshot": {"volume_id": missing}})
    assert r.status_code == 404
    for path in (VOLUMES, f"{VOLUMES}/detail", SNAPSHOTS, f"{SNAPSHOTS}/detail"):
        assert stack.get(path, version="2.36").status_code == 404
        assert stack.get(path, version="2.35").status_code == 200
    assert stack.post(VOLUMES, version="2.36", json={"volume": {"size": 1}}).status_code == 404
