"""Compute microversions 2.97-2.104: for each, what a client sees just below and at the version.

2.98 image properties in server views, 2.100 scheduler hints, 2.101 volume attach answers 202,
2.102 flavor name filter / rxtx_factor and disabled gone / no query parameters on many GETs,
2.104 pinned availability zone update; the version documents say 2.104.
"""

from __future__ import annotations

from typing import Any

from tests.conftest import Api

COMPUTE = "/compute/v2.1"
SERVERS = f"{COMPUTE}/servers"
FLAVORS = f"{COMPUTE}/flavors"
PATCH = {"Content-Type": "application/openstack-images-v2.1-json-patch"}


def _image_id(stack: Api) -> str:
    return str(stack.get("/image/v2/images?name=novalite-tiny").json()["images"][0]["id"])


def _boot(stack: Api, name: str = "vm", **fields: Any) -> str:
    server = {"name": name, "imageRef": _image_id(stack), "flavorRef": "1", "networks": "none", **fields}
    body: dict[str, Any] = {"server": server}
    hints = server.pop("hints", None)
    if hints is not None:
        body["os:scheduler_hints"] = hints
    r = stack.post(SERVERS, version="2.37", json=body)
    assert r.status_code == 202, r.text
    sid = str(r.json()["server"]["id"])
    stack.wait_for(f"{SERVERS}/{sid}", lambda r: r.json()["server"]["status"] in ("ACTIVE", "ERROR"))
    assert stack.get(f"{SERVERS}/{sid}").json()["server"]["status"] == "ACTIVE"
    return sid


def _show(stack: Api, sid: str, version: str) -> dict[str, Any]:
    r = stack.get(f"{SERVERS}/{sid}", version=version)
    assert r.status_code == 200, r.text
    return r.json()["server"]  # type: ignore[no-any-return]


def _fault(r: Any, status: int) -> str:
    assert r.status_code == status, r.text
    (body,) = r.json().values()
    return str(body["message"])


# -- version documents -----------------------------------------------------------------------------


def test_version_documents_and_negotiation_reach_2_104(stack: Api) -> None:
    assert stack.get(f"{COMPUTE}/").json()["version"]["version"] == "2.104"
    versions = {v["id"]: v for v in stack.get("/compute/").json()["versions"]}
    assert versions["v2.1"]["version"] == "2.104"
    r = stack.get(FLAVORS, version="latest")
    assert r.headers["OpenStack-API-Version"] == "compute 2.104"
    assert stack.get(FLAVORS, version="2.104").status_code == 200
    assert stack.get(FLAVORS, version="2.105").status_code == 406


# -- 2.97 server shares -----------------------------------------------------------------------------


def test_2_97_server_shares(stack: Api) -> None:
    sid = _boot(stack)
    url = f"{SERVERS}/{sid}/shares"
    share = "5b9a2c3e-7d4f-4a51-9c38-2f1e6d0b8a47"
    assert stack.get(url, version="2.96").status_code == 404
    r = stack.get(url, version="2.97")
    assert r.status_code == 200, r.text
    assert r.json() == {"shares": []}
    assert stack.get(f"{url}?foo=1", version="2.97").status_code == 400
    assert _fault(stack.get(f"{url}/{share}", version="2.97"), 404) == f"Share {share} could not be found."
    body = {"share": {"share_id": share, "tag": "data"}}
    assert "share_id" in _fault(stack.post(url, version="2.97", json={"share": {"share_id": "x"}}), 400)
    assert "vm_state active" in _fault(stack.post(url, version="2.97", json=body), 409)
    r = stack.post(f"{SERVERS}/{sid}/action", json={"os-stop": None})
    assert r.status_code == 202, r.text
    stack.wait_for(f"{SERVERS}/{sid}", lambda r: r.json()["server"]["status"] == "SHUTOFF")
    msg = _fault(stack.post(url, version="2.97", json=body), 409)
    assert msg == "Feature not supported because either compute or instance are not configured correctly."
    assert stack.delete(f"{url}/{share}", version="2.97").status_code == 404
    assert stack.get(f"{COMPUTE}/servers/{share}/shares", version="2.97").status_code == 404  # no server


# -- 2.98 image properties, 2.100 scheduler hints ---------------------------------------------------


def test_2_98_image_properties_in_server_views(stack: Api) -> None:
    image = _image_id(stack)
    ops = [
        {"op": "add", "path": "/hw_disk_bus", "value": "virtio"},
        {"op": "add", "path": "/os_distro", "value": "cirros"},
        {"op": "add", "path": "/my_own_label", "value": "not-standard"},
    ]
    r = stack.patch(f"/image/v2/images/{image}", as_="admin", json=ops, headers=PATCH)
    assert r.status_code == 200, r.text
    sid = _boot(stack)
    assert "properties" not in _show(stack, sid, "2.97")["image"]
    props = _show(stack, sid, "2.98")["image"]["properties"]
    assert props["hw_disk_bus"] == "virtio"
    assert props["os_distro"] == "cirros"
    assert "my_own_label" not in props  # only the standard image properties
    assert "min_ram" not in props and "base_image_ref" not in props
    detail = stack.get(f"{SERVERS}/detail", version="2.98").json()["servers"]
    assert detail[0]["image"]["properties"] == props
    r = stack.put(f"{SERVERS}/{sid}", version="2.98", json={"server": {"name": "renamed"}})
    assert r.json()["server"]["image"]["properties"] == props


def test_2_100_scheduler_hints_in_server_views(stack: Api) -> None:
    first = _boot(stack, "first")
    second = _boot(stack, "second", hints={"same_host": first})
    assert "scheduler_hints" not in _show(stack, second, "2.99")
    assert _show(stack, second, "2.100")["scheduler_hints"] == {"same_host": [first]}
    assert _show(stack, first, "2.100")["scheduler_hints"] == {}
    by_id = {s["id"]: s for s in stack.get(f"{SERVERS}/detail", version="2.100").json()["servers"]}
    assert by_id[second]["scheduler_hints"] == {"same_host": [first]}
    assert by_id[first]["scheduler_hints"] == {}
    assert all(
        "scheduler_hints" not in s for s in stack.get(f"{SERVERS}/detail", version="2.99").json()["servers"]
    )
    r = stack.put(f"{SERVERS}/{second}", version="2.100", json={"server": {"name": "renamed"}})
    assert r.json()["server"]["scheduler_hints"] == {"same_host": [first]}


# -- 2.101 volume attach ----------------------------------------------------------------------------


def _volume(stack: Api, name: str) -> str:
    r = stack.post("/volume/v3/volumes", json={"volume": {"size": 1, "name": name}})
    assert r.status_code == 202, r.text
    vol = str(r.json()["volume"]["id"])
    stack.wait_for(f"/volume/v3/volumes/{vol}", lambda r: r.json()["volume"]["status"] == "available")
    return vol


def test_2_101_volume_attach_answers_202_without_a_body(stack: Api) -> None:
    sid = _boot(stack)
    url = f"{SERVERS}/{sid}/os-volume_attachments"
    before = _volume(stack, "before")
    r = stack.post(url, version="2.100", json={"volumeAttachment": {"volumeId": before}})
    assert r.status_code == 200, r.text
    assert r.json()["volumeAttachment"]["volumeId"] == before
    at = _volume(stack, "at")
    r = stack.post(url, version="2.101", json={"volumeAttachment": {"volumeId": at}})
    assert r.status_code == 202, r.text
    assert r.content == b""
    listed = stack.get(url, version="2.101").json()["volumeAttachments"]
    assert {a["volumeId"] for a in listed} == {before, at}


# -- 2.102 flavors and strict queries --------------------------------------------------------------


def test_2_102_flavor_views_lose_rxtx_factor_and_disabled(stack: Api) -> None:
    old = stack.get(f"{FLAVORS}/1", version="2.101").json()["flavor"]
    assert old["rxtx_factor"] == 1.0 and old["OS-FLV-DISABLED:disabled"] is False
    new = stack.get(f"{FLAVORS}/1", version="2.102").json()["flavor"]
    assert "rxtx_factor" not in new and "OS-FLV-DISABLED:disabled" not in new
    for flavor in stack.get(f"{FLAVORS}/detail", version="2.102").json()["flavors"]:
        assert "rxtx_factor" not in flavor and "OS-FLV-DISABLED:disabled" not in flavor
    body = {"flavor": {"name": "rx", "ram": 64, "vcpus": 1, "disk": 1, "rxtx_factor": 2.0}}
    assert "rxtx_factor" in _fault(stack.post(FLAVORS, as_="admin", version="2.102", json=body), 400)
    r = stack.post(FLAVORS, as_="admin", version="2.101", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["flavor"]["rxtx_factor"] == 2.0
    assert stack.get(f"{FLAVORS}/detail?sort_key=rxtx_factor", version="2.101").status_code == 200
    assert stack.get(f"{FLAVORS}/detail?sort_key=rxtx_factor", version="2.102").status_code == 400


def test_2_102_flavor_name_filter(stack: Api) -> None:
    def names(query: str, version: str) -> list[str]:
        r = stack.get(f"{FLAVORS}{query}", version=version)
        assert r.status_code == 200, r.text
        return [f["name"] for f in r.json()["flavors"]]

    assert names("?name=m1.tiny", "2.102") == ["m1.tiny"]
    assert names("?name=^m1\\.(small|medium)$", "2.102") == ["m1.small", "m1.medium"]
    assert names("?name=large", "2.102") == ["m1.large", "m1.xlarge"]  # a search, as a regexp
    assert names("?name=nothing-like-it", "2.102") == []
    msg = _fault(stack.get(f"{FLAVORS}?name=m1.tiny", version="2.101"), 400)
    assert "Additional properties are not allowed" in msg


def test_2_102_unknown_query_parameters_refused(stack: Api) -> None:
    sid = _boot(stack)
    actions = stack.get(f"{SERVERS}/{sid}/os-instance-actions").json()["instanceActions"]
    for path in (
        f"{SERVERS}/{sid}/os-instance-actions/{actions[0]['request_id']}",
        f"{SERVERS}/{sid}/os-interface",
        f"{SERVERS}/{sid}/os-security-groups",
        f"{FLAVORS}/1",
        f"{FLAVORS}/1/os-extra_specs",
        f"{SERVERS}/{sid}",
        f"{SERVERS}/{sid}/metadata",
        f"{SERVERS}/{sid}/ips",
        f"{COMPUTE}/os-availability-zone",
    ):
        assert stack.get(f"{path}?foo=bar", version="2.101").status_code == 200, path
        msg = _fault(stack.get(f"{path}?foo=bar", version="2.102"), 400)
        assert msg == (
            "Invalid input for query parameters foo. Value: bar. "
            "Additional properties are not allowed ('foo' was unexpected)"
        ), path
        assert stack.get(path, version="2.102").status_code == 200, path
    # lists with their own parameters keep them
    assert stack.get(f"{SERVERS}/detail?name=vm", version="2.102").status_code == 200
    assert stack.get(f"{FLAVORS}?minRam=64", version="2.102").status_code == 200
    # unauthenticated: 401 first
    assert stack.get(f"{FLAVORS}/1?foo=bar", as_="", version="2.102").status_code == 401


# -- 2.103 os-volumes_boot, 2.104 pinned availability zone ---------------------------------------


def test_2_103_os_volumes_boot_is_not_served(stack: Api) -> None:
    for version in ("2.102", "2.103"):
        assert stack.get(f"{COMPUTE}/os-volumes_boot", version=version).status_code == 404


def test_2_104_pinned_availability_zone_update(stack: Api) -> None:
    sid = _boot(stack, availability_zone="nova")
    url = f"{SERVERS}/{sid}"

    def put(value: Any, version: str = "2.104") -> Any:
        return stack.put(url, version=version, json={"server": {"pinned_availability_zone": value}})

    assert "pinned_availability_zone" in _fault(put(None, "2.103"), 400)
    assert _show(stack, sid, "2.104")["pinned_availability_zone"] == "nova"
    assert "Unpin first" in _fault(put("elsewhere"), 409)
    r = put("nova")  # the same zone: nothing changes
    assert r.status_code == 200, r.text
    r = put(None)
    assert r.status_code == 200, r.text
    assert r.json()["server"]["pinned_availability_zone"] is None
    assert _show(stack, sid, "2.104")["pinned_availability_zone"] is None
    assert _fault(put("elsewhere"), 409) == (
        "Server can only be pinned to its current availability zone 'nova', but 'elsewhere' was requested."
    )
    r = put("nova")
    assert r.status_code == 200, r.text
    assert r.json()["server"]["pinned_availability_zone"] == "nova"
    assert _show(stack, sid, "2.96")["pinned_availability_zone"] == "nova"
    assert put("", "2.104").status_code == 400  # a zone name is not empty


# -- Tempest's response schemas (its newest server schemas are 2.98, 2.99 and 2.100+) ---------------


def _tempest_server_schema(version: str) -> Any:
    from tempest.lib.services.compute.servers_client import ServersClient

    def parse(v: str | None, default: tuple[int, int]) -> tuple[int, ...]:
        return tuple(int(p) for p in v.split(".")) if v else default

    wanted = parse(version, (2, 1))
    for info in ServersClient.schema_versions_info:
        if parse(info["min"], (2, 1)) <= wanted <= parse(info["max"], (9, 999)):
            return info["schema"]
    raise AssertionError(version)


def _check(schema: dict[str, Any], r: Any) -> None:
    from tempest.lib.common.rest_client import RestClient

    class Resp:
        status = r.status_code

    RestClient.validate_response(schema, Resp, r.json() if r.content else None)


def test_server_responses_match_tempest_schemas_up_to_2_104(stack: Api) -> None:
    first = _boot(stack, "first")
    sid = _boot(stack, "second", hints={"same_host": first})
    for version in ("2.97", "2.98", "2.99", "2.100", "2.102", "2.104"):
        schema = _tempest_server_schema(version)
        for who in ("demo", "admin"):
            _check(schema.get_server, stack.get(f"{SERVERS}/{sid}", as_=who, version=version))
            query = "" if who == "demo" else "?all_tenants=1"
            _check(
                schema.list_servers_detail, stack.get(f"{SERVERS}/detail{query}", as_=who, version=version)
            )
            _check(
                schema.update_server,
                stack.put(f"{SERVERS}/{sid}", as_=who, version=version, json={"server": {"name": "t"}}),
            )


def test_rebuild_answer_carries_image_properties_and_hints(stack: Api) -> None:
    first = _boot(stack, "first")
    sid = _boot(stack, "second", hints={"same_host": first})
    body = {"rebuild": {"imageRef": _image_id(stack)}}
    r = stack.post(f"{SERVERS}/{sid}/action", version="2.97", json=body)
    assert r.status_code == 202, r.text
    assert "properties" not in r.json()["server"]["image"]
    assert "scheduler_hints" not in r.json()["server"]
    stack.wait_for(f"{SERVERS}/{sid}", lambda r: r.json()["server"]["status"] == "ACTIVE")
    r = stack.post(f"{SERVERS}/{sid}/action", version="2.100", json=body)
    assert r.status_code == 202, r.text
    _check(_tempest_server_schema("2.100").rebuild_server_with_admin_pass, r)
    assert isinstance(r.json()["server"]["image"]["properties"], dict)
    assert r.json()["server"]["scheduler_hints"] == {"same_host": [first]}


def test_2_102_strict_routes_are_served(stack: Api) -> None:
    """Every route the 2.102 table names is one the app serves (a renamed route would drop out)."""
    from fastapi.routing import APIRoute

    from novalite.api import microversion

    served: set[str] = set()

    def walk(routes: list[Any]) -> None:
        for route in routes:
            if isinstance(route, APIRoute) and "GET" in route.methods:
                served.add(microversion._shape(route.path_format.removeprefix(COMPUTE)))
            original = getattr(route, "original_router", None)
            if original is not None:
                walk(original.routes)

    walk(stack.client.app.routes)
    missing = microversion._NO_QUERY_SHAPES - served
    assert missing == {"/servers/{}/topology"}  # the only one novalite does not serve
