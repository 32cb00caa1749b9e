"""Image service (Glance v2 subset) through HTTP: create, upload/download, patch, list, visibility."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import pytest

from tests.conftest import Api

PATCH = {"Content-Type": "application/openstack-images-v2.1-json-patch"}
OCTET = {"Content-Type": "application/octet-stream"}
IMAGES = "/image/v2/images"


def create(stack: Api, as_: str = "demo", **attrs: Any) -> dict[str, Any]:
    body = {"disk_format": "raw", "container_format": "bare", **attrs}
    r = stack.post(IMAGES, as_=as_, json=body)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def upload(stack: Api, image_id: str, data: bytes, as_: str = "demo") -> httpx.Response:
    return stack.put(f"{IMAGES}/{image_id}/file", as_=as_, content=data, headers=OCTET)


def patch(stack: Api, image_id: str, ops: Any, as_: str = "demo") -> httpx.Response:
    return stack.patch(f"{IMAGES}/{image_id}", as_=as_, json=ops, headers=PATCH)


def other_project_token(stack: Api) -> str:
    """A member of a third project, to check what one project sees of another's images."""
    pid = stack.post("/identity/v3/projects", as_="admin", json={"project": {"name": "p-other"}}).json()[
        "project"
    ]["id"]
    uid = stack.post(
        "/identity/v3/users",
        as_="admin",
        json={"user": {"name": "u-other", "password": "pw-other", "default_project_id": pid}},
    ).json()["user"]["id"]
    role = stack.get("/identity/v3/roles?name=member", as_="admin").json()["roles"][0]["id"]
    assert stack.put(f"/identity/v3/projects/{pid}/users/{uid}/roles/{role}", as_="admin").status_code == 204
    return stack.token_for("u-other", "pw-other", "p-other")


def test_versions_document_needs_no_token(stack: Api) -> None:
    for path in ("/image", "/image/", "/image/versions"):
        r = stack.client.get(path)
        assert r.status_code == 300
        current = [v for v in r.json()["versions"] if v["status"] == "CURRENT"]
        assert len(current) == 1 and current[0]["id"].startswith("v2.")
        assert current[0]["links"][0] == {"rel": "self", "href": "http://testserver/image/v2/"}
        assert r.headers["x-openstack-request-id"].startswith("req-")


def test_requests_without_token_are_401(stack: Api) -> None:
    r = stack.client.get(IMAGES)
    assert r.status_code == 401
    assert r.json()["code"] == 401


def test_default_image_is_seeded_public_and_active(stack: Api) -> None:
    r = stack.get(f"{IMAGES}?name=novalite-tiny")
    assert r.status_code == 200
    (tiny,) = r.json()["images"]
    assert (tiny["status"], tiny["visibility"], tiny["disk_format"], tiny["container_format"]) == (
        "active",
        "public",
        "raw",
        "bare",
    )
    assert tiny["owner"] == stack.ids["admin_project"]
    assert (tiny["min_ram"], tiny["min_disk"]) == (0, 0)
    data = stack.get(f"{IMAGES}/{tiny['id']}/file").content
    assert len(data) == tiny["size"] > 0
    assert hashlib.md5(data).hexdigest() == tiny["checksum"]
    # a name is not an id: plain 404, so the CLI falls back to ?name=
    assert stack.get(f"{IMAGES}/novalite-tiny").status_code == 404


def test_seed_is_idempotent(stack: Api) -> None:
    from novalite.bootstrap import bootstrap

    bootstrap(stack.runtime)  # type: ignore[attr-defined]
    assert len(stack.get(f"{IMAGES}?name=novalite-tiny").json()["images"]) == 1


def test_create_upload_download_checksums(stack: Api) -> None:
    image = create(stack, name="img1", foo="bar", min_ram=64, tags=["t1"])
    assert image["status"] == "queued"
    assert image["visibility"] == "shared"
    assert image["owner"] == stack.ids["demo_project"]
    assert image["foo"] == "bar" and image["tags"] == ["t1"] and image["size"] is None
    iid = image["id"]
    assert stack.get(f"{IMAGES}/{iid}/file").status_code == 204  # no data yet

    data = b"\x00novalite" * 5000
    r = upload(stack, iid, data)
    assert r.status_code == 204
    shown = stack.get(f"{IMAGES}/{iid}").json()
    assert shown["status"] == "active"
    assert shown["size"] == len(data)
    assert shown["checksum"] == hashlib.md5(data).hexdigest()
    assert shown["os_hash_algo"] == "sha512"
    assert shown["os_hash_value"] == hashlib.sha512(data).hexdigest()

    r = stack.get(f"{IMAGES}/{iid}/file")
    assert r.status_code == 200
    assert r.content == data
    assert r.headers["content-md5"] == shown["checksum"]
    assert r.headers["content-type"] == "application/octet-stream"

    assert upload(stack, iid, b"again").status_code == 409


def test_upload_needs_formats_and_octet_stream(stack: Api) -> None:
    r = stack.post(IMAGES, json={"name": "no-format"})
    iid = r.json()["id"]
    assert upload(stack, iid, b"x").status_code == 400
    assert stack.get(f"{IMAGES}/{iid}").json()["status"] == "queued"
    iid2 = create(stack)["id"]
    r = stack.put(f"{IMAGES}/{iid2}/file", content=b"x", headers={"Content-Type": "text/html"})
    assert r.status_code == 415
    assert upload(stack, "00000000-0000-0000-0000-000000000000", b"x").status_code == 404


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"status": "active"}, 403),
        ({"size": 5}, 403),
        ({"checksum": "x"}, 403),
        ({"deleted": True}, 403),
        ({"os_glance_foo": "x"}, 403),
        ({"disk_format": "floppy"}, 400),
        ({"container_format": 7}, 400),
        ({"name": "n" * 256}, 400),
        ({"min_ram": -1}, 400),
        ({"min_disk": "1"}, 400),
        ({"protected": "yes"}, 400),
        ({"visibility": "everyone"}, 400),
        ({"tags": "t1"}, 400),
        ({"custom": 5}, 400),
        ({"id": "not-a-uuid"}, 400),
        ({"visibility": "public"}, 403),
        ([1, 2], 400),
    ],
)
def test_create_rejects_bad_input(stack: Api, body: Any, status: int) -> None:
    r = stack.post(IMAGES, json=body)
    assert r.status_code == status, r.text
    assert r.json()["code"] == status


def test_create_malformed_json_and_duplicate_id(stack: Api) -> None:
    r = stack.post(IMAGES, content=b"{nope", headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    deep = b"[" * 100000 + b"]" * 100000
    assert stack.post(IMAGES, content=deep, headers={"Content-Type": "application/json"}).status_code == 400
    iid0 = create(stack)["id"]
    assert stack.patch(f"{IMAGES}/{iid0}", content=deep, headers=PATCH).status_code == 400
    iid = "6a1b5c7e-0d7d-4a57-9a53-6f0d1a2b3c4d"
    assert create(stack, id=iid)["id"] == iid
    assert stack.post(IMAGES, json={"id": iid}).status_code == 409


def test_patch_properties_and_core_fields(stack: Api) -> None:
    iid = create(stack, name="before", keep="1", drop="2")["id"]
    r = patch(
        stack,
        iid,
        [
            {"op": "replace", "path": "/name", "value": "after"},
            {"op": "add", "path": "/new", "value": "3"},
            {"op": "replace", "path": "/keep", "value": "11"},
            {"op": "remove", "path": "/drop"},
            {"op": "add", "path": "/min_disk", "value": 2},
            {"op": "replace", "path": "/tags", "value": ["b", "a"]},
            {"op": "add", "path": "/with~1slash", "value": "s"},
        ],
    )
    assert r.status_code == 200, r.text
    shown = stack.get(f"{IMAGES}/{iid}").json()
    assert shown["name"] == "after" and shown["min_disk"] == 2 and shown["tags"] == ["a", "b"]
    assert (shown["keep"], shown["new"], shown["with/slash"]) == ("11", "3", "s")
    assert "drop" not in shown


@pytest.mark.parametrize(
    ("ops", "status"),
    [
        ([{"op": "replace", "path": "/status", "value": "active"}], 403),
        ([{"op": "replace", "path": "/id", "value": "x"}], 403),
        ([{"op": "remove", "path": "/name"}], 403),
        ([{"op": "remove", "path": "/missing"}], 409),
        ([{"op": "replace", "path": "/missing", "value": "x"}], 409),
        ([{"op": "move", "path": "/name", "from": "/x"}], 400),
        ([{"op": "add", "path": "name", "value": "x"}], 400),
        ([{"op": "add", "path": "/a/b", "value": "x"}], 400),
        ([{"op": "add", "path": "/name"}], 400),
        ([{"op": "add", "path": "/prop", "value": 1}], 400),
        ([{"op": "replace", "path": "/visibility", "value": "public"}], 403),
        ({"op": "add"}, 400),
        ([{"op": "add", "value": "x"}], 400),
        ([{"add": "/a", "remove": "/b"}], 400),
        ([{"path": "/a", "value": "x"}], 400),
        (["x"], 400),
    ],
)
def test_patch_rejects_bad_changes(stack: Api, ops: Any, status: int) -> None:
    iid = create(stack, name="p")["id"]
    r = patch(stack, iid, ops)
    assert r.status_code == status, r.text
    assert stack.get(f"{IMAGES}/{iid}").json()["name"] == "p"


def test_patch_in_the_v2_0_dialect(stack: Api) -> None:
    iid = create(stack, name="old", gone="x")["id"]
    r = stack.patch(
        f"{IMAGES}/{iid}",
        json=[{"replace": "/name", "value": "new"}, {"add": "/k", "value": "v"}, {"remove": "/gone"}],
        headers={"Content-Type": "application/openstack-images-v2.0-json-patch"},
    )
    assert r.status_code == 200, r.text
    assert (r.json()["name"], r.json()["k"], "gone" in r.json()) == ("new", "v", False)


def test_patch_needs_the_json_patch_media_type(stack: Api) -> None:
    iid = create(stack)["id"]
    r = stack.patch(f"{IMAGES}/{iid}", json=[{"op": "replace", "path": "/name", "value": "x"}])
    assert r.status_code == 415


def test_visibility_between_projects(stack: Api) -> None:
    other = other_project_token(stack)
    stack.tokens["other"] = other
    private = create(stack, name="mine-private", visibility="private")["id"]
    shared = create(stack, name="mine-shared")["id"]
    community = create(stack, name="mine-community", visibility="community")["id"]

    for iid in (private, shared):
        assert stack.get(f"{IMAGES}/{iid}", as_="other").status_code == 404
        assert patch(stack, iid, [{"op": "add", "path": "/x", "value": "y"}], as_="other").status_code == 404
        assert stack.delete(f"{IMAGES}/{iid}", as_="other").status_code == 404
    assert stack.get(f"{IMAGES}/{community}", as_="other").status_code == 200

    names = {i["name"] for i in stack.get(IMAGES, as_="other").json()["images"]}
    assert names == {"novalite-tiny"}  # others' community images are listed only on request
    names = {i["name"] for i in stack.get(f"{IMAGES}?visibility=community", as_="other").json()["images"]}
    assert names == {"mine-community"}

    mine = {i["name"] for i in stack.get(IMAGES).json()["images"]}
    assert {"mine-private", "mine-shared", "mine-community", "novalite-tiny"} <= mine
    admin = {i["id"] for i in stack.get(IMAGES, as_="admin").json()["images"]}
    assert {private, shared, community} <= admin

    # visible but not yours: 403 to change it
    assert (
        patch(stack, community, [{"op": "add", "path": "/x", "value": "y"}], as_="other").status_code == 403
    )
    tiny = stack.get(f"{IMAGES}?name=novalite-tiny").json()["images"][0]["id"]
    assert stack.delete(f"{IMAGES}/{tiny}").status_code == 403


def test_list_filters(stack: Api) -> None:
    a = create(stack, name="alpha", tags=["red"], flavor="small")["id"]
    b = create(stack, name="beta", tags=["red", "blue"])["id"]
    upload(stack, b, b"data")
    c = create(stack, name="gamma", visibility="private", protected=True)["id"]

    def names(query: str) -> set[str]:
        r = stack.get(f"{IMAGES}?{query}")
        assert r.status_code == 200, r.text
        return {i["name"] for i in r.json()["images"]}

    assert names("name=alpha") == {"alpha"}
    assert names("status=queued") == {"alpha", "gamma"}
    assert names(f"id=in:{a},{c}") == {"alpha", "gamma"}
    assert names("tag=red") == {"alpha", "beta"}
    assert names("tag=red&tag=blue") == {"beta"}
    assert names("flavor=small") == {"alpha"}
    assert names("visibility=private") == {"gamma"}
    assert names("protected=true") == {"gamma"}
    assert names(f"owner={stack.ids['demo_project']}") == {"alpha", "beta", "gamma"}
    assert names("size_min=1&name=in:alpha,beta") == {"beta"}
    assert names("created_at=gte:2000-01-01T00:00:00Z&name=alpha") == {"alpha"}
    for bad in (
        "status=bogus",
        "visibility=everyone",
        "limit=x",
        "limit=-1",
        "sort_key=bogus",
        "sort_dir=up",
        "marker=00000000-0000-0000-0000-000000000000",
        "protected=maybe",
        "created_at=gt:yesterday",
        "sort=name:sideways",
        "sort=name&sort_key=name",
        "size_min=big",
    ):
        r = stack.get(f"{IMAGES}?{bad}")
        assert r.status_code == 400, (bad, r.text)


def test_list_sorting_and_paging(stack: Api) -> None:
    for name in ("c", "a", "d", "b"):
        create(stack, name=name, visibility="private")
    q = "visibility=private"
    r = stack.get(f"{IMAGES}?{q}&sort=name:asc")
    assert [i["name"] for i in r.json()["images"]] == ["a", "b", "c", "d"]
    r = stack.get(f"{IMAGES}?{q}&sort_key=name&sort_dir=desc")
    assert [i["name"] for i in r.json()["images"]] == ["d", "c", "b", "a"]
    r = stack.get(f"{IMAGES}?{q}")  # newest first by default
    assert [i["name"] for i in r.json()["images"]] == ["b", "d", "a", "c"]

    seen: list[str] = []
    url: str | None = f"{IMAGES}?{q}&sort=name:asc&limit=3"
    while url:
        body = stack.get(url).json()
        assert len(body["images"]) <= 3
        seen.extend(i["name"] for i in body["images"])
        url = "/image" + body["next"] if "next" in body else None
    assert seen == ["a", "b", "c", "d"]


def test_delete_and_protected(stack: Api) -> None:
    iid = create(stack, protected=True)["id"]
    upload(stack, iid, b"abc")
    assert stack.delete(f"{IMAGES}/{iid}").status_code == 403
    assert patch(stack, iid, [{"op": "replace", "path": "/protected", "value": False}]).status_code == 200
    assert stack.delete(f"{IMAGES}/{iid}").status_code == 204
    assert stack.get(f"{IMAGES}/{iid}").status_code == 404
    assert stack.get(f"{IMAGES}/{iid}/file").status_code == 404
    assert stack.delete(f"{IMAGES}/{iid}").status_code == 404
    data_dir = stack.runtime.settings.data_dir  # type: ignore[attr-defined]
    assert not (data_dir / "images" / iid).exists()


def test_deactivate_and_reactivate(stack: Api) -> None:
    queued = create(stack)["id"]
    assert stack.post(f"{IMAGES}/{queued}/actions/deactivate").status_code == 403
    iid = create(stack)["id"]
    upload(stack, iid, b"payload")
    assert stack.post(f"{IMAGES}/{iid}/actions/deactivate").status_code == 204
    assert stack.get(f"{IMAGES}/{iid}").json()["status"] == "deactivated"
    assert stack.get(f"{IMAGES}/{iid}/file").status_code == 403
    assert stack.get(f"{IMAGES}/{iid}/file", as_="admin").content == b"payload"
    assert stack.post(f"{IMAGES}/{iid}/actions/reactivate").status_code == 204
    assert stack.get(f"{IMAGES}/{iid}/file").content == b"payload"
    assert stack.post(f"{IMAGES}/{iid}/actions/explode").status_code == 404


def test_tags(stack: Api) -> None:
    iid = create(stack)["id"]
    assert stack.put(f"{IMAGES}/{iid}/tags/blue").status_code == 204
    assert stack.put(f"{IMAGES}/{iid}/tags/blue").status_code == 204
    assert stack.get(f"{IMAGES}/{iid}").json()["tags"] == ["blue"]
    assert stack.delete(f"{IMAGES}/{iid}/tags/blue").status_code == 204
    assert stack.delete(f"{IMAGES}/{iid}/tags/blue").status_code == 404
    assert stack.put(f"{IMAGES}/{iid}/tags/{'x' * 256}").status_code == 400


def test_schemas(stack: Api) -> None:
    r = stack.get("/image/v2/schemas/image")
    assert r.status_code == 200
    assert r.json()["name"] == "image" and "disk_format" in r.json()["properties"]
    assert stack.get("/image/v2/schemas/images").json()["name"] == "images"


def test_odd_input_is_never_a_server_error(stack: Api) -> None:
    """A sweep of malformed queries, bodies, patches and paths: each is answered 2xx/4xx, never 5xx."""
    iid = stack.post(
        "/image/v2/images", json={"name": "f", "disk_format": "raw", "container_format": "bare"}
    ).json()["id"]
    queries = [
        "limit=99999999999999999999",
        "limit=",
        "marker=",
        "sort=",
        "sort=:",
        "sort=name:",
        "sort_key=",
        "sort_dir=",
        "id=in:",
        "created_at=gt:",
        "created_at=zz:1",
        "size_max=-1",
        "tag=",
        "member_status=x",
        "os_hidden=",
        "visibility=",
        "status=in:active,bogus",
        "name=in:",
        "updated_at=lte:2020-13-45",
        "created_at=gt:2020-01-01T00:00:00+05:00",
        "sort=name:asc,name:desc",
        "sort_key=name&sort_key=id&sort_dir=asc&sort_dir=desc&sort_dir=asc",
        "owner=%00",
        "foo=%ff",
    ]
    bad: list[Any] = []
    for q in queries:
        r = stack.get(f"/image/v2/images?{q}")
        if r.status_code >= 500:
            bad.append((q, r.status_code, r.text))
        r = stack.get(f"/compute/v2.1/images/detail?{q}")
        if r.status_code >= 500:
            bad.append(("c " + q, r.status_code, r.text))
    for q in [
        "changes-since=",
        "minRam=x",
        "minDisk=1.5",
        "server=",
        "property-x=y",
        "limit=1e3",
        "marker=%00",
    ]:
        r = stack.get(f"/compute/v2.1/images?{q}")
        if r.status_code >= 500:
            bad.append(("c " + q, r.status_code, r.text))
    bodies = [
        None,
        1,
        "s",
        [],
        {},
        {"name": None},
        {"tags": None},
        {"tags": [None]},
        {"min_ram": 2**40},
        {"owner": 5},
        {"x" * 300: "v"},
        {"": "v"},
        {"id": None},
        {"id": 5},
        {"visibility": None},
        {"protected": None},
        {"os_hidden": 1},
        {"disk_format": None, "container_format": None},
        {"k": "v" * 70000},
        {"tags": ["a"] * 200},
    ]
    for b in bodies:
        r = stack.post("/image/v2/images", json=b)
        if r.status_code >= 500:
            bad.append(("create", b, r.status_code, r.text))
    ops = [
        [{"op": "add", "path": "/", "value": 1}],
        [{"op": "add", "path": 5, "value": 1}],
        [{"op": None, "path": "/a", "value": "b"}],
        [{"op": "add", "path": "/tags", "value": None}],
        [{"op": "replace", "path": "/owner", "value": 7}],
        [{"op": "add", "path": "/~", "value": "x"}],
        [{"op": "remove", "path": "/tags"}],
        [{"op": "add", "path": "/name", "value": {"a": 1}}],
        [{"op": "add", "path": "/id", "value": "x"}],
        [{"op": "add", "path": "/" + "k" * 300, "value": "v"}],
        [{}],
        [[]],
        [None],
    ]
    for o in ops:
        r = stack.patch(
            f"/image/v2/images/{iid}",
            json=o,
            headers={"Content-Type": "application/openstack-images-v2.1-json-patch"},
        )
        if r.status_code >= 500:
            bad.append(("patch", o, r.status_code, r.text))
    for path in [
        f"/image/v2/images/{iid}/tags/" + "%00",
        f"/image/v2/images/{'z' * 5000}",
        f"/image/v2/images/{iid}/actions/",
        "/image/v2/images/%ff/file",
    ]:
        for m in ("GET", "PUT", "DELETE", "POST", "PATCH"):
            r = stack.request(m, path)
            if r.status_code >= 500:
                bad.append((m, path, r.status_code, r.text))
    assert not bad, bad


# --- the compute API's image proxy (microversion <= 2.35) ------------------------------------

COMPUTE = "/compute/v2.1"


def test_proxy_detail_view(stack: Api) -> None:
    iid = create(stack, name="proxied", min_ram=128, min_disk=1, instance_uuid="inst-1", foo="bar")["id"]
    r = stack.get(f"{COMPUTE}/images/{iid}", version="2.1")
    assert r.status_code == 200
    image = r.json()["image"]
    assert set(image) == {
        "id",
        "name",
        "minRam",
        "minDisk",
        "metadata",
        "created",
        "updated",
        "status",
        "progress",
        "links",
        "OS-EXT-IMG-SIZE:size",
        "server",
    }
    assert (image["status"], image["progress"], image["minRam"], image["minDisk"]) == ("SAVING", 25, 128, 1)
    assert image["metadata"] == {"instance_uuid": "inst-1", "foo": "bar"}
    assert image["OS-EXT-IMG-SIZE:size"] is None
    assert image["created"].endswith("Z") and len(image["created"]) == 20
    assert image["server"]["id"] == "inst-1"
    rels = {link["rel"]: link for link in image["links"]}
    assert rels["self"]["href"] == f"http://testserver/compute/v2.1/images/{iid}"
    assert rels["bookmark"]["href"] == f"http://testserver/compute/images/{iid}"
    assert rels["alternate"]["type"] == "application/vnd.openstack.image"

    upload(stack, iid, b"12345")
    image = stack.get(f"{COMPUTE}/images/{iid}").json()["image"]
    assert (image["status"], image["progress"], image["OS-EXT-IMG-SIZE:size"]) == ("ACTIVE", 100, 5)
    stack.post(f"{IMAGES}/{iid}/actions/deactivate")
    assert stack.get(f"{COMPUTE}/images/{iid}").json()["image"]["status"] == "UNKNOWN"
    assert stack.get(f"{COMPUTE}/images/not-there").status_code == 404


def test_proxy_lists_filters_and_paging(stack: Api) -> None:
    ids = [create(stack, name=f"px{n}", visibility="private")["id"] for n in range(3)]
    upload(stack, ids[0], b"x")
    r = stack.get(f"{COMPUTE}/images", version="2.35")
    assert r.status_code == 200
    basic = r.json()["images"]
    assert {"novalite-tiny", "px0", "px1", "px2"} <= {i["name"] for i in basic}
    assert all(set(i) == {"id", "name", "links"} for i in basic)
    assert "images_links" not in r.json()

    def names(query: str) -> list[str]:
        r = stack.get(f"{COMPUTE}/images/detail?{query}")
        assert r.status_code == 200, r.text
        return [i["name"] for i in r.json()["images"]]

    assert names("name=px1") == ["px1"]
    assert set(names("status=ACTIVE")) == {"novalite-tiny", "px0"}
    assert set(names("status=SAVING")) == set() and set(names("status=queued")) == {"px1", "px2"}
    assert names("changes-since=2999-01-01T00:00:00Z") == []
    assert "px2" in names("changes-since=2000-01-01T00:00:00Z")
    assert stack.get(f"{COMPUTE}/images/detail?changes-since=not-a-time").status_code == 400

    r = stack.get(f"{COMPUTE}/images/detail?limit=2")
    body = r.json()
    assert [i["name"] for i in body["images"]] == ["px2", "px1"]
    href = body["images_links"][0]["href"]
    assert body["images_links"][0]["rel"] == "next" and "marker=" in href and "limit=2" in href
    r = stack.get(f"{COMPUTE}/images/detail?limit=2&marker={ids[1]}")
    assert [i["name"] for i in r.json()["images"]] == ["px0", "novalite-tiny"]
    assert stack.get(f"{COMPUTE}/images?marker=00000000-0000-0000-0000-000000000000").status_code == 400
    assert stack.get(f"{COMPUTE}/images?limit=-3").status_code == 400


def test_proxy_is_gone_from_2_36_and_metadata_from_2_39(stack: Api) -> None:
    tiny = stack.get(f"{IMAGES}?name=novalite-tiny").json()["images"][0]["id"]
    for path in ("/images", "/images/detail", f"/images/{tiny}"):
        assert stack.get(f"{COMPUTE}{path}", version="2.35").status_code == 200
        r = stack.get(f"{COMPUTE}{path}", version="2.36")
        assert r.status_code == 404
        assert r.json()["itemNotFound"]["code"] == 404
    for path in (f"/images/{tiny}/metadata", f"/images/{tiny}/metadata/nothing"):
        assert stack.get(f"{COMPUTE}{path}", version="2.38").status_code in (200, 404)
        assert stack.get(f"{COMPUTE}{path}", version="2.39").status_code == 404
    assert stack.get(f"{COMPUTE}/images/{tiny}/metadata", version="2.38").json() == {"metadata": {}}
    iid = create(stack)["id"]
    r = stack.post(f"{COMPUTE}/images/{iid}/metadata", version="2.39", json={"metadata": {"a": "b"}})
    assert r.status_code == 404
    assert stack.delete(f"{COMPUTE}/images/{iid}", version="2.36").status_code == 404
    assert stack.get(f"{IMAGES}/{iid}").json().get("a") is None


@pytest.mark.parametrize("image_id", ["!@$^&*()", "-1", "x" * 40, "00000000-0000-0000-0000-000000000000"])
def test_proxy_unknown_ids_are_404(stack: Api, image_id: str) -> None:
    assert stack.get(f"{COMPUTE}/images/{image_id}").status_code == 404
    assert stack.delete(f"{COMPUTE}/images/{image_id}").status_code == 404


def test_proxy_delete_blank_id_is_404(stack: Api) -> None:
    assert stack.delete(f"{COMPUTE}/images/").status_code == 404


def test_proxy_metadata(stack: Api) -> None:
    iid = create(stack, a="1")["id"]
    url = f"{COMPUTE}/images/{iid}/metadata"
    assert stack.get(url).json() == {"metadata": {"a": "1"}}
    r = stack.post(url, json={"metadata": {"b": "2"}})
    assert r.status_code == 200 and r.json() == {"metadata": {"a": "1", "b": "2"}}
    r = stack.put(url, json={"metadata": {"c": "3"}})
    assert r.status_code == 200 and r.json() == {"metadata": {"c": "3"}}
    assert stack.get(url).json() == {"metadata": {"c": "3"}}
    r = stack.put(f"{url}/d", json={"meta": {"d": "4"}})
    assert r.status_code == 200 and r.json() == {"meta": {"d": "4"}}
    assert stack.get(f"{url}/d").json() == {"meta": {"d": "4"}}
    assert stack.get(f"{IMAGES}/{iid}").json()["d"] == "4"  # the Image service sees the same properties
    assert stack.delete(f"{url}/d").status_code == 204
    assert stack.get(f"{url}/d").status_code == 404
    assert stack.delete(f"{url}/d").status_code == 404


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("PUT", "/k", {"meta": {"other": "v"}}),
        ("PUT", "/k", {"meta": {"k": "v", "j": "w"}}),
        ("PUT", "/k", {"meta": {}}),
        ("PUT", "", {"metadata": {"k": 1}}),
        ("PUT", "", {"metadata": {"k": "v" * 256}}),
        ("POST", "", {"metadata": {"bad/key": "v"}}),
        ("POST", "", {"meta": {"k": "v"}}),
        ("POST", "", [1]),
        ("POST", "", None),
    ],
)
def test_proxy_metadata_bad_input_is_400(stack: Api, method: str, suffix: str, body: Any) -> None:
    iid = create(stack)["id"]
    r = stack.request(method, f"{COMPUTE}/images/{iid}/metadata{suffix}", json=body)
    assert r.status_code == 400, r.text
    assert r.json()["badRequest"]["code"] == 400


def test_proxy_metadata_limit_and_ownership(stack: Api) -> None:
    iid = create(stack)["id"]
    r = stack.put(f"{COMPUTE}/images/{iid}/metadata", json={"metadata": {f"k{n}": "v" for n in range(129)}})
    assert r.status_code == 403
    tiny = stack.get(f"{IMAGES}?name=novalite-tiny").json()["images"][0]["id"]
    assert stack.post(f"{COMPUTE}/images/{tiny}/metadata", json={"metadata": {"x": "y"}}).status_code == 403
    assert stack.delete(f"{COMPUTE}/images/{tiny}").status_code == 403


def test_proxy_delete(stack: Api) -> None:
    iid = create(stack)["id"]
    assert stack.delete(f"{COMPUTE}/images/{iid}").status_code == 204
    assert stack.get(f"{COMPUTE}/images/{iid}").status_code == 404
    assert stack.get(f"{IMAGES}/{iid}").status_code == 404
    assert stack.delete(f"{COMPUTE}/images/{iid}").status_code == 404


# --- the contract other parts use, and PostgreSQL --------------------------------------------


def test_get_image_contract(stack: Api) -> None:
    from novalite.context import RequestContext
    from novalite.image.service import get_image

    iid = create(stack, name="contract", visibility="private", hw_disk_bus="virtio")["id"]
    demo = RequestContext(
        user_id=stack.ids["demo_user"], project_id=stack.ids["demo_project"], roles=("member",)
    )
    stranger = RequestContext(user_id="u", project_id="someone-else", roles=("member",))
    db = stack.runtime.db  # type: ignore[attr-defined]
    with db.reader() as s:
        queued = get_image(s, demo, iid)
        assert queued is not None and queued.status == "queued" and queued.path is None
        assert get_image(s, stranger, iid) is None
        assert get_image(s, demo, "not-an-id") is None
    upload(stack, iid, b"contract-bytes")
    with db.reader() as s:
        info = get_image(s, demo, iid)
        assert info is not None
        assert (info.name, info.status, info.size, info.visibility) == ("contract", "active", 14, "private")
        assert info.properties == {"hw_disk_bus": "virtio"}
        assert info.owner == stack.ids["demo_project"]
        assert info.checksum == hashlib.md5(b"contract-bytes").hexdigest()
        assert info.path is not None
        with open(info.path, "rb") as fh:
            assert fh.read() == b"contract-bytes"


def test_upload_bytes_helper(stack: Api) -> None:
    from novalite.context import RequestContext
    from novalite.errors import Conflict
    from novalite.image.service import upload_bytes

    iid = create(stack, name="snap")["id"]
    demo = RequestContext(
        user_id=stack.ids["demo_user"], project_id=stack.ids["demo_project"], roles=("member",)
    )
    info = upload_bytes(stack.runtime, demo, iid, b"snapshot")  # type: ignore[attr-defined]
    assert (info.status, info.size) == ("active", 8)
    assert stack.get(f"{IMAGES}/{iid}/file").content == b"snapshot"
    with pytest.raises(Conflict):
        upload_bytes(stack.runtime, demo, iid, b"again")  # type: ignore[attr-defined]


@pytest.mark.postgres
def test_images_on_postgresql(stack_factory: Any) -> None:
    stack = stack_factory(postgres=True)
    iid = create(stack, name="pg-image", colour="blue", tags=["x"])["id"]
    assert upload(stack, iid, b"on postgres").status_code == 204
    assert upload(stack, iid, b"twice").status_code == 409
    assert patch(stack, iid, [{"op": "replace", "path": "/colour", "value": "red"}]).status_code == 200
    shown = stack.get(f"{IMAGES}?name=pg-image&tag=x").json()["images"][0]
    assert (shown["status"], shown["colour"], shown["size"]) == ("active", "red", 11)
    assert stack.get(f"{IMAGES}/{iid}/file").content == b"on postgres"
    assert stack.get("/compute/v2.1/images/detail?name=pg-image").json()["images"][0]["status"] == "ACTIVE"
    assert stack.delete(f"{IMAGES}/{iid}").status_code == 204
