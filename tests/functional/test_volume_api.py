"""Embedded Cinder v3 subset through HTTP: discovery, volume lifecycle (blank and from an
image), attachments, types, quotas (413), isolation, and bad input never being a 500."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Api

V = "/volume/v3"
MV = {"OpenStack-API-Version": "volume 3.60"}


def _create(stack: Api, body: dict[str, Any], as_: str = "demo") -> dict[str, Any]:
    r = stack.post(f"{V}/volumes", json={"volume": body}, as_=as_, headers=MV)
    assert r.status_code == 202, r.text
    vol = r.json()["volume"]
    stack.wait_for(f"{V}/volumes/{vol['id']}", lambda r: r.json()["volume"]["status"] != "creating", as_=as_)
    return vol  # type: ignore[no-any-return]


def _status(stack: Api, volume_id: str, as_: str = "demo") -> str:
    return str(stack.get(f"{V}/volumes/{volume_id}", as_=as_).json()["volume"]["status"])


def _fault(r: Any, status: int, name: str) -> str:
    assert r.status_code == status, r.text
    body = r.json()[name]
    assert body["code"] == status
    return str(body["message"])


def test_version_documents_and_catalog(stack: Api) -> None:
    r = stack.client.get("/volume/")
    assert r.status_code == 300
    doc = r.json()["versions"][0]
    assert doc["id"] == "v3.0" and doc["min_version"] == "3.0" and doc["version"].startswith("3.")
    r = stack.client.get("/volume/v3/")
    assert r.status_code == 200 and r.json()["versions"][0]["id"] == "v3.0"
    token = stack.client.post(
        "/identity/v3/auth/tokens",
        json={
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {"name": "demo", "domain": {"name": "Default"}, "password": "demo-secret"}
                    },
                },
                "scope": {"project": {"name": "demo", "domain": {"name": "Default"}}},
            }
        },
    ).json()["token"]
    entry = next(c for c in token["catalog"] if c["type"] == "volumev3")
    assert entry["endpoints"][0]["url"] == "http://testserver/volume/v3"


def test_blank_volume_lifecycle(stack: Api) -> None:
    r = stack.post(
        f"{V}/volumes", json={"volume": {"size": 1, "name": "v1", "metadata": {"a": "b"}}}, headers=MV
    )
    assert r.status_code == 202
    assert r.headers["OpenStack-API-Version"] == "volume 3.60"
    vol = r.json()["volume"]
    assert vol["status"] == "creating" and vol["size"] == 1 and vol["volume_type"] == "__DEFAULT__"
    assert vol["bootable"] == "false" and vol["attachments"] == [] and vol["metadata"] == {"a": "b"}
    stack.wait_for(f"{V}/volumes/{vol['id']}", lambda r: r.json()["volume"]["status"] == "available")
    listed = stack.get(f"{V}/volumes").json()["volumes"]
    assert [v["id"] for v in listed] == [vol["id"]] and set(listed[0]) == {"id", "name", "links"}
    detail = stack.get(f"{V}/volumes/detail", params={"name": "v1"}).json()["volumes"]
    assert detail[0]["status"] == "available"
    assert stack.get(f"{V}/volumes/detail", params={"status": "error"}).json()["volumes"] == []
    r = stack.put(f"{V}/volumes/{vol['id']}", json={"volume": {"name": "v2", "description": "d"}})
    assert r.status_code == 200 and r.json()["volume"]["name"] == "v2"
    r = stack.post(f"{V}/volumes/{vol['id']}/action", json={"os-extend": {"new_size": 2}})
    assert r.status_code == 202
    assert stack.get(f"{V}/volumes/{vol['id']}").json()["volume"]["size"] == 2
    r = stack.post(f"{V}/volumes/{vol['id']}/action", json={"os-extend": {"new_size": 1}})
    _fault(r, 400, "badRequest")
    assert stack.post(f"{V}/volumes/{vol['id']}/metadata", json={"metadata": {"c": "d"}}).json()[
        "metadata"
    ] == {"a": "b", "c": "d"}
    assert stack.delete(f"{V}/volumes/{vol['id']}").status_code == 202
    _fault(stack.get(f"{V}/volumes/{vol['id']}"), 404, "itemNotFound")


def test_volume_from_image_copies_the_image_file(stack: Api) -> None:
    images = stack.get("/image/v2/images").json()["images"]
    image = next(i for i in images if i["status"] == "active")
    vol = _create(stack, {"size": 1, "imageRef": image["id"], "name": "boot"})
    shown = stack.get(f"{V}/volumes/{vol['id']}").json()["volume"]
    assert shown["status"] == "available" and shown["bootable"] == "true"
    assert shown["volume_image_metadata"]["image_id"] == image["id"]
    data_dir = Path(stack.runtime.settings.data_dir)  # type: ignore[attr-defined]
    copy = data_dir / "volumes" / f"volume-{vol['id']}"
    assert copy.exists() and copy.stat().st_size == 1024**3
    original = stack.client.get(
        f"/image/v2/images/{image['id']}/file", headers={"X-Auth-Token": stack.tokens["demo"]}
    ).content
    with copy.open("rb") as handle:
        assert handle.read(len(original)) == original
    assert stack.delete(f"{V}/volumes/{vol['id']}").status_code == 202
    assert not copy.exists()
    r = stack.post(f"{V}/volumes", json={"volume": {"size": 1, "imageRef": "missing"}})
    _fault(r, 400, "badRequest")


def test_attachment_flow_and_state_checks(stack: Api) -> None:
    vol = _create(stack, {"size": 1, "name": "data"})
    att_body = {
        "attachment": {"volume_uuid": vol["id"], "instance_uuid": "8c7e6f1a-0000-4000-8000-000000000001"}
    }
    _fault(stack.post(f"{V}/attachments", json=att_body), 404, "itemNotFound")  # needs 3.27
    headers = {"OpenStack-API-Version": "volume 3.44"}
    r = stack.post(f"{V}/attachments", json=att_body, headers=headers)
    assert r.status_code == 200, r.text
    att = r.json()["attachment"]
    assert att["status"] == "reserved" and _status(stack, vol["id"]) == "reserved"
    _fault(stack.post(f"{V}/attachments", json=att_body, headers=headers), 400, "badRequest")
    _fault(stack.delete(f"{V}/volumes/{vol['id']}"), 400, "badRequest")
    r = stack.put(
        f"{V}/attachments/{att['id']}",
        headers=headers,
        json={"attachment": {"connector": {"host": "compute1", "mountpoint": "/dev/vdb"}}},
    )
    assert r.status_code == 200 and r.json()["attachment"]["connection_info"]["serial"] == vol["id"]
    assert _status(stack, vol["id"]) == "attaching"
    r = stack.post(f"{V}/attachments/{att['id']}/action", json={"os-complete": {}}, headers=headers)
    assert r.status_code == 204
    shown = stack.get(f"{V}/volumes/{vol['id']}").json()["volume"]
    assert shown["status"] == "in-use"
    assert shown["attachments"][0]["server_id"] == att_body["attachment"]["instance_uuid"]
    assert shown["attachments"][0]["host_name"] == "compute1"
    listed = stack.get(f"{V}/attachments", headers=headers).json()["attachments"]
    assert [a["id"] for a in listed] == [att["id"]]
    r = stack.delete(f"{V}/attachments/{att['id']}", headers=headers)
    assert r.status_code == 200 and r.json()["attachments"] == []
    assert _status(stack, vol["id"]) == "available"
    _fault(stack.get(f"{V}/attachments/{att['id']}", headers=headers), 404, "itemNotFound")
    assert stack.delete(f"{V}/volumes/{vol['id']}").status_code == 202


def test_types_and_project_id_in_url(stack: Api) -> None:
    types = stack.get(f"{V}/types").json()["volume_types"]
    assert [t["name"] for t in types] == ["__DEFAULT__"]
    assert stack.get(f"{V}/types/default").json()["volume_type"]["id"] == types[0]["id"]
    _fault(stack.post(f"{V}/types", json={"volume_type": {"name": "fast"}}), 403, "forbidden")
    r = stack.post(f"{V}/types", as_="admin", json={"volume_type": {"name": "fast"}})
    assert r.status_code == 200
    vol = _create(stack, {"size": 1, "volume_type": "fast"})
    assert vol["volume_type"] == "fast"
    _fault(
        stack.post(f"{V}/volumes", json={"volume": {"size": 1, "volume_type": "nope"}}), 404, "itemNotFound"
    )
    pid = stack.ids["demo_project"]
    assert stack.get(f"{V}/{pid}/volumes/{vol['id']}").status_code == 200
    _fault(stack.get(f"{V}/{stack.ids['admin_project']}/volumes"), 400, "badRequest")


def test_quotas_and_limits(stack: Api) -> None:
    pid = stack.ids["demo_project"]
    qs = stack.get(f"{V}/os-quota-sets/{pid}").json()["quota_set"]
    assert (qs["volumes"], qs["gigabytes"], qs["snapshots"]) == (10, 1000, 10)
    _fault(stack.get(f"{V}/os-quota-sets/{stack.ids['admin_project']}"), 403, "forbidden")
    _fault(stack.put(f"{V}/os-quota-sets/{pid}", json={"quota_set": {"volumes": 1}}), 403, "forbidden")
    r = stack.put(f"{V}/os-quota-sets/{pid}", as_="admin", json={"quota_set": {"volumes": 2, "gigabytes": 3}})
    assert r.status_code == 200 and r.json()["quota_set"]["volumes"] == 2
    _fault(
        stack.put(f"{V}/os-quota-sets/{pid}", as_="admin", json={"quota_set": {"volumes": "x"}}),
        400,
        "badRequest",
    )
    _create(stack, {"size": 2})
    message = _fault(stack.post(f"{V}/volumes", json={"volume": {"size": 2}}), 413, "overLimit")
    assert "gigabytes quota" in message
    _create(stack, {"size": 1})
    message = _fault(stack.post(f"{V}/volumes", json={"volume": {"size": 1}}), 413, "overLimit")
    assert message == "Maximum number of volumes allowed (2) exceeded for quota 'volumes'."
    usage = stack.get(f"{V}/os-quota-sets/{pid}", params={"usage": "true"}).json()["quota_set"]
    assert usage["volumes"] == {"limit": 2, "in_use": 2, "reserved": 0, "allocated": 0}
    absolute = stack.get(f"{V}/limits").json()["limits"]["absolute"]
    assert absolute["totalVolumesUsed"] == 2 and absolute["totalGigabytesUsed"] == 3
    assert stack.delete(f"{V}/os-quota-sets/{pid}", as_="admin").status_code == 200
    assert stack.get(f"{V}/os-quota-sets/{pid}").json()["quota_set"]["volumes"] == 10


def test_isolation_between_projects(stack: Api) -> None:
    vol = _create(stack, {"size": 1, "name": "mine"})
    admin_vol = _create(stack, {"size": 1, "name": "admins"}, as_="admin")
    _fault(stack.get(f"{V}/volumes/{admin_vol['id']}"), 404, "itemNotFound")
    _fault(stack.delete(f"{V}/volumes/{admin_vol['id']}"), 404, "itemNotFound")
    _fault(stack.put(f"{V}/volumes/{admin_vol['id']}", json={"volume": {"name": "x"}}), 404, "itemNotFound")
    assert [v["name"] for v in stack.get(f"{V}/volumes").json()["volumes"]] == ["mine"]
    everything = stack.get(f"{V}/volumes", as_="admin", params={"all_tenants": "1"}).json()["volumes"]
    assert {v["name"] for v in everything} == {"mine", "admins"}
    assert stack.get(f"{V}/volumes/{vol['id']}", as_="admin").status_code == 200
    _fault(
        stack.post(f"{V}/volumes/{vol['id']}/action", json={"os-reset_status": {"status": "error"}}),
        403,
        "forbidden",
    )
    r = stack.post(
        f"{V}/volumes/{vol['id']}/action", as_="admin", json={"os-reset_status": {"status": "error"}}
    )
    assert r.status_code == 202 and _status(stack, vol["id"]) == "error"


def test_list_paging_and_sorting(stack: Api) -> None:
    for name in ("a", "b", "c"):
        _create(stack, {"size": 1, "name": name})
    page = stack.get(f"{V}/volumes", params={"sort": "name:asc", "limit": 2}).json()
    assert [v["name"] for v in page["volumes"]] == ["a", "b"]
    href = page["volumes_links"][0]["href"].replace("http://testserver", "")
    assert [v["name"] for v in stack.get(href).json()["volumes"]] == ["c"]
    _fault(stack.get(f"{V}/volumes", params={"sort": "bogus:asc"}), 400, "badRequest")
    _fault(stack.get(f"{V}/volumes", params={"marker": "nope"}), 404, "itemNotFound")
    _fault(stack.get(f"{V}/volumes", params={"limit": "x"}), 400, "badRequest")


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        b'{"volume": 3}',
        b'{"volume": {"size": "x"}}',
        b'{"volume": {"size": 0}}',
        b'{"volume": {"size": -1}}',
        b'{"volume": {"size": 1.5}}',
        b'{"volume": {}}',
        b'{"volume": {"size": true}}',
        b'{"volume": {"size": 1, "name": 7}}',
        b'{"volume": {"size": 1, "name": "' + b"x" * 300 + b'"}}',
        b'{"volume": {"size": 1, "metadata": []}}',
        b'{"volume": {"size": 1, "availability_zone": "mars"}}',
        b'{"volume": {"size": 1, "backup_id": "abc"}}',
        b'{"volume": {"size": 99999999999999999999}}',
    ],
)
def test_bad_create_bodies_are_400(stack: Api, body: bytes) -> None:
    r = stack.post(f"{V}/volumes", content=body, headers={"Content-Type": "application/json"})
    _fault(r, 400, "badRequest")


def test_bad_actions_and_versions(stack: Api) -> None:
    vol = _create(stack, {"size": 1})
    for body in (
        {"os-nope": {}},
        {"os-extend": {}},
        {"os-extend": {"new_size": "x"}},
        {"os-extend": 5},
        [],
        {"os-set_bootable": {"bootable": "maybe"}},
        {"a": 1, "b": 2},
    ):
        r = stack.post(f"{V}/volumes/{vol['id']}/action", json=body)
        assert r.status_code == 400, (body, r.text)
    r = stack.post(f"{V}/volumes/{vol['id']}/action", json={"os-set_bootable": {"bootable": True}})
    assert r.status_code == 200
    assert stack.get(f"{V}/volumes/{vol['id']}").json()["volume"]["bootable"] == "true"
    assert stack.get(f"{V}/volumes", headers={"OpenStack-API-Version": "volume 4.0"}).status_code == 406
    assert stack.get(f"{V}/volumes", headers={"OpenStack-API-Version": "volume x"}).status_code == 400
    r = stack.put(f"{V}/volumes/{vol['id']}", json={"volume": {"size": 5}})
    _fault(r, 400, "badRequest")


# The Python contract the compute side uses (boot from volume, attach/detach).


def test_compute_contract_volume_functions(stack: Api) -> None:
    from novalite.context import RequestContext
    from novalite.errors import BadRequest
    from novalite.volume import attachments, service

    rt = stack.runtime  # type: ignore[attr-defined]
    ctx = RequestContext(
        user_id=stack.ids["demo_user"], project_id=stack.ids["demo_project"], roles=("member",)
    )
    image = next(i for i in stack.get("/image/v2/images").json()["images"] if i["status"] == "active")
    vol = service.create_volume_from_image(rt, ctx, image_id=image["id"], size=1, name="root")
    assert vol.status == "available" and vol.bootable and vol.image_id == image["id"]
    assert vol.location is not None and Path(vol.location).exists()
    with rt.db.session() as s:
        attachment_id = attachments.reserve_volume(s, ctx, vol.id, "11111111-2222-4333-8444-555555555555")
    assert _status(stack, vol.id) == "reserved"
    with rt.db.session() as s:
        info = attachments.attach_volume(s, ctx, attachment_id, host="compute1", mountpoint="/dev/vda")
        assert info["data"]["device_path"] == vol.location
    shown = stack.get(f"{V}/volumes/{vol.id}").json()["volume"]
    assert shown["status"] == "in-use" and shown["attachments"][0]["device"] == "/dev/vda"
    with pytest.raises(BadRequest):
        service.delete_volume(rt, ctx, vol.id)
    with rt.db.session() as s:
        attachments.detach_volume(s, ctx, attachment_id)
        attachments.detach_volume(s, ctx, attachment_id)  # twice is fine
        got = service.get_volume(s, ctx, vol.id)
        assert got is not None and got.status == "available" and got.attachment_ids == ()
    service.delete_volume(rt, ctx, vol.id)
    assert not Path(vol.location).exists()
    with rt.db.session() as s:
        assert service.get_volume(s, ctx, vol.id) is None


def test_volume_lifecycle_on_postgresql(stack_factory: Any) -> None:
    api = stack_factory(postgres=True)
    vol = _create(api, {"size": 1, "name": "pg"})
    assert _status(api, vol["id"]) == "available"
    headers = {"OpenStack-API-Version": "volume 3.44"}
    att = api.post(
        f"{V}/attachments",
        headers=headers,
        json={
            "attachment": {
                "volume_uuid": vol["id"],
                "instance_uuid": "11111111-2222-4333-8444-555555555555",
                "connector": {"host": "h1"},
            }
        },
    ).json()["attachment"]
    assert att["status"] == "attaching"
    assert (
        api.post(f"{V}/attachments/{att['id']}/action", headers=headers, json={"os-complete": {}}).status_code
        == 204
    )
    assert _status(api, vol["id"]) == "in-use"
    assert api.delete(f"{V}/attachments/{att['id']}", headers=headers).status_code == 200
    assert api.delete(f"{V}/volumes/{vol['id']}").status_code == 202
    assert api.get(f"{V}/volumes").json()["volumes"] == []


def test_boot_from_volume_attaches_volumes_to_the_server(stack: Api) -> None:
    from novalite.volume import service

    image = next(i for i in stack.get("/image/v2/images").json()["images"] if i["status"] == "active")
    data = _create(stack, {"size": 1, "name": "data"})
    body = {
        "server": {
            "name": "bfv",
            "flavorRef": "1",
            "imageRef": "",
            "networks": "none",
            "block_device_mapping_v2": [
                {
                    "boot_index": 0,
                    "uuid": image["id"],
                    "source_type": "image",
                    "destination_type": "volume",
                    "volume_size": 1,
                    "delete_on_termination": True,
                },
                {"boot_index": 1, "uuid": data["id"], "source_type": "volume", "destination_type": "volume"},
            ],
        }
    }
    r = stack.post("/compute/v2.1/servers", json=body, version="2.67")
    assert r.status_code == 202, r.text
    server_id = r.json()["server"]["id"]
    stack.wait_for(
        f"/compute/v2.1/servers/{server_id}",
        lambda r: r.json()["server"]["status"] in ("ACTIVE", "ERROR"),
        version="2.67",
    )
    vols = {v["id"]: v for v in stack.get(f"{V}/volumes/detail").json()["volumes"]}
    assert len(vols) == 2
    root = next(v for v in vols.values() if v["id"] != data["id"])
    assert root["bootable"] == "true" and root["volume_image_metadata"]["image_id"] == image["id"]
    data_dir = Path(stack.runtime.settings.data_dir)  # type: ignore[attr-defined]
    root_file = data_dir / "volumes" / f"volume-{root['id']}"
    original = stack.client.get(
        f"/image/v2/images/{image['id']}/file", headers={"X-Auth-Token": stack.tokens["demo"]}
    ).content
    with root_file.open("rb") as handle:  # the compute agent's volume holds the image's data
        assert handle.read(len(original)) == original
    for vol in vols.values():
        assert vol["status"] == "in-use"
        assert [a["server_id"] for a in vol["attachments"]] == [server_id]
    assert {v["attachments"][0]["device"] for v in vols.values()} == {"/dev/vda", "/dev/vdb"}
    _fault(stack.delete(f"{V}/volumes/{data['id']}"), 400, "badRequest")
    rt = stack.runtime  # type: ignore[attr-defined]
    with rt.db.session() as s:
        assert service.detach_for_instance(s, instance_uuid=server_id, runtime=rt) == [root["id"]]
        assert service.detach_for_instance(s, instance_uuid=server_id, runtime=rt) == []
    remaining = stack.get(f"{V}/volumes/detail").json()["volumes"]
    assert [(v["id"], v["status"]) for v in remaining] == [(data["id"], "available")]
    assert not root_file.exists()


def test_create_and_update_answer_the_base_view_and_metadata_items(stack: Api) -> None:
    r = stack.post(f"{V}/volumes", json={"volume": {"size": 1, "metadata": {"k": "v"}}})
    vol = r.json()["volume"]
    assert "os-vol-tenant-attr:tenant_id" not in vol
    stack.wait_for(f"{V}/volumes/{vol['id']}", lambda r: r.json()["volume"]["status"] == "available")
    shown = stack.get(f"{V}/volumes/{vol['id']}").json()["volume"]
    assert shown["os-vol-tenant-attr:tenant_id"] == stack.ids["demo_project"]
    updated = stack.put(f"{V}/volumes/{vol['id']}", json={"volume": {"name": "n"}}).json()["volume"]
    assert "os-vol-tenant-attr:tenant_id" not in updated and updated["name"] == "n"
    assert stack.get(f"{V}/volumes/{vol['id']}/metadata/k").json() == {"meta": {"k": "v"}}
    r = stack.put(f"{V}/volumes/{vol['id']}/metadata/k", json={"meta": {"k": "w"}})
    assert r.status_code == 200 and r.json() == {"meta": {"k": "w"}}
    _fault(stack.put(f"{V}/volumes/{vol['id']}/metadata/k", json={"meta": {"other": "w"}}), 400, "badRequest")
    assert stack.delete(f"{V}/volumes/{vol['id']}/metadata/k").status_code == 200
    _fault(stack.get(f"{V}/volumes/{vol['id']}/metadata/k"), 404, "itemNotFound")


def test_legacy_attach_actions(stack: Api) -> None:
    vol = _create(stack, {"size": 1})
    act = f"{V}/volumes/{vol['id']}/action"
    assert stack.post(act, json={"os-reserve": {}}).status_code == 202
    assert _status(stack, vol["id"]) == "attaching"
    _fault(stack.post(act, json={"os-reserve": {}}), 400, "badRequest")
    assert stack.post(act, json={"os-unreserve": {}}).status_code == 202
    assert _status(stack, vol["id"]) == "available"
    server = "11111111-2222-4333-8444-555555555555"
    r = stack.post(act, json={"os-attach": {"instance_uuid": server, "mountpoint": "/dev/vdc"}})
    assert r.status_code == 202
    shown = stack.get(f"{V}/volumes/{vol['id']}").json()["volume"]
    assert shown["status"] == "in-use" and shown["attachments"][0]["server_id"] == server
    r = stack.post(act, json={"os-initialize_connection": {"connector": {"host": "h"}}})
    assert r.status_code == 200 and r.json()["connection_info"]["data"]["volume_id"] == vol["id"]
    assert stack.post(act, json={"os-begin_detaching": {}}).status_code == 202
    assert stack.post(act, json={"os-roll_detaching": {}}).status_code == 202
    assert _status(stack, vol["id"]) == "in-use"
    assert stack.post(act, json={"os-detach": {}}).status_code == 202
    assert _status(stack, vol["id"]) == "available"
    missing = f"{V}/volumes/00000000-0000-4000-8000-000000000000/action"
    for action in ("os-reserve", "os-unreserve", "os-attach", "os-detach"):
        _fault(stack.post(missing, json={action: {}}), 404, "itemNotFound")
    _fault(stack.post(act, json={"os-force_delete": {}}), 403, "forbidden")
    assert stack.post(act, as_="admin", json={"os-force_delete": {}}).status_code == 202
    _fault(stack.get(f"{V}/volumes/{vol['id']}"), 404, "itemNotFound")


def test_clone_snapshots_and_empty_ids(stack: Api) -> None:
    source = _create(stack, {"size": 1, "name": "src"})
    clone = _create(stack, {"source_volid": source["id"], "name": "copy"})
    shown = stack.get(f"{V}/volumes/{clone['id']}").json()["volume"]
    assert shown["size"] == 1 and shown["source_volid"] == source["id"] and shown["status"] == "available"
    _fault(
        stack.post(f"{V}/volumes", json={"volume": {"size": 1, "source_volid": "missing"}}),
        404,
        "itemNotFound",
    )
    _fault(
        stack.post(f"{V}/volumes", json={"volume": {"size": 1, "snapshot_id": "missing"}}),
        404,
        "itemNotFound",
    )
    r = stack.post(
        f"{V}/volumes", json={"volume": {"size": 1, "source_volid": source["id"], "name": "small"}}
    )
    assert r.status_code == 202  # same size is fine
    for method in ("GET", "PUT", "DELETE"):
        _fault(stack.request(method, f"{V}/volumes/", json={"volume": {"name": "x"}}), 404, "itemNotFound")
    page = stack.get(f"{V}/volumes", params={"limit": 3}).json()
    assert len(page["volumes"]) == 3 and page["volumes_links"][0]["rel"] == "next"


def test_volume_types_extra_specs_and_private_access(stack: Api) -> None:
    r = stack.post(
        f"{V}/types",
        as_="admin",
        json={
            "volume_type": {
                "name": "gold",
                "extra_specs": {"tier": "1"},
                "os-volume-type-access:is_public": False,
            }
        },
    )
    assert r.status_code == 200 and "qos_specs_id" not in r.json()["volume_type"]
    gold = r.json()["volume_type"]
    _fault(
        stack.post(f"{V}/types", as_="admin", json={"volume_type": {"name": "gold"}}),
        409,
        "conflictingRequest",
    )
    assert "gold" not in [t["name"] for t in stack.get(f"{V}/types").json()["volume_types"]]
    _fault(
        stack.post(f"{V}/volumes", json={"volume": {"size": 1, "volume_type": "gold"}}), 404, "itemNotFound"
    )
    demo = stack.ids["demo_project"]
    act = f"{V}/types/{gold['id']}/action"
    assert stack.post(act, as_="admin", json={"addProjectAccess": {"project": demo}}).status_code == 202
    _fault(
        stack.post(act, as_="admin", json={"addProjectAccess": {"project": demo}}), 409, "conflictingRequest"
    )
    access = stack.get(f"{V}/types/{gold['id']}/os-volume-type-access", as_="admin").json()[
        "volume_type_access"
    ]
    assert access == [{"volume_type_id": gold["id"], "project_id": demo}]
    assert _create(stack, {"size": 1, "volume_type": "gold"})["volume_type"] == "gold"
    specs = f"{V}/types/{gold['id']}/extra_specs"
    assert stack.post(specs, as_="admin", json={"extra_specs": {"speed": "fast"}}).status_code == 200
    assert stack.get(specs, as_="admin").json()["extra_specs"] == {"tier": "1", "speed": "fast"}
    assert stack.put(f"{specs}/speed", as_="admin", json={"speed": "slow"}).json() == {"speed": "slow"}
    assert stack.delete(f"{specs}/tier", as_="admin").status_code == 202
    _fault(stack.get(f"{specs}/tier", as_="admin"), 404, "itemNotFound")
    _fault(stack.post(specs, json={"extra_specs": {"a": "b"}}), 403, "forbidden")
    r = stack.put(f"{V}/types/{gold['id']}", as_="admin", json={"volume_type": {"description": "best"}})
    assert r.status_code == 200 and r.json()["volume_type"]["description"] == "best"
    _fault(stack.delete(f"{V}/types/{gold['id']}", as_="admin"), 400, "badRequest")  # in use


def test_readonly_flag_shows_in_metadata(stack: Api) -> None:
    vol = _create(stack, {"size": 1})
    for flag in (True, False):
        r = stack.post(
            f"{V}/volumes/{vol['id']}/action", json={"os-update_readonly_flag": {"readonly": flag}}
        )
        assert r.status_code == 202
        assert stack.get(f"{V}/volumes/{vol['id']}").json()["volume"]["metadata"]["readonly"] == str(flag)


def test_retype(stack: Api) -> None:
    assert stack.post(f"{V}/types", as_="admin", json={"volume_type": {"name": "silver"}}).status_code == 200
    vol = _create(stack, {"size": 1})
    r = stack.post(f"{V}/volumes/{vol['id']}/action", json={"os-retype": {"new_type": "silver"}})
    assert r.status_code == 202
    assert stack.get(f"{V}/volumes/{vol['id']}").json()["volume"]["volume_type"] == "silver"
    r = stack.post(f"{V}/volumes/{vol['id']}/action", json={"os-retype": {"new_type": "nope"}})
    _fault(r, 404, "itemNotFound")


def test_volume_services_are_admin_only(stack: Api) -> None:
    _fault(stack.get(f"{V}/os-services"), 403, "forbidden")
    services = stack.get(f"{V}/os-services", as_="admin").json()["services"]
    assert {s["binary"] for s in services} == {"cinder-scheduler", "cinder-volume"}
    assert all(s["state"] == "up" and s["status"] == "enabled" for s in services)
    only = stack.get(f"{V}/os-services", as_="admin", params={"binary": "cinder-volume"}).json()["services"]
    assert [s["binary"] for s in only] == ["cinder-volume"]


def test_sorting_by_name_with_unnamed_volumes(stack: Api) -> None:
    _create(stack, {"size": 1})
    _create(stack, {"size": 1, "name": "b"})
    for sort in ("name:asc", "name:desc", "size:asc"):
        r = stack.get(f"{V}/volumes/detail", params={"sort": sort})
        assert r.status_code == 200 and len(r.json()["volumes"]) == 2
    names = [v["name"] for v in stack.get(f"{V}/volumes", params={"sort": "name:asc"}).json()["volumes"]]
    assert names == [None, "b"]


def test_deleting_the_server_detaches_and_deletes_its_volumes(stack: Api) -> None:
    image = next(i for i in stack.get("/image/v2/images").json()["images"] if i["status"] == "active")
    data = _create(stack, {"size": 1, "name": "keep"})
    body = {
        "server": {
            "name": "bfv",
            "flavorRef": "1",
            "imageRef": "",
            "networks": "none",
            "block_device_mapping_v2": [
                {
                    "boot_index": 0,
                    "uuid": image["id"],
                    "source_type": "image",
                    "destination_type": "volume",
                    "volume_size": 1,
                    "delete_on_termination": True,
                },
                {
                    "boot_index": 1,
                    "uuid": data["id"],
                    "source_type": "volume",
                    "destination_type": "volume",
                    "delete_on_termination": False,
                },
            ],
        }
    }
    server_id = stack.post("/compute/v2.1/servers", json=body, version="2.67").json()["server"]["id"]
    stack.wait_for(
        f"/compute/v2.1/servers/{server_id}",
        lambda r: r.json()["server"]["status"] in ("ACTIVE", "ERROR"),
        version="2.67",
    )
    assert len(stack.get(f"{V}/volumes").json()["volumes"]) == 2
    assert stack.delete(f"/compute/v2.1/servers/{server_id}").status_code == 204
    stack.wait_for(f"/compute/v2.1/servers/{server_id}", lambda r: r.status_code == 404)
    remaining = stack.get(f"{V}/volumes/detail").json()["volumes"]
    assert [(v["id"], v["status"], v["attachments"]) for v in remaining] == [(data["id"], "available", [])]


def test_over_long_values_are_4xx_on_postgresql(stack_factory: Any) -> None:
    api = stack_factory(postgres=True)
    long = "x" * 300
    vol = _create(api, {"size": 1})
    headers = {"OpenStack-API-Version": "volume 3.44"}
    checks = [
        api.put(f"{V}/os-quota-sets/{long}", as_="admin", json={"quota_set": {"volumes": 3}}),
        api.post(
            f"{V}/attachments",
            headers=headers,
            json={"attachment": {"volume_uuid": vol["id"], "instance_uuid": long}},
        ),
        api.post(f"{V}/volumes/{vol['id']}/action", json={"os-attach": {"instance_uuid": long}}),
        api.get(f"{V}/volumes/{long}"),
        api.get(f"{V}/attachments/{long}", headers=headers),
        api.post(f"{V}/volumes", json={"volume": {"size": 1, "name": long}}),
        api.post(f"{V}/volumes", json={"volume": {"size": 1, "volume_type": long}}),
        api.put(f"/network/v2.0/quotas/{long}", as_="admin", json={"quota": {"network": 3}}),
        api.post("/network/v2.0/networks", as_="admin", json={"network": {"name": "n", "project_id": long}}),
        api.get(f"/network/v2.0/networks/{long}"),
        api.put(f"/network/v2.0/networks/{long}/tags/{long}"),
        api.get(f"/network/v2.0/security-groups/{long}"),
        api.get(f"/network/v2.0/ports/{long}"),
    ]
    for r in checks:
        assert 400 <= r.status_code < 500, (r.request.method, r.request.url, r.status_code, r.text[:200])
    r = api.post(f"{V}/volumes/{vol['id']}/action", json={"os-attach": {"instance_uuid": "i" * 36}})
    assert r.status_code == 202
    r = api.post(
        f"{V}/attachments",
        headers=headers,
        json={
            "attachment": {
                "volume_uuid": _create(api, {"size": 1})["id"],
                "connector": {"host": long, "mountpoint": long},
            }
        },
    )
    assert r.status_code == 200


def test_restart_turns_stuck_creating_volumes_into_errors(stack: Api) -> None:
    from novalite.bootstrap import bootstrap
    from novalite.db.models.volume import Volume

    vol = _create(stack, {"size": 1})
    rt = stack.runtime  # type: ignore[attr-defined]
    with rt.db.session() as s:
        row = s.get(Volume, vol["id"])
        assert row is not None
        row.status = "creating"  # as if the process died while provisioning
    bootstrap(rt)
    assert _status(stack, vol["id"]) == "error"
    assert stack.delete(f"{V}/volumes/{vol['id']}").status_code == 202
