"""API behaviour the whole Tempest compute package needed (issue 19): multiattach volume types,
an admin attaching another project's volume, createImage of a server booted from volume,
networks "auto" (Neutron's auto-allocated topology), os-assisted-volume-snapshots, and a volume
of size "0" refused."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import Api
from tests.functional.test_volume_snapshots_backups import MV, V, _volume, _wait

SERVERS = "/compute/v2.1/servers"


def _boot(stack: Api, body: dict[str, Any], as_: str = "demo", version: str = "2.67") -> str:
    r = stack.post(
        SERVERS, json={"server": {"name": "vm", "flavorRef": "1", **body}}, as_=as_, version=version
    )
    assert r.status_code == 202, r.text
    sid = str(r.json()["server"]["id"])
    done = stack.wait_for(f"{SERVERS}/{sid}", lambda r: r.json()["server"]["status"] != "BUILD", as_=as_)
    assert done.json()["server"]["status"] == "ACTIVE", done.text
    return sid


def _image(stack: Api) -> str:
    return str(stack.get("/image/v2/images?name=novalite-tiny").json()["images"][0]["id"])


def _attach(stack: Api, sid: str, volume_id: str, as_: str = "demo") -> Any:
    body = {"volumeAttachment": {"volumeId": volume_id}}
    return stack.post(f"{SERVERS}/{sid}/os-volume_attachments", json=body, as_=as_, version="2.60")


def test_a_multiattach_type_makes_volumes_attachable_to_several_servers(stack: Api) -> None:
    r = stack.post(
        f"{V}/types",
        json={"volume_type": {"name": "multiattach", "extra_specs": {"multiattach": "<is> True"}}},
        as_="admin",
    )
    assert r.status_code == 200, r.text
    shared = _volume(stack, {"size": 1, "volume_type": "multiattach"})
    plain = _volume(stack, {"size": 1})
    assert shared["multiattach"] is True and plain["multiattach"] is False
    first, second = (_boot(stack, {"imageRef": _image(stack), "networks": "none"}) for _ in range(2))
    for sid in (first, second):
        assert _attach(stack, sid, shared["id"]).status_code == 200
    vol = stack.get(f"{V}/volumes/{shared['id']}", headers=MV).json()["volume"]
    assert vol["status"] == "in-use" and {a["server_id"] for a in vol["attachments"]} == {first, second}
    assert _attach(stack, first, plain["id"]).status_code == 200
    refused = _attach(stack, second, plain["id"])
    assert refused.status_code == 400 and "in-use" in refused.json()["badRequest"]["message"]


def test_an_admin_attaches_a_volume_of_its_own_project_to_a_member_server(stack: Api) -> None:
    sid = _boot(stack, {"imageRef": _image(stack), "networks": "none"})
    vol = _volume(stack, {"size": 1}, as_="admin")
    assert _attach(stack, sid, vol["id"], as_="demo").status_code == 404  # not the member's
    assert _attach(stack, sid, vol["id"], as_="admin").status_code == 200
    assert _wait(stack, f"{V}/volumes/{vol['id']}", "volume", "in-use", as_="admin")


def test_create_image_of_a_server_booted_from_volume(stack: Api) -> None:
    bdm = {
        "source_type": "image",
        "destination_type": "volume",
        "uuid": _image(stack),
        "boot_index": 0,
        "volume_size": 1,
    }
    sid = _boot(stack, {"networks": "none", "block_device_mapping_v2": [bdm]})
    (att,) = stack.get(f"{SERVERS}/{sid}/os-volume_attachments").json()["volumeAttachments"]
    r = stack.post(f"{SERVERS}/{sid}/action", json={"createImage": {"name": "bfv-snap"}}, version="2.45")
    assert r.status_code == 202, r.text
    image = stack.get(f"/image/v2/images/{r.json()['image_id']}").json()
    assert image["status"] == "active" and image["size"] == 0
    assert image["bdm_v2"] == "True" and image["root_device_name"] == "/dev/vda"
    (mapping,) = json.loads(image["block_device_mapping"])
    assert mapping["source_type"] == "snapshot" and mapping["boot_index"] == 0
    snap = stack.get(f"{V}/snapshots/{mapping['snapshot_id']}", headers=MV).json()["snapshot"]
    assert snap["volume_id"] == att["volumeId"] and snap["status"] == "available"
    assert mapping["volume_size"] == snap["size"] == 1
    # the server's volume now has a snapshot: deleting it needs cascade, as in Cinder
    assert stack.delete(f"{SERVERS}/{sid}").status_code == 204
    stack.wait_for(f"{SERVERS}/{sid}", lambda r: r.status_code == 404)
    vol_url = f"{V}/volumes/{att['volumeId']}"
    _wait(stack, vol_url, "volume", "available")
    assert stack.delete(vol_url, headers=MV).status_code == 400
    assert stack.delete(f"{vol_url}?cascade=true", headers=MV).status_code == 202


def _new_member(stack: Api, name: str) -> str:
    """A project of its own with a member user in it; returns the project id (token under ``name``)."""
    r = stack.post(
        "/identity/v3/projects", json={"project": {"name": name, "domain_id": "default"}}, as_="admin"
    )
    project = r.json()["project"]["id"]
    user = {"name": name, "password": "pw-" + name, "domain_id": "default", "default_project_id": project}
    user_id = stack.post("/identity/v3/users", json={"user": user}, as_="admin").json()["user"]["id"]
    role = stack.get("/identity/v3/roles?name=member", as_="admin").json()["roles"][0]["id"]
    r = stack.put(f"/identity/v3/projects/{project}/users/{user_id}/roles/{role}", as_="admin")
    assert r.status_code in (200, 204), r.text
    stack.tokens[name] = stack.token_for(name, "pw-" + name, name)
    return str(project)


def test_networks_auto_allocates_a_routed_network_once(stack: Api) -> None:
    project = _new_member(stack, "auto-net")
    assert stack.get(f"/network/v2.0/networks?project_id={project}", as_="auto-net").json()["networks"] == []
    ext = stack.get("/network/v2.0/extensions/auto-allocated-topology", as_="auto-net")
    assert ext.status_code == 200, ext.text
    body = {"name": "a", "flavorRef": "1", "imageRef": _image(stack), "networks": "auto", "min_count": 2}
    r = stack.post(SERVERS, json={"server": body}, as_="auto-net", version="2.37")
    assert r.status_code == 202, r.text
    nets = stack.get(f"/network/v2.0/networks?project_id={project}", as_="auto-net").json()["networks"]
    assert [n["name"] for n in nets] == ["auto_allocated_network"]
    (router,) = stack.get("/network/v2.0/routers", as_="auto-net").json()["routers"]
    public = stack.get("/network/v2.0/networks?name=public", as_="auto-net").json()["networks"][0]
    assert router["external_gateway_info"]["network_id"] == public["id"]
    topo = stack.get(f"/network/v2.0/auto-allocated-topology/{project}", as_="auto-net").json()
    assert topo["auto_allocated_topology"]["id"] == nets[0]["id"]  # the same one, not another
    stack.wait_for(
        f"{SERVERS}/detail",
        lambda r: len(r.json()["servers"]) == 2 and all(s["status"] == "ACTIVE" for s in r.json()["servers"]),
        as_="auto-net",
    )
    servers = stack.get(f"{SERVERS}/detail", as_="auto-net").json()["servers"]
    assert {tuple(s["addresses"]) for s in servers} == {("auto_allocated_network",)}
    r = stack.get(f"/network/v2.0/auto-allocated-topology/{project}", as_="demo")
    assert r.status_code == 403, r.text


def test_assisted_volume_snapshots(stack: Api) -> None:
    sid = _boot(stack, {"imageRef": _image(stack), "networks": "none"})
    vol = _volume(stack, {"size": 1})
    url = "/compute/v2.1/os-assisted-volume-snapshots"
    info = {"snapshot_id": "a", "type": "qcow2", "new_file": "new_file", "id": "snap-1"}
    body = {"snapshot": {"volume_id": vol["id"], "create_info": info}}
    r = stack.post(url, json=body, as_="admin")
    assert r.status_code == 400 and "Block Device Mapping" in r.json()["badRequest"]["message"], r.text
    assert (
        stack.delete(
            f"{url}/snap-1?delete_info=" + json.dumps({"volume_id": vol["id"]}), as_="admin"
        ).status_code
        == 404
    )
    assert _attach(stack, sid, vol["id"]).status_code == 200
    assert stack.post(url, json=body, as_="demo").status_code == 403
    r = stack.post(url, json=body, as_="admin")
    assert r.status_code == 200 and r.json() == {"snapshot": {"id": "snap-1", "volumeId": vol["id"]}}, r.text
    bad = {"snapshot": {"volume_id": vol["id"], "create_info": dict(info, type="raw")}}
    assert stack.post(url, json=bad, as_="admin").status_code == 400
    assert stack.delete(f"{url}/snap-1", as_="admin").status_code == 400  # no delete_info
    r = stack.delete(f"{url}/snap-1?delete_info=" + json.dumps({"volume_id": vol["id"]}), as_="admin")
    assert r.status_code == 204, r.text


def test_a_volume_of_size_zero_is_refused(stack: Api) -> None:
    r = stack.post("/compute/v2.1/os-volumes", json={"volume": {"size": "0"}})
    assert r.status_code == 400 and "greater than 0" in r.json()["badRequest"]["message"], r.text
    r = stack.post(f"{V}/volumes", json={"volume": {"size": "0"}}, headers=MV)
    assert r.status_code == 400, r.text
