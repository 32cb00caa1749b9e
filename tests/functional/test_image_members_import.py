"""Glance v2 image sharing (members), hidden images, tags and the interoperable import, over HTTP."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from tests.conftest import Api

IMAGES = "/image/v2/images"
OCTET = {"Content-Type": "application/octet-stream"}


def create(stack: Api, as_: str = "demo", **attrs: Any) -> dict[str, Any]:
    body = {"disk_format": "raw", "container_format": "bare", **attrs}
    r = stack.post(IMAGES, as_=as_, json=body)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def add_project(stack: Api, name: str) -> str:
    """A project with one member user; its token is ``stack.tokens[name]``; returns its id."""
    project = stack.post("/identity/v3/projects", as_="admin", json={"project": {"name": name}}).json()
    pid = project["project"]["id"]
    uid = stack.post(
        "/identity/v3/users",
        as_="admin",
        json={"user": {"name": f"u-{name}", "password": "pw-x", "default_project_id": pid}},
    ).json()["user"]["id"]
    role = stack.get("/identity/v3/roles?name=member", as_="admin").json()["roles"][0]["id"]
    assert stack.put(f"/identity/v3/projects/{pid}/users/{uid}/roles/{role}", as_="admin").status_code == 204
    stack.tokens[name] = stack.token_for(f"u-{name}", "pw-x", name)
    return str(pid)


def names(stack: Api, as_: str, query: str = "") -> set[str]:
    r = stack.get(f"{IMAGES}{query}", as_=as_)
    assert r.status_code == 200, r.text
    return {img["name"] for img in r.json()["images"]}


@pytest.fixture(params=["sqlite", "postgresql"])
def db_stack(request: pytest.FixtureRequest, stack_factory: Any) -> Api:
    """The stack on SQLite, then on PostgreSQL (skipped loudly without it)."""
    return stack_factory(postgres=request.param == "postgresql")  # type: ignore[no-any-return]


@pytest.fixture
def shared(stack: Api) -> dict[str, Any]:
    return make_shared(stack)


def make_shared(stack: Api) -> dict[str, Any]:
    """demo's shared image with data, and a second project ``other`` (not yet a member)."""
    image = create(stack, name="to-share", visibility="shared")
    r = stack.put(f"{IMAGES}/{image['id']}/file", content=b"shared-bytes", headers=OCTET)
    assert r.status_code == 204, r.text
    return {"image": image, "other": add_project(stack, "other")}


def test_owner_shares_and_the_member_accepts(db_stack: Api) -> None:
    stack = db_stack
    shared = make_shared(stack)
    image_id, other = shared["image"]["id"], shared["other"]
    members = f"{IMAGES}/{image_id}/members"
    assert stack.get(f"{IMAGES}/{image_id}", as_="other").status_code == 404  # not shared yet

    r = stack.post(members, json={"member": other})
    assert r.status_code == 200, r.text
    offer = r.json()
    assert {k: offer[k] for k in ("member_id", "image_id", "status", "schema")} == {
        "member_id": other,
        "image_id": image_id,
        "status": "pending",
        "schema": "/v2/schemas/member",
    }
    assert offer["created_at"].endswith("Z") and offer["updated_at"].endswith("Z")

    # pending: the member can read the image, but lists show it only when asked for that status
    assert stack.get(f"{IMAGES}/{image_id}", as_="other").json()["name"] == "to-share"
    assert "to-share" not in names(stack, "other")
    assert "to-share" not in names(stack, "other", "?visibility=shared")
    assert "to-share" in names(stack, "other", "?member_status=pending")
    assert "to-share" in names(stack, "other", "?visibility=shared&member_status=all")
    assert "to-share" in names(stack, "demo", "?visibility=shared")  # the owner's own

    # only the member answers the offer
    r = stack.put(f"{members}/{other}", json={"status": "accepted"})
    assert r.status_code == 403
    assert r.json()["message"] == f"Not allowed to update members for image {image_id}."
    r = stack.put(f"{members}/{other}", as_="other", json={"status": "maybe"})
    assert r.status_code == 400
    assert "Status must be" in r.json()["message"]
    r = stack.put(f"{members}/{other}", as_="other", json={"status": "accepted"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "accepted"

    assert "to-share" in names(stack, "other")
    assert "to-share" in names(stack, "other", "?visibility=shared")
    assert "to-share" not in names(stack, "other", "?member_status=pending")
    listed = stack.get(members, as_="other").json()
    assert [(m["member_id"], m["status"]) for m in listed["members"]] == [(other, "accepted")]
    assert listed["schema"] == "/v2/schemas/members"
    assert stack.get(f"{members}/{other}", as_="other").json()["status"] == "accepted"

    # the member can download it, not change or delete it, nor share it further
    assert stack.get(f"{IMAGES}/{image_id}/file", as_="other").content == b"shared-bytes"
    assert stack.delete(f"{IMAGES}/{image_id}", as_="other").status_code == 403
    r = stack.post(members, as_="other", json={"member": stack.ids.get("admin_project", "x")})
    assert r.status_code == 403
    assert r.json()["message"] == f"Not allowed to create members for image {image_id}."
    r = stack.delete(f"{members}/{other}", as_="other")
    assert r.status_code == 403

    # rejected: gone from the member's list, still readable by id
    assert stack.put(f"{members}/{other}", as_="other", json={"status": "rejected"}).status_code == 200
    assert "to-share" not in names(stack, "other")
    assert "to-share" in names(stack, "other", "?member_status=rejected")

    # the owner withdraws the offer: the image is gone for the other project
    assert stack.delete(f"{members}/{other}").status_code == 204
    assert stack.get(f"{IMAGES}/{image_id}", as_="other").status_code == 404
    assert stack.get(members).json()["members"] == []
    r = stack.get(f"{members}/{other}")
    assert r.status_code == 404
    assert r.json()["message"] == f"{other} not found in the member list of the image {image_id}."


def test_member_requests_refused_as_glance_refuses_them(stack: Api, shared: dict[str, Any]) -> None:
    image_id, other = shared["image"]["id"], shared["other"]
    members = f"{IMAGES}/{image_id}/members"
    assert stack.post(members, json={"member": other}).status_code == 200
    r = stack.post(members, json={"member": other})
    assert r.status_code == 409
    assert r.json()["message"] == f"Member {other} is duplicated for image {image_id}"
    for body, message in (
        ({}, "Member to be added not specified"),
        ({"member": ""}, "Member can't be empty"),
        ([], 'Expected a member in the form: {"member": "image_id"}'),
    ):
        r = stack.post(members, json=body)
        assert (r.status_code, r.json()["message"]) == (400, message)
    assert stack.put(f"{members}/{other}", as_="other", json={}).json()["message"] == "Status not specified"

    # a member of the owner's project sees every member; a third project sees no image at all
    add_project(stack, "third")
    assert stack.get(members, as_="third").status_code == 404
    assert stack.post(members, json={"member": "someone-else"}).status_code == 200
    assert len(stack.get(members).json()["members"]) == 2
    assert len(stack.get(members, as_="other").json()["members"]) == 1
    r = stack.get(f"{members}/someone-else", as_="other")
    assert r.status_code == 404

    # only shared images have members
    private = create(stack, name="priv", visibility="private")
    r = stack.post(f"{IMAGES}/{private['id']}/members", json={"member": other})
    assert r.status_code == 403
    assert r.json()["message"] == f"Not allowed to create members for image {private['id']}."
    r = stack.get(f"{IMAGES}/{private['id']}/members")
    assert r.status_code == 403
    assert r.json()["message"].endswith("Only shared images have members.")
    assert stack.get(f"{IMAGES}/{private['id']}/members/{other}").status_code == 404

    # a shared image turned private is hidden from its members again
    r = stack.patch(
        f"{IMAGES}/{image_id}",
        json=[{"op": "replace", "path": "/visibility", "value": "private"}],
        headers={"Content-Type": "application/openstack-images-v2.1-json-patch"},
    )
    assert r.status_code == 200, r.text
    assert stack.get(f"{IMAGES}/{image_id}", as_="other").status_code == 404


def test_a_member_boots_a_server_from_a_shared_image(stack: Api, shared: dict[str, Any]) -> None:
    image_id, other = shared["image"]["id"], shared["other"]
    assert stack.post(f"{IMAGES}/{image_id}/members", json={"member": other}).status_code == 200
    r = stack.get(f"/compute/v2.1/images/{image_id}", as_="other")
    assert r.status_code == 200, r.text
    assert r.json()["image"]["name"] == "to-share"


def test_hidden_images_and_tags(stack: Api) -> None:
    hidden = create(stack, name="hidden-one", os_hidden=True)
    assert hidden["os_hidden"] is True
    tagged = create(stack, name="tagged-one")
    assert "hidden-one" not in names(stack, "demo")
    assert "hidden-one" in names(stack, "demo", "?os_hidden=true")
    assert "tagged-one" not in names(stack, "demo", "?os_hidden=true")
    assert stack.get(f"{IMAGES}/{hidden['id']}").json()["name"] == "hidden-one"

    assert stack.put(f"{IMAGES}/{tagged['id']}/tags/gold").status_code == 204
    assert stack.put(f"{IMAGES}/{tagged['id']}/tags/gold").status_code == 204  # idempotent
    assert stack.get(f"{IMAGES}/{tagged['id']}").json()["tags"] == ["gold"]
    assert names(stack, "demo", "?tag=gold") == {"tagged-one"}
    assert stack.delete(f"{IMAGES}/{tagged['id']}/tags/gold").status_code == 204
    assert names(stack, "demo", "?tag=gold") == set()
    assert stack.delete(f"{IMAGES}/{tagged['id']}/tags/gold").status_code == 404


def test_discovery_of_import_methods_and_stores(stack: Api) -> None:
    r = stack.get("/image/v2/info/import")
    assert r.status_code == 200
    assert r.json()["import-methods"]["value"] == ["glance-direct", "copy-image"]
    stores = stack.get("/image/v2/info/stores").json()["stores"]
    assert [(s["id"], s["default"]) for s in stores] == [("local", "true")]
    assert stack.get("/image/v2/info/stores/detail").status_code == 403
    detail = stack.get("/image/v2/info/stores/detail", as_="admin").json()["stores"][0]
    assert detail["type"] == "file"
    r = stack.post(IMAGES, json={"name": "x"})
    assert r.headers["OpenStack-image-import-methods"] == "glance-direct,copy-image"
    assert r.headers["OpenStack-image-store-ids"] == "local"


def test_stage_then_glance_direct_import_makes_it_active(db_stack: Api) -> None:
    stack = db_stack
    data = b"staged-data " * 1000
    image = create(stack, name="imported")
    base = f"{IMAGES}/{image['id']}"
    direct = {"method": {"name": "glance-direct"}}
    r = stack.post(f"{base}/import", json=direct)
    assert r.status_code == 409
    assert r.json()["message"] == "Image needs to be staged before 'glance-direct' method can be used"

    assert stack.put(f"{base}/stage", content=data, headers={"Content-Type": "text/plain"}).status_code == 415
    assert stack.put(f"{base}/stage", content=data, headers=OCTET).status_code == 204
    staged = stack.get(base).json()
    assert (staged["status"], staged["size"], staged["checksum"]) == ("uploading", len(data), None)
    r = stack.put(f"{base}/stage", content=data, headers=OCTET)
    assert r.status_code == 409
    assert r.json()["message"] == "Image status transition from uploading to uploading is not allowed"
    assert stack.put(f"{base}/file", content=data, headers=OCTET).status_code == 409
    assert stack.get(f"{base}/file").status_code == 204  # no data until imported

    add_project(stack, "other")
    assert stack.post(f"{base}/import", as_="other", json=direct).status_code == 404
    for body, message in (
        ({}, "Import request requires a 'method' field."),
        ({"method": {}}, "Import request requires a 'name' field."),
        ({"method": {"name": "web-download"}}, "Unknown import method name 'web-download'."),
        ({**direct, "all_stores": "yes"}, "'all_stores' must be boolean value only"),
    ):
        r = stack.post(f"{base}/import", json=body)
        assert (r.status_code, r.json()["message"]) == (400, message)
    r = stack.post(f"{base}/import", json={**direct, "stores": ["elsewhere"]})
    assert r.status_code == 409

    r = stack.post(f"{base}/import", json=direct)
    assert r.status_code == 202, r.text
    shown = stack.get(base).json()
    assert shown["status"] == "active"
    assert shown["size"] == len(data)
    assert shown["checksum"] == hashlib.md5(data).hexdigest()
    assert (shown["os_hash_algo"], shown["os_hash_value"]) == ("sha512", hashlib.sha512(data).hexdigest())
    got = stack.get(f"{base}/file")
    assert got.content == data and got.headers["Content-MD5"] == shown["checksum"]
    r = stack.post(f"{base}/import", json=direct)
    assert r.status_code == 409
    assert r.json()["message"] == "Image with status active cannot be target for import"


def test_copy_image_with_one_store(stack: Api) -> None:
    image = create(stack, name="copied")
    base = f"{IMAGES}/{image['id']}"
    copy: dict[str, Any] = {"method": {"name": "copy-image"}}
    r = stack.post(f"{base}/import", json={**copy, "all_stores": True}, as_="admin")
    assert r.status_code == 409
    assert r.json()["message"] == "Only images with status active can be targeted for copying"
    assert stack.put(f"{base}/file", content=b"abc", headers=OCTET).status_code == 204
    r = stack.post(f"{base}/import", json={**copy, "all_stores": True})
    assert r.status_code == 403
    assert stack.post(f"{base}/import", json={**copy, "all_stores": True}, as_="admin").status_code == 202
    r = stack.post(f"{base}/import", json={**copy, "stores": ["local"]}, as_="admin")
    assert r.status_code == 400
    assert r.json()["message"] == "Image is already present at store 'local'"
    assert stack.get(base).json()["status"] == "active"


def test_deleting_a_staged_image_removes_its_staged_data(stack: Api) -> None:
    image = create(stack, name="staged-then-deleted")
    base = f"{IMAGES}/{image['id']}"
    assert stack.put(f"{base}/stage", content=b"x" * 100, headers=OCTET).status_code == 204
    staged = stack.runtime.settings.data_dir / "staging" / image["id"]  # type: ignore[attr-defined]
    assert staged.is_file()
    assert stack.delete(base).status_code == 204
    assert not staged.exists()
