"""The servers API through HTTP: create response, views per microversion, list filters and paging,
update, delete, and the sub-resources (metadata, tags, ips, password, actions, external events)."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest

from tests.conftest import Api

SERVERS = "/compute/v2.1/servers"
SLOW = {"novalite:build_delay": "5"}  # the fake driver spawns this slowly: the server stays in BUILD


def image_id(stack: Api) -> str:
    return str(stack.get("/image/v2/images?name=novalite-tiny").json()["images"][0]["id"])


def create(
    stack: Api, name: str = "vm", *, as_: str = "demo", version: str = "2.1", **fields: Any
) -> dict[str, Any]:
    server = {"name": name, "imageRef": image_id(stack), "flavorRef": "1", **fields}
    if tuple(int(p) for p in version.split(".")) >= (2, 37):
        server.setdefault("networks", "none")
    r = stack.post(SERVERS, as_=as_, version=version, json={"server": server})
    assert r.status_code == 202, r.text
    return r.json()  # type: ignore[no-any-return]


def make_active(stack: Api, server_id: str) -> None:
    """Wait for the real build (conductor, scheduler, fake-driver compute) to finish: ACTIVE."""
    stack.wait_for(
        f"{SERVERS}/{server_id}", lambda r: r.json()["server"]["status"] in ("ACTIVE", "ERROR"), as_="admin"
    )
    server = stack.get(f"{SERVERS}/{server_id}", as_="admin").json()["server"]
    assert server["status"] == "ACTIVE", server.get("fault")


def show(stack: Api, server_id: str, *, as_: str = "demo", version: str = "2.1") -> dict[str, Any]:
    r = stack.get(f"{SERVERS}/{server_id}", as_=as_, version=version)
    assert r.status_code == 200, r.text
    return r.json()["server"]  # type: ignore[no-any-return]


# -- create ---------------------------------------------------------------------------------------


def test_create_response_shape(stack: Api) -> None:
    r = stack.post(
        SERVERS,
        version="2.1",
        json={
            "server": {
                "name": "vm",
                "imageRef": image_id(stack),
                "flavorRef": "1",
                "adminPass": "s3cret",
                "security_groups": [{"name": "default"}, {"name": "default"}],
                "OS-DCF:diskConfig": "AUTO",
            }
        },
    )
    assert r.status_code == 202
    server = r.json()["server"]
    assert set(server) == {"id", "links", "OS-DCF:diskConfig", "security_groups", "adminPass"}
    assert server["adminPass"] == "s3cret"
    assert server["OS-DCF:diskConfig"] == "AUTO"
    assert server["security_groups"] == [{"name": "default"}, {"name": "default"}]  # echoed verbatim
    assert r.headers["Location"] == server["links"][0]["href"]
    assert r.headers["x-openstack-request-id"].startswith("req-")


def test_generated_password_and_default_security_group(stack: Api) -> None:
    server = create(stack)["server"]
    password = server["adminPass"]
    assert len(password) == 12
    assert any(c.isdigit() for c in password) and any(c.isupper() for c in password)
    assert not set(password) & set("01IOl")
    assert server["security_groups"] == [{"name": "default"}]
    assert server["OS-DCF:diskConfig"] == "MANUAL"


def test_return_reservation_id_and_multi_create(stack: Api) -> None:
    r = stack.post(
        SERVERS,
        json={
            "server": {
                "name": "web",
                "imageRef": image_id(stack),
                "flavorRef": "1",
                "min_count": 3,
                "return_reservation_id": True,
            }
        },
    )
    assert r.status_code == 202
    rid = r.json()["reservation_id"]
    assert set(r.json()) == {"reservation_id"} and "Location" not in r.headers
    assert rid.startswith("r-") and len(rid) == 10 and rid[2:].isalnum() and rid[2:].lower() == rid[2:]
    listed = stack.get(f"{SERVERS}/detail?reservation_id={rid}", version="2.3", as_="demo").json()["servers"]
    assert sorted(s["name"] for s in listed) == ["web-1", "web-2", "web-3"]
    admin = stack.get(
        f"{SERVERS}/detail?reservation_id={rid}&all_tenants=1", as_="admin", version="2.3"
    ).json()
    attrs = sorted(
        (s["OS-EXT-SRV-ATTR:launch_index"], s["OS-EXT-SRV-ATTR:hostname"]) for s in admin["servers"]
    )
    assert attrs == [(0, "web-1"), (1, "web-2"), (2, "web-3")]


def test_hostname_sanitized_and_requested(stack: Api) -> None:
    sid = create(stack, "My Server_1.example")["server"]["id"]
    assert show(stack, sid, version="2.90")["OS-EXT-SRV-ATTR:hostname"] == "my-server-1-example"
    sid = create(stack, "x", version="2.90", hostname="chosen-name")["server"]["id"]
    assert show(stack, sid, version="2.90")["OS-EXT-SRV-ATTR:hostname"] == "chosen-name"
    sid = create(stack, "x", version="2.94", hostname="host.example.com")["server"]["id"]
    assert show(stack, sid, version="2.94")["OS-EXT-SRV-ATTR:hostname"] == "host.example.com"


# -- views ----------------------------------------------------------------------------------------

BASE_KEYS = {
    "id",
    "name",
    "status",
    "tenant_id",
    "user_id",
    "metadata",
    "hostId",
    "image",
    "flavor",
    "created",
    "updated",
    "addresses",
    "accessIPv4",
    "accessIPv6",
    "links",
    "OS-DCF:diskConfig",
    "OS-EXT-AZ:availability_zone",
    "config_drive",
    "key_name",
    "OS-SRV-USG:launched_at",
    "OS-SRV-USG:terminated_at",
    "OS-EXT-STS:task_state",
    "OS-EXT-STS:vm_state",
    "OS-EXT-STS:power_state",
    "os-extended-volumes:volumes_attached",
    "progress",
}


def test_view_while_building(stack: Api) -> None:
    sid = create(stack, metadata={"a": "b", **SLOW}, accessIPv4="10.1.2.3")["server"]["id"]
    server = show(stack, sid)
    assert set(server) == BASE_KEYS  # no security_groups: no ports yet
    assert server["status"] == "BUILD" and server["OS-EXT-STS:vm_state"] == "building"
    assert server["OS-EXT-STS:task_state"] in (
        "scheduling",
        "networking",
        "block_device_mapping",
        "spawning",
        None,
    )
    assert server["OS-EXT-STS:power_state"] == 0
    assert server["addresses"] == {} and server["progress"] == 0
    assert server["metadata"] == {"a": "b", **SLOW}
    assert server["accessIPv4"] == "10.1.2.3" and server["accessIPv6"] == ""
    assert server["image"]["id"] == image_id(stack)
    assert server["flavor"]["id"] == "1" and server["flavor"]["links"][0]["rel"] == "bookmark"
    dt.datetime.strptime(server["created"], "%Y-%m-%dT%H:%M:%SZ")


def test_view_gates_per_microversion(stack: Api) -> None:
    sid = create(stack, "gated")["server"]["id"]
    v = show(stack, sid, version="2.8")
    assert "locked" not in v and "description" not in v
    assert show(stack, sid, version="2.9")["locked"] is False
    assert show(stack, sid, version="2.19")["description"] == "gated"  # created below 2.19: name
    assert show(stack, sid, version="2.26")["tags"] == []
    flavor = show(stack, sid, version="2.47")["flavor"]
    assert flavor == {
        "vcpus": 1,
        "ram": 512,
        "disk": 1,
        "ephemeral": 0,
        "swap": 0,
        "original_name": "m1.tiny",
        "extra_specs": {},
    }
    assert show(stack, sid, version="2.63")["trusted_image_certificates"] is None
    assert show(stack, sid, version="2.71")["server_groups"] == []
    listed = stack.get(f"{SERVERS}/detail", version="2.71").json()["servers"][0]
    assert "server_groups" not in listed  # show only
    assert show(stack, sid, version="2.73")["locked_reason"] is None
    assert "OS-EXT-SRV-ATTR:hostname" not in show(stack, sid, version="2.89")
    assert show(stack, sid, version="2.90")["OS-EXT-SRV-ATTR:hostname"] == "gated"
    assert "pinned_availability_zone" not in show(stack, sid, version="2.95")
    assert show(stack, sid, version="2.96")["pinned_availability_zone"] is None


def test_admin_attributes(stack: Api) -> None:
    sid = create(stack, user_data="aGVsbG8=")["server"]["id"]
    make_active(stack, sid)
    v21 = show(stack, sid, as_="admin", version="2.1")
    assert {
        "OS-EXT-SRV-ATTR:host",
        "OS-EXT-SRV-ATTR:instance_name",
        "OS-EXT-SRV-ATTR:hypervisor_hostname",
    } <= set(v21)
    assert "OS-EXT-SRV-ATTR:user_data" not in v21
    assert v21["OS-EXT-SRV-ATTR:instance_name"].startswith("instance-")
    int(v21["OS-EXT-SRV-ATTR:instance_name"].removeprefix("instance-"), 16)
    assert len(v21["OS-EXT-SRV-ATTR:instance_name"]) == len("instance-") + 8
    v23 = show(stack, sid, as_="admin", version="2.3")
    assert v23["OS-EXT-SRV-ATTR:user_data"] == "aGVsbG8=" and v23["OS-EXT-SRV-ATTR:launch_index"] == 0
    assert v23["OS-EXT-SRV-ATTR:reservation_id"].startswith("r-")
    member = show(stack, sid, version="2.3")
    assert not any(k.startswith("OS-EXT-SRV-ATTR") for k in member)
    assert member["hostId"] and member["hostId"] != v23["OS-EXT-SRV-ATTR:host"]
    assert len(member["hostId"]) == 56  # sha224 hex


def test_description_and_tags_at_create(stack: Api) -> None:
    sid = create(stack, "d", version="2.52", description="hello", tags=["a", "b"])["server"]["id"]
    server = show(stack, sid, version="2.52")
    assert server["description"] == "hello" and server["tags"] == ["a", "b"]


def test_other_projects_server_is_404(stack: Api) -> None:
    sid = create(stack, as_="admin")["server"]["id"]
    r = stack.get(f"{SERVERS}/{sid}")
    assert r.status_code == 404
    assert r.json()["itemNotFound"]["message"] == f"Instance {sid} could not be found."
    assert stack.delete(f"{SERVERS}/{sid}").status_code == 404


# -- list -----------------------------------------------------------------------------------------


def _names(stack: Api, query: str, *, as_: str = "demo", version: str = "2.1") -> list[str]:
    r = stack.get(f"{SERVERS}/detail{query}", as_=as_, version=version)
    assert r.status_code == 200, r.text
    return sorted(s["name"] for s in r.json()["servers"])


BACKENDS = pytest.mark.parametrize("postgres", [False, True], ids=["sqlite", "postgresql"])


@BACKENDS
def test_list_filters(stack_factory: Any, postgres: bool) -> None:
    stack = stack_factory(postgres=postgres)
    alpha = create(stack, "alpha", version="2.52", tags=["red", "big"])["server"]["id"]
    beta = create(stack, "beta", version="2.52", tags=["red"])["server"]["id"]
    gamma = create(stack, "gamma", flavorRef="2")["server"]["id"]
    for sid in (alpha, beta, gamma):
        make_active(stack, sid)
    assert stack.post(f"{SERVERS}/{alpha}/action", json={"os-stop": None}).status_code == 202
    stack.wait_for(f"{SERVERS}/{alpha}", lambda r: r.json()["server"]["status"] == "SHUTOFF")
    assert _names(stack, "") == ["alpha", "beta", "gamma"]
    assert _names(stack, "?name=^al") == ["alpha"]
    assert stack.get(f"{SERVERS}?name=(?P<x>al)").status_code in (200, 400)  # never a 500 (PostgreSQL regex)
    assert _names(stack, "?name=[") == []  # not a regex at all: matches nothing
    assert _names(stack, "?name=A") == ["alpha", "beta", "gamma"]  # regex, case-insensitive
    assert _names(stack, "?status=SHUTOFF") == ["alpha"]
    assert _names(stack, "?status=active") == ["beta", "gamma"]
    assert _names(stack, "?status=ACTIVE&status=SHUTOFF") == ["alpha", "beta", "gamma"]
    assert _names(stack, "?flavor=2") == ["gamma"]
    assert _names(stack, f"?image={image_id(stack)}") == ["alpha", "beta", "gamma"]
    assert _names(stack, "?tags=red,big", version="2.26") == ["alpha"]
    assert _names(stack, "?tags-any=big,red", version="2.26") == ["alpha", "beta"]
    assert _names(stack, "?not-tags=red,big", version="2.26") == ["beta", "gamma"]
    assert _names(stack, "?not-tags-any=red", version="2.26") == ["gamma"]
    assert _names(stack, "?host=fake-host-1") == ["alpha", "beta", "gamma"]  # admin-only: dropped
    assert _names(stack, "?status=NOPE", version="2.37") == []
    r = stack.get(f"{SERVERS}/detail?status=NOPE", version="2.38")
    assert r.status_code == 400 and "Invalid status value" in r.json()["badRequest"]["message"]
    assert _names(stack, "?bogus=1", version="2.74") == ["alpha", "beta", "gamma"]
    r = stack.get(f"{SERVERS}/detail?bogus=1", version="2.75")
    assert r.status_code == 400 and "bogus" in r.json()["badRequest"]["message"]
    assert stack.get(f"{SERVERS}?status=deleted").status_code == 403


def test_list_scope_and_admin_filters(stack: Api) -> None:
    create(stack, "mine")
    create(stack, "theirs", as_="admin")
    assert _names(stack, "") == ["mine"]
    assert _names(stack, "", as_="admin") == ["theirs"]
    assert _names(stack, "?all_tenants=1", as_="admin") == ["mine", "theirs"]
    assert _names(stack, f"?all_tenants=1&project_id={stack.ids['demo_project']}", as_="admin") == ["mine"]
    r = stack.get(f"{SERVERS}/detail?all_tenants=1")
    assert r.status_code == 403 and "forbidden" in r.json()


def test_deleted_servers_and_changes_since(stack: Api) -> None:
    before = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    time.sleep(1.1)  # updated_at has second resolution in the filter value
    keep = create(stack, "keep")["server"]["id"]
    gone = create(stack, "gone")["server"]["id"]
    assert stack.delete(f"{SERVERS}/{gone}").status_code == 204
    stack.wait_for(f"{SERVERS}/{gone}", lambda r: r.status_code == 404)
    assert _names(stack, "") == ["keep"]
    r = stack.get(f"{SERVERS}/detail?changes-since={before}")
    statuses = {s["name"]: s["status"] for s in r.json()["servers"]}
    assert (
        statuses["gone"] == "DELETED" and statuses["keep"] != "DELETED" and set(statuses) == {"keep", "gone"}
    )
    assert _names(stack, f"?changes-before={before}", version="2.66") == []
    r = stack.get(
        f"{SERVERS}/detail?changes-since=2030-01-01T00:00:00Z&changes-before=2020-01-01T00:00:00Z",
        version="2.66",
    )
    assert r.status_code == 400
    assert _names(stack, "?deleted=true", as_="admin") == []  # admin's own project
    assert keep


@BACKENDS
def test_sorting_and_paging(stack_factory: Any, postgres: bool) -> None:
    stack = stack_factory(postgres=postgres)
    for name in ("c", "a", "b", "e", "d"):
        create(stack, name)
    r = stack.get(f"{SERVERS}?sort_key=display_name&sort_dir=asc&limit=2")
    page = r.json()
    assert [s["name"] for s in page["servers"]] == ["a", "b"]
    next_href = page["servers_links"][0]["href"]
    assert "marker=" in next_href and "limit=2" in next_href
    r = stack.get(f"{SERVERS}?sort_key=display_name&sort_dir=asc&limit=2&marker={page['servers'][-1]['id']}")
    assert [s["name"] for s in r.json()["servers"]] == ["c", "d"]
    r = stack.get(
        f"{SERVERS}?sort_key=display_name&sort_dir=asc&limit=2&marker={r.json()['servers'][-1]['id']}"
    )
    assert [s["name"] for s in r.json()["servers"]] == ["e"] and "servers_links" not in r.json()
    r = stack.get(f"{SERVERS}?sort_key=display_name&sort_dir=desc")
    assert [s["name"] for s in r.json()["servers"]] == ["e", "d", "c", "b", "a"]
    default = [s["name"] for s in stack.get(SERVERS).json()["servers"]]
    assert default == ["d", "e", "b", "a", "c"]  # created_at desc
    assert stack.get(f"{SERVERS}?marker=nope").status_code == 400
    assert stack.get(f"{SERVERS}?sort_key=nope").status_code == 400
    assert stack.get(f"{SERVERS}?sort_key=host").status_code == 403
    assert stack.get(f"{SERVERS}?limit=abc").status_code == 400


# -- update / delete ------------------------------------------------------------------------------


def test_update_server(stack: Api) -> None:
    sid = create(stack, "old")["server"]["id"]
    r = stack.put(
        f"{SERVERS}/{sid}",
        version="2.90",
        json={
            "server": {
                "name": "new",
                "description": "desc",
                "accessIPv4": "192.0.2.1",
                "OS-DCF:diskConfig": "AUTO",
                "hostname": "new-host",
            }
        },
    )
    assert r.status_code == 200, r.text
    server = r.json()["server"]
    assert server["name"] == "new" and server["description"] == "desc"
    assert server["accessIPv4"] == "192.0.2.1" and server["OS-DCF:diskConfig"] == "AUTO"
    assert server["OS-EXT-SRV-ATTR:hostname"] == "new-host"
    reduced = stack.put(f"{SERVERS}/{sid}", json={"server": {"name": "n2"}}).json()["server"]
    assert "key_name" not in reduced and "OS-EXT-STS:vm_state" not in reduced and reduced["name"] == "n2"
    full = stack.put(f"{SERVERS}/{sid}", version="2.75", json={"server": {"name": "n3"}}).json()["server"]
    assert "key_name" in full and "OS-EXT-STS:vm_state" in full and "server_groups" in full
    r = stack.put(f"{SERVERS}/{sid}", version="2.18", json={"server": {"description": "x"}})
    assert r.status_code == 400
    r = stack.put(f"{SERVERS}/{sid}", json={"server": {"name": ""}})
    assert r.status_code == 400


def test_delete_in_build_then_404(stack: Api) -> None:
    sid = create(stack, metadata=SLOW)["server"]["id"]
    assert show(stack, sid)["status"] == "BUILD"
    r = stack.delete(f"{SERVERS}/{sid}")
    assert r.status_code == 204 and r.content == b""
    stack.wait_for(f"{SERVERS}/{sid}", lambda r: r.status_code == 404)
    assert stack.delete(f"{SERVERS}/{sid}").status_code == 404


def test_locked_server_delete(stack: Api) -> None:
    sid = create(stack)["server"]["id"]
    make_active(stack, sid)
    assert stack.post(f"{SERVERS}/{sid}/action", json={"lock": None}).status_code == 202
    r = stack.delete(f"{SERVERS}/{sid}")
    assert r.status_code == 409 and "is locked" in r.json()["conflictingRequest"]["message"]
    assert stack.post(f"{SERVERS}/{sid}/action", json={"unlock": None}).status_code == 202
    assert stack.post(f"{SERVERS}/{sid}/action", as_="admin", json={"lock": None}).status_code == 202
    r = stack.post(f"{SERVERS}/{sid}/action", json={"unlock": None})
    assert r.status_code == 403 and "unlock_override" in r.json()["forbidden"]["message"]
    assert (
        stack.delete(f"{SERVERS}/{sid}", as_="admin").status_code == 204
    )  # admins may delete locked servers


# -- actions --------------------------------------------------------------------------------------


def _action(stack: Api, sid: str, body: Any, version: str = "2.1") -> Any:
    return stack.post(f"{SERVERS}/{sid}/action", json=body, version=version)


def test_power_actions_and_state_checks(stack: Api) -> None:
    sid = create(stack, metadata=SLOW)["server"]["id"]
    r = _action(stack, sid, {"os-stop": None})
    assert r.status_code == 409
    assert (
        r.json()["conflictingRequest"]["message"]
        == f"Cannot 'stop' instance {sid} while it is in vm_state building"
    )
    make_active(stack, sid)
    steps = [
        ({"os-stop": None}, "SHUTOFF", 4),
        ({"os-start": None}, "ACTIVE", 1),
        ({"pause": None}, "PAUSED", 3),
        ({"unpause": None}, "ACTIVE", 1),
        ({"suspend": None}, "SUSPENDED", 7),
        ({"resume": None}, "ACTIVE", 1),
        ({"reboot": {"type": "SOFT"}}, "ACTIVE", 1),
        ({"reboot": {"type": "hard"}}, "ACTIVE", 1),
    ]
    for body, status, power in steps:
        r = _action(stack, sid, body)
        assert r.status_code == 202, (body, r.text)
        server = stack.wait_for(
            f"{SERVERS}/{sid}",
            lambda r, st=status: (
                r.json()["server"]["status"] == st and r.json()["server"]["OS-EXT-STS:task_state"] is None
            ),
        ).json()["server"]
        assert server["OS-EXT-STS:power_state"] == power
    r = _action(stack, sid, {"os-start": None})
    assert (
        r.status_code == 409 and "while it is in vm_state active" in r.json()["conflictingRequest"]["message"]
    )
    r = _action(stack, sid, {"unpause": None})
    assert r.status_code == 409
    assert _action(stack, sid, {"reboot": {"type": "MEDIUM"}}).status_code == 400
    r = _action(stack, sid, {"fly": None})
    assert r.status_code == 400 and "There is no such action" in r.json()["badRequest"]["message"]


def test_lock_reason_and_locked_actions(stack: Api) -> None:
    sid = create(stack)["server"]["id"]
    make_active(stack, sid)
    assert _action(stack, sid, {"lock": {"locked_reason": "maintenance"}}, "2.73").status_code == 202
    server = show(stack, sid, version="2.73")
    assert server["locked"] is True and server["locked_reason"] == "maintenance"
    r = _action(stack, sid, {"os-stop": None})
    assert r.status_code == 409 and r.json()["conflictingRequest"]["message"] == f"Instance {sid} is locked"
    r = stack.post(f"{SERVERS}/{sid}/metadata", json={"metadata": {"a": "b"}})
    assert r.status_code == 409
    assert _action(stack, sid, {"unlock": None}).status_code == 202
    assert show(stack, sid, version="2.73")["locked_reason"] is None


# -- sub-resources --------------------------------------------------------------------------------


def test_metadata(stack: Api) -> None:
    sid = create(stack, metadata={"a": "1", **SLOW})["server"]["id"]
    base = f"{SERVERS}/{sid}/metadata"
    r = stack.post(base, json={"metadata": {"b": "2"}})
    assert r.status_code == 409  # still building
    make_active(stack, sid)
    assert stack.post(base, json={"metadata": {"b": "2"}}).json() == {
        "metadata": {"a": "1", "b": "2", **SLOW}
    }
    assert stack.get(base).json() == {"metadata": {"a": "1", "b": "2", **SLOW}}
    assert stack.put(base, json={"metadata": {"c": "3"}}).json() == {"metadata": {"c": "3"}}
    assert stack.get(f"{base}/c").json() == {"meta": {"c": "3"}}
    assert stack.put(f"{base}/d", json={"meta": {"d": "4"}}).json() == {"meta": {"d": "4"}}
    assert stack.put(f"{base}/d", json={"meta": {"x": "4"}}).status_code == 400
    assert stack.put(f"{base}/d", json={"meta": {"d": "4", "e": "5"}}).status_code == 400
    assert stack.delete(f"{base}/c").status_code == 204
    assert stack.get(f"{base}/c").status_code == 404
    assert stack.delete(f"{base}/c").status_code == 404
    r = stack.post(base, json={"metadata": {f"k{i}": "v" for i in range(128)}})
    assert r.status_code == 403 and "Maximum number of metadata items exceeds 128" in r.text
    assert stack.get(f"{base}", as_="admin").status_code == 200


def test_tags(stack: Api) -> None:
    sid = create(stack)["server"]["id"]
    base = f"{SERVERS}/{sid}/tags"
    assert stack.get(base, version="2.25").status_code == 404
    make_active(stack, sid)
    assert stack.put(base, version="2.26", json={"tags": ["b", "a"]}).json() == {"tags": ["a", "b"]}
    r = stack.put(f"{base}/c", version="2.26")
    assert r.status_code == 201 and r.headers["Location"].endswith(f"/servers/{sid}/tags/c")
    assert stack.put(f"{base}/c", version="2.26").status_code == 204
    assert stack.get(f"{base}/c", version="2.26").status_code == 204
    assert stack.get(f"{base}/zz", version="2.26").status_code == 404
    assert stack.get(base, version="2.26").json() == {"tags": ["a", "b", "c"]}
    assert stack.delete(f"{base}/a", version="2.26").status_code == 204
    assert stack.delete(f"{base}/a", version="2.26").status_code == 404
    assert stack.put(base, version="2.26", json={"tags": [str(i) for i in range(51)]}).status_code == 400
    assert stack.delete(base, version="2.26").status_code == 204
    assert stack.get(base, version="2.26").json() == {"tags": []}


def test_ips_and_password(stack: Api) -> None:
    sid = create(stack, version="2.37")["server"]["id"]  # networks "none": no addresses ever
    assert stack.get(f"{SERVERS}/{sid}/ips").json() == {"addresses": {}}
    assert stack.get(f"{SERVERS}/{sid}/ips/private").status_code == 404
    assert stack.get(f"{SERVERS}/{sid}/os-server-password").json() == {"password": ""}
    assert stack.delete(f"{SERVERS}/{sid}/os-server-password").status_code == 204


def test_instance_actions(stack: Api) -> None:
    r = stack.post(SERVERS, json={"server": {"name": "a", "imageRef": image_id(stack), "flavorRef": "1"}})
    sid, request_id = r.json()["server"]["id"], r.headers["x-openstack-request-id"]
    make_active(stack, sid)
    assert _action(stack, sid, {"os-stop": None}).status_code == 202
    actions = stack.get(f"{SERVERS}/{sid}/os-instance-actions").json()["instanceActions"]
    assert [a["action"] for a in actions] == ["stop", "create"]  # newest first
    create_action = actions[1]
    assert create_action["request_id"] == request_id and create_action["instance_uuid"] == sid
    assert create_action["project_id"] == stack.ids["demo_project"] and "updated_at" not in create_action
    assert (
        "updated_at"
        in stack.get(f"{SERVERS}/{sid}/os-instance-actions", version="2.58").json()["instanceActions"][0]
    )
    shown = stack.get(
        f"{SERVERS}/{sid}/os-instance-actions/{actions[0]['request_id']}", version="2.84"
    ).json()
    event = shown["instanceAction"]["events"][0]
    assert event["event"] == "compute_stop_instance" and event["result"] == "Success"
    assert "traceback" not in event and "host" not in event and "hostId" in event and "details" in event
    assert (
        "events"
        not in stack.get(f"{SERVERS}/{sid}/os-instance-actions/{request_id}", version="2.50").json()[
            "instanceAction"
        ]
    )
    page = stack.get(f"{SERVERS}/{sid}/os-instance-actions?limit=1", version="2.58").json()
    assert len(page["instanceActions"]) == 1 and "links" in page
    marker = page["instanceActions"][0]["request_id"]
    rest = stack.get(f"{SERVERS}/{sid}/os-instance-actions?marker={marker}", version="2.58").json()
    assert [a["action"] for a in rest["instanceActions"]] == ["create"]
    assert stack.get(f"{SERVERS}/{sid}/os-instance-actions/req-nope").status_code == 404
    assert stack.delete(f"{SERVERS}/{sid}").status_code == 204
    stack.wait_for(f"{SERVERS}/{sid}", lambda r: r.status_code == 404)
    assert stack.get(f"{SERVERS}/{sid}/os-instance-actions", version="2.20").status_code == 404
    assert stack.get(f"{SERVERS}/{sid}/os-instance-actions", version="2.21").status_code == 200


def test_external_events(stack: Api) -> None:
    sid = create(stack)["server"]["id"]
    make_active(stack, sid)
    body = {"events": [{"name": "network-vif-plugged", "server_uuid": sid, "tag": "port-1"}]}
    assert stack.post("/compute/v2.1/os-server-external-events", json=body).status_code == 403
    r = stack.post("/compute/v2.1/os-server-external-events", json=body, as_="admin")
    assert r.status_code == 200, r.text
    assert r.json()["events"][0] | {} == {**body["events"][0], "status": "completed", "code": 200}
    missing = {"events": [{"name": "network-changed", "server_uuid": "00000000-0000-0000-0000-000000000000"}]}
    assert stack.post("/compute/v2.1/os-server-external-events", json=missing, as_="admin").status_code == 404
    bad = {"events": [{"name": "power-update", "server_uuid": sid}]}
    assert (
        stack.post(
            "/compute/v2.1/os-server-external-events", json=bad, as_="admin", version="2.75"
        ).status_code
        == 400
    )


# -- placement hints and zones ----------------------------------------------------------------------


def test_server_group_membership(stack: Api) -> None:
    r = stack.post(
        "/compute/v2.1/os-server-groups",
        version="2.64",
        json={"server_group": {"name": "g", "policy": "anti-affinity"}},
    )
    assert r.status_code == 200, r.text
    gid = r.json()["server_group"]["id"]
    r = stack.post(
        SERVERS,
        version="2.71",
        json={
            "server": {"name": "member", "imageRef": image_id(stack), "flavorRef": "1", "networks": "none"},
            "os:scheduler_hints": {"group": gid, "_nova_internal": "x"},
        },
    )
    assert r.status_code == 202, r.text
    sid = r.json()["server"]["id"]
    assert show(stack, sid, version="2.71")["server_groups"] == [gid]
    group = stack.get(f"/compute/v2.1/os-server-groups/{gid}", version="2.64").json()["server_group"]
    assert group["members"] == [sid]
    r = stack.post(
        SERVERS,
        as_="admin",
        json={
            "server": {"name": "x", "imageRef": image_id(stack), "flavorRef": "1"},
            "os:scheduler_hints": {"group": gid},
        },
    )
    assert r.status_code == 202  # admins may use any project's group


def test_availability_zone_from_an_aggregate(stack: Api) -> None:
    r = stack.post(
        "/compute/v2.1/os-aggregates",
        as_="admin",
        json={"aggregate": {"name": "agg1", "availability_zone": "az1"}},
    )
    assert r.status_code == 200, r.text
    r = stack.post(
        f"/compute/v2.1/os-aggregates/{r.json()['aggregate']['id']}/action",
        as_="admin",
        json={"add_host": {"host": "fake-host-1"}},
    )
    assert r.status_code == 200, r.text
    sid = create(stack, availability_zone="az1")["server"]["id"]
    make_active(stack, sid)
    server = show(stack, sid, version="2.96")
    assert server["OS-EXT-AZ:availability_zone"] == "az1"
    assert server["pinned_availability_zone"] == "az1"
    assert _names(stack, "?availability_zone=az1", version="2.83") == ["vm"]


# -- Tempest's response schemas --------------------------------------------------------------------

SCHEMA_VERSIONS = [
    "2.1",
    "2.3",
    "2.9",
    "2.16",
    "2.19",
    "2.26",
    "2.47",
    "2.48",
    "2.54",
    "2.58",
    "2.62",
    "2.63",
    "2.71",
    "2.73",
    "2.75",
    "2.79",
    "2.84",
    "2.89",
    "2.96",
]


def _tempest_schema(version: str) -> Any:
    from tempest.lib.services.compute.servers_client import ServersClient

    wanted = tuple(int(p) for p in version.split("."))
    for info in ServersClient.schema_versions_info:
        low = tuple(int(p) for p in info["min"].split(".")) if info["min"] else (2, 1)
        high = tuple(int(p) for p in info["max"].split(".")) if info["max"] else (9, 999)
        if low <= wanted <= high:
            return info["schema"]
    raise AssertionError(version)


def _check(schema: dict[str, Any], r: Any) -> None:
    from tempest.lib.common.rest_client import RestClient

    class Resp:
        status = r.status_code

    RestClient.validate_response(schema, Resp, r.json() if r.content else None)


def test_responses_match_tempest_schemas(stack: Api) -> None:
    create_schema = _tempest_schema("2.1")
    r = stack.post(
        SERVERS,
        json={"server": {"name": "t", "imageRef": image_id(stack), "flavorRef": "1", "metadata": {"a": "b"}}},
    )
    _check(create_schema.create_server_with_admin_pass, r)
    sid = r.json()["server"]["id"]
    make_active(stack, sid)
    stack.put(f"{SERVERS}/{sid}/tags/x", version="2.26")
    for version in SCHEMA_VERSIONS:
        schema = _tempest_schema(version)
        for who in ("demo", "admin"):
            _check(schema.get_server, stack.get(f"{SERVERS}/{sid}", as_=who, version=version))
            query = "" if who == "demo" else "?all_tenants=1"
            _check(
                schema.list_servers_detail, stack.get(f"{SERVERS}/detail{query}", as_=who, version=version)
            )
            _check(schema.list_servers, stack.get(f"{SERVERS}{query}", as_=who, version=version))
            _check(
                schema.update_server,
                stack.put(f"{SERVERS}/{sid}", as_=who, version=version, json={"server": {"name": "t"}}),
            )
            action = stack.get(f"{SERVERS}/{sid}/os-instance-actions", as_=who, version=version).json()
            request_id = action["instanceActions"][0]["request_id"]
            _check(
                schema.show_instance_action,
                stack.get(f"{SERVERS}/{sid}/os-instance-actions/{request_id}", as_=who, version=version),
            )
        if tuple(int(p) for p in version.split(".")) >= (2, 26):
            _check(schema.list_tags, stack.get(f"{SERVERS}/{sid}/tags", version=version))
    base = _tempest_schema("2.1")
    addresses = show(stack, sid)["addresses"]
    for label in addresses:
        _check(
            {"status_code": [200], "response_body": base.list_addresses_by_network},
            stack.get(f"{SERVERS}/{sid}/ips/{label}"),
        )
    from tempest.lib.api_schema.response.compute.v2_1 import server_external_events as events_schema

    _check(
        events_schema.create,
        stack.post(
            "/compute/v2.1/os-server-external-events",
            as_="admin",
            json={"events": [{"name": "network-changed", "server_uuid": sid}]},
        ),
    )
    _check(base.list_addresses, stack.get(f"{SERVERS}/{sid}/ips"))
    _check(base.show_password, stack.get(f"{SERVERS}/{sid}/os-server-password"))
    _check(base.list_server_metadata, stack.get(f"{SERVERS}/{sid}/metadata"))
    _check(base.set_server_metadata, stack.put(f"{SERVERS}/{sid}/metadata", json={"metadata": {"c": "d"}}))
    _check(
        base.update_server_metadata, stack.post(f"{SERVERS}/{sid}/metadata", json={"metadata": {"e": "f"}})
    )
    _check(
        base.set_show_server_metadata_item,
        stack.put(f"{SERVERS}/{sid}/metadata/g", json={"meta": {"g": "h"}}),
    )
    _check(base.set_show_server_metadata_item, stack.get(f"{SERVERS}/{sid}/metadata/g"))
    _check(base.delete_server_metadata_item, stack.delete(f"{SERVERS}/{sid}/metadata/g"))
    _check(base.list_instance_actions, stack.get(f"{SERVERS}/{sid}/os-instance-actions"))
    _check(base.server_actions_delete_password, stack.delete(f"{SERVERS}/{sid}/os-server-password"))
    _check(base.server_actions_common_schema, stack.post(f"{SERVERS}/{sid}/action", json={"os-stop": None}))
    _check(base.delete_server, stack.delete(f"{SERVERS}/{sid}"))


def test_requested_network_and_ip_filters(stack: Api) -> None:
    nets = {n["name"]: n["id"] for n in stack.get("/network/v2.0/networks").json()["networks"]}
    a = create(stack, "a", version="2.37", networks=[{"uuid": nets["private"], "fixed_ip": "10.0.0.50"}])
    b = create(stack, "b", version="2.37", networks=[{"uuid": nets["private"]}])
    for sid in (a["server"]["id"], b["server"]["id"]):
        make_active(stack, sid)
    server = show(stack, a["server"]["id"])
    assert [x["addr"] for x in server["addresses"]["private"] if x["version"] == 4] == ["10.0.0.50"]
    assert server["security_groups"] == [{"name": "default"}]
    assert _names(stack, "?ip=10.0.0.50") == ["a"]
    assert _names(stack, "?ip=^10\\.0\\.0\\.") == ["a", "b"]
    assert _names(stack, "?ip6=fd00:", version="2.5") == ["b"]  # a asked for one IPv4 address only
    ips = stack.get(f"{SERVERS}/{a['server']['id']}/ips/private").json()
    assert {"version": 4, "addr": "10.0.0.50"} in ips["private"]
    r = stack.post(
        SERVERS,
        version="2.37",
        json={
            "server": {
                "name": "c",
                "imageRef": image_id(stack),
                "flavorRef": "1",
                "networks": [{"uuid": nets["private"], "fixed_ip": "10.0.0.50"}],
            }
        },
    )
    assert r.status_code == 400 and "already in use" in r.json()["badRequest"]["message"]


def test_fault_of_a_failed_build(stack: Api) -> None:
    sid = create(stack, "doomed", metadata={"novalite:fail_spawn": "always"})["server"]["id"]
    stack.wait_for(f"{SERVERS}/{sid}", lambda r: r.json()["server"]["status"] == "ERROR")
    member = show(stack, sid)
    assert member["fault"]["message"] and member["fault"]["code"] in (500, 400)
    assert set(member["fault"]) <= {"code", "created", "message", "details"}
    if member["fault"]["code"] == 500:
        assert "details" not in member["fault"]  # tracebacks only for admins
        assert "details" in show(stack, sid, as_="admin")["fault"]
    assert "progress" not in member  # ERROR shows no progress
    r = stack.post(f"{SERVERS}/{sid}/action", json={"os-stop": None})
    assert r.status_code == 409 and "launched_at None" in r.json()["conflictingRequest"]["message"]
    assert stack.delete(f"{SERVERS}/{sid}").status_code == 204


def test_boot_from_volume(stack: Api) -> None:
    r = stack.post(
        "/volume/v3/volumes", json={"volume": {"size": 1, "imageRef": image_id(stack), "name": "root"}}
    )
    assert r.status_code == 202, r.text
    vol = r.json()["volume"]["id"]
    stack.wait_for(f"/volume/v3/volumes/{vol}", lambda r: r.json()["volume"]["status"] == "available")
    r = stack.post(
        SERVERS,
        version="2.67",
        json={
            "server": {
                "name": "bfv",
                "flavorRef": "1",
                "networks": "none",
                "block_device_mapping_v2": [
                    {
                        "source_type": "volume",
                        "destination_type": "volume",
                        "uuid": vol,
                        "boot_index": 0,
                        "delete_on_termination": False,
                    }
                ],
            }
        },
    )
    assert r.status_code == 202, r.text
    sid = r.json()["server"]["id"]
    make_active(stack, sid)
    server = show(stack, sid, version="2.3")
    assert server["image"] == ""
    assert server["os-extended-volumes:volumes_attached"] == [{"id": vol, "delete_on_termination": False}]
    assert show(stack, sid)["os-extended-volumes:volumes_attached"] == [{"id": vol}]
    r = stack.post(
        SERVERS,
        version="2.67",
        json={
            "server": {
                "name": "again",
                "flavorRef": "1",
                "networks": "none",
                "block_device_mapping_v2": [
                    {"source_type": "volume", "destination_type": "volume", "uuid": vol, "boot_index": 0}
                ],
            }
        },
    )
    assert r.status_code == 400 and "Invalid volume" in r.json()["badRequest"]["message"]  # in use


def test_block_device_sources_must_exist(stack: Api) -> None:
    missing = "6f9619ff-8b86-d011-b42d-00cf4fc964ff"
    cases = [
        (
            [{"source_type": "volume", "destination_type": "volume", "uuid": missing, "boot_index": 0}],
            f"failed to get volume {missing}",
        ),
        (
            [
                {
                    "source_type": "snapshot",
                    "destination_type": "volume",
                    "uuid": missing,
                    "boot_index": 0,
                    "volume_size": 1,
                }
            ],
            f"failed to get snapshot {missing}",
        ),
        (
            [
                {
                    "source_type": "image",
                    "destination_type": "volume",
                    "uuid": missing,
                    "boot_index": 0,
                    "volume_size": 1,
                }
            ],
            f"failed to get image {missing}",
        ),
    ]
    for bdms, gist in cases:
        r = stack.post(
            SERVERS,
            version="2.37",
            json={
                "server": {"name": "x", "flavorRef": "1", "networks": "none", "block_device_mapping_v2": bdms}
            },
        )
        assert r.status_code == 400 and gist in r.json()["badRequest"]["message"], r.text
    r = stack.post("/volume/v3/volumes", json={"volume": {"size": 1, "name": "blank"}})
    vol = r.json()["volume"]["id"]
    stack.wait_for(f"/volume/v3/volumes/{vol}", lambda r: r.json()["volume"]["status"] == "available")
    r = stack.post(
        SERVERS,
        version="2.37",
        json={
            "server": {
                "name": "x",
                "flavorRef": "1",
                "networks": "none",
                "block_device_mapping_v2": [
                    {"source_type": "volume", "destination_type": "volume", "uuid": vol, "boot_index": 0}
                ],
            }
        },
    )
    assert r.status_code == 400 and f"Block Device {vol} is not bootable" in r.json()["badRequest"]["message"]


def test_security_group_actions(stack: Api) -> None:
    sid = create(stack, "sg")["server"]["id"]  # 2.1 without networks: a port on the project's network
    make_active(stack, sid)
    assert show(stack, sid)["security_groups"] == [{"name": "default"}]
    r = stack.post("/network/v2.0/security-groups", json={"security_group": {"name": "web"}})
    assert r.status_code == 201, r.text
    assert _action(stack, sid, {"addSecurityGroup": {"name": "web"}}).status_code == 202
    assert sorted(g["name"] for g in show(stack, sid)["security_groups"]) == ["default", "web"]
    for name in ("default", "web"):
        assert _action(stack, sid, {"removeSecurityGroup": {"name": name}}).status_code == 202
    assert "security_groups" not in show(stack, sid)  # no groups on the ports: no key
    r = _action(stack, sid, {"removeSecurityGroup": {"name": "web"}})
    assert r.status_code == 404 and "not associated" in r.json()["itemNotFound"]["message"]
    assert _action(stack, sid, {"addSecurityGroup": {"name": "nope"}}).status_code == 404
    assert _action(stack, sid, {"addSecurityGroup": {}}).status_code == 400
    portless = create(stack, "portless", version="2.37")["server"]["id"]
    make_active(stack, portless)
    assert _action(stack, portless, {"addSecurityGroup": {"name": "web"}}).status_code == 404


def test_access_ips_are_normalised(stack: Api) -> None:
    sid = create(stack, accessIPv6="0000:0000:0000:0000:0000:babe:220.12.22.2")["server"]["id"]
    assert show(stack, sid)["accessIPv6"] == "::babe:dc0c:1602"
    r = stack.put(
        f"{SERVERS}/{sid}", json={"server": {"accessIPv6": "2001:0db8:0000:0000:0000:0000:0000:0001"}}
    )
    assert r.json()["server"]["accessIPv6"] == "2001:db8::1"


def test_admin_and_misc_actions(stack: Api) -> None:
    sid = create(stack)["server"]["id"]
    make_active(stack, sid)
    act = f"{SERVERS}/{sid}/action"
    assert stack.post(act, json={"os-resetState": {"state": "error"}}).status_code == 403
    assert stack.post(act, as_="admin", json={"os-resetState": {"state": "error"}}).status_code == 202
    assert show(stack, sid)["status"] == "ERROR"
    assert stack.post(act, as_="admin", json={"os-resetState": {"state": "bogus"}}).status_code == 400
    assert stack.post(act, as_="admin", json={"os-resetState": {"state": "active"}}).status_code == 202
    assert show(stack, sid)["status"] == "ACTIVE"
    missing = f"{SERVERS}/00000000-0000-0000-0000-000000000000/action"
    assert stack.post(missing, as_="admin", json={"os-resetState": {"state": "active"}}).status_code == 404
    assert stack.post(act, as_="admin", json={"injectNetworkInfo": None}).status_code == 202
    assert stack.post(act, as_="admin", json={"resetNetwork": None}).status_code == 202
    assert stack.post(act, json={"injectNetworkInfo": None}).status_code == 403
    out = stack.post(act, json={"os-getConsoleOutput": {"length": 3}})
    assert out.status_code == 200 and len(out.json()["output"].split("\n")) == 3
    assert len(stack.post(act, json={"os-getConsoleOutput": {}}).json()["output"].split("\n")) > 3
    assert stack.post(act, json={"os-getConsoleOutput": {"length": -2}}).status_code == 400
    assert stack.post(missing, json={"os-getConsoleOutput": {}}).status_code == 404
    assert stack.post(act, json={"changePassword": {"adminPass": "n3w"}}).status_code == 202
    assert stack.post(act, json={"changePassword": {}}).status_code == 400
    assert stack.post(act, version="2.16", json={"trigger_crash_dump": None}).status_code == 404
    assert stack.post(act, version="2.17", json={"trigger_crash_dump": None}).status_code == 202
    r = stack.post(act, json={"restore": None})
    assert (
        r.status_code == 409 and "while it is in vm_state active" in r.json()["conflictingRequest"]["message"]
    )
    assert stack.post(missing, json={"restore": None}).status_code == 404
    assert stack.post(missing, json={"forceDelete": None}).status_code == 404
    actions = [
        a["action"] for a in stack.get(f"{SERVERS}/{sid}/os-instance-actions").json()["instanceActions"]
    ]
    assert {"resetState", "changePassword", "trigger_crash_dump", "create"} <= set(actions)
    assert stack.post(act, json={"forceDelete": None}).status_code == 202
    stack.wait_for(f"{SERVERS}/{sid}", lambda r: r.status_code == 404)


def _second_image(stack: Api) -> str:
    r = stack.post("/image/v2/images", json={"name": "alt", "disk_format": "raw", "container_format": "bare"})
    alt = str(r.json()["id"])
    r = stack.put(
        f"/image/v2/images/{alt}/file",
        content=b"y" * 2048,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert r.status_code == 204
    return alt


def test_rebuild(stack: Api) -> None:
    alt = _second_image(stack)
    sid = create(stack, "before", metadata={"old": "1"})["server"]["id"]
    make_active(stack, sid)
    act = f"{SERVERS}/{sid}/action"
    r = stack.post(
        act,
        json={"rebuild": {"imageRef": alt, "name": "after", "metadata": {"new": "2"}, "adminPass": "pw-1"}},
    )
    assert r.status_code == 202, r.text
    body = r.json()["server"]
    assert body["adminPass"] == "pw-1" and body["image"]["id"] == alt and body["name"] == "after"
    _check(_tempest_schema("2.1").rebuild_server_with_admin_pass, r)
    server = show(stack, sid)
    assert server["status"] == "ACTIVE" and server["metadata"] == {"new": "2"}
    for version in ("2.19", "2.26", "2.54", "2.57", "2.63", "2.71", "2.73", "2.75", "2.90", "2.96"):
        for who in ("demo", "admin"):
            r = stack.post(act, version=version, as_=who, json={"rebuild": {"imageRef": alt}})
            _check(_tempest_schema(version).rebuild_server_with_admin_pass, r)
    assert len(r.json()["server"]["adminPass"]) == 12
    assert stack.post(act, json={"os-stop": None}).status_code == 202
    stack.wait_for(f"{SERVERS}/{sid}", lambda r: r.json()["server"]["status"] == "SHUTOFF")
    assert stack.post(act, json={"rebuild": {"imageRef": image_id(stack)}}).status_code == 202
    assert show(stack, sid)["status"] == "SHUTOFF"  # a stopped server stays stopped
    assert (
        stack.post(act, json={"rebuild": {"imageRef": "6f9619ff-8b86-d011-b42d-00cf4fc964ff"}}).status_code
        == 400
    )
    assert stack.post(act, json={"rebuild": {}}).status_code == 400
    assert stack.post(act, json={"rebuild": {"imageRef": alt, "key_name": None}}).status_code == 400  # < 2.54
    assert (
        stack.post(act, version="2.54", json={"rebuild": {"imageRef": alt, "key_name": None}}).status_code
        == 202
    )
    missing = f"{SERVERS}/00000000-0000-0000-0000-000000000000/action"
    assert stack.post(missing, json={"rebuild": {"imageRef": alt}}).status_code == 404
    building = create(stack, metadata=SLOW)["server"]["id"]
    r = stack.post(f"{SERVERS}/{building}/action", json={"rebuild": {"imageRef": alt}})
    assert r.status_code == 409


def test_create_image(stack: Api) -> None:
    sid = create(stack, "snap-me")["server"]["id"]
    make_active(stack, sid)
    act = f"{SERVERS}/{sid}/action"
    r = stack.post(act, json={"createImage": {"name": "snap-1", "metadata": {"purpose": "test"}}})
    assert r.status_code == 202, r.text
    image_id = r.headers["Location"].rsplit("/", 1)[-1]
    image = stack.get(f"/image/v2/images/{image_id}").json()
    assert image["status"] == "active" and image["name"] == "snap-1" and image["visibility"] == "private"
    assert image["instance_uuid"] == sid and image["image_type"] == "snapshot" and image["purpose"] == "test"
    assert image["base_image_ref"] == image_id_of_server(stack, sid)
    r = stack.post(act, version="2.45", json={"createImage": {"name": "snap-2"}})
    assert r.status_code == 202 and "Location" not in r.headers
    assert stack.get(f"/image/v2/images/{r.json()['image_id']}").json()["status"] == "active"
    assert stack.post(act, json={"createImage": {}}).status_code == 400
    building = create(stack, metadata=SLOW)["server"]["id"]
    assert stack.post(f"{SERVERS}/{building}/action", json={"createImage": {"name": "x"}}).status_code == 409
    # a server booted from the snapshot
    snap = create(stack, "from-snap", imageRef=image_id)["server"]["id"]
    make_active(stack, snap)


def image_id_of_server(stack: Api, sid: str) -> str:
    return str(show(stack, sid)["image"]["id"])


def test_odd_inputs_are_never_a_500(stack: Api) -> None:
    sid = create(stack)["server"]["id"]
    image = image_id(stack)
    posts: list[tuple[str, Any, str]] = [
        (
            SERVERS,
            {"server": {"name": "x", "imageRef": image, "flavorRef": "1", "min_count": "9" * 30}},
            "2.1",
        ),
        (
            SERVERS,
            {
                "server": {
                    "name": "x",
                    "imageRef": image,
                    "flavorRef": 1,
                    "block_device_mapping_v2": [
                        {
                            "boot_index": "9" * 30,
                            "source_type": "blank",
                            "destination_type": "local",
                            "volume_size": "9" * 30,
                        }
                    ],
                }
            },
            "2.1",
        ),
        (SERVERS, {"server": {"name": "x" * 10, "imageRef": image, "flavorRef": "1" * 300}}, "2.1"),
        (
            SERVERS,
            {"server": {"name": "x", "imageRef": image, "flavorRef": "1", "accessIPv4": "010.1.2.3"}},
            "2.1",
        ),
        (
            SERVERS,
            {
                "server": {"name": "x", "imageRef": image, "flavorRef": "1", "networks": "none"},
                "os:scheduler_hints": {
                    "group": ["6f9619ff-8b86-d011-b42d-00cf4fc964ff"],
                    "extra": {"a": [1]},
                },
            },
            "2.37",
        ),
        (
            SERVERS,
            {"server": {"name": "x", "imageRef": image, "flavorRef": "1", "key_name": "k" * 255}},
            "2.1",
        ),
        (f"{SERVERS}/{sid}/action", {"lock": "soon"}, "2.73"),
        (f"{SERVERS}/{sid}/action", {"reboot": None}, "2.1"),
        (f"{SERVERS}/{sid}/action", [], "2.1"),
        (f"{SERVERS}/{sid}/metadata", {"metadata": "x"}, "2.1"),
        (f"{SERVERS}/{'x' * 300}/action", {"os-stop": None}, "2.1"),
    ]
    for path, body, version in posts:
        r = stack.post(path, json=body, version=version)
        assert 400 <= r.status_code < 500, (path, body, r.text)  # refused, never a crash
    gets = [
        "?limit=99999999999",
        "?changes-since=2020-13-45",
        "?sort_key=display_name&sort_dir=up",
        "?marker=" + "m" * 300,
        "?ip=%28",
        "?tags=" + "t," * 100,
        "/detail?flavor=" + "f" * 500,
    ]
    for query in gets:
        assert stack.get(f"{SERVERS}{query}", version="2.26").status_code < 500, query
    for path in (
        f"{SERVERS}/{'x' * 300}",
        f"{SERVERS}/{sid}/os-instance-actions?limit=abc&changes-since=x",
        f"{SERVERS}/{sid}/tags/{'t' * 100}",
        f"{SERVERS}/{sid}/ips/nowhere",
    ):
        assert stack.get(path, version="2.66").status_code < 500, path


def test_create_backup_with_rotation(stack: Api) -> None:
    sid = create(stack, "backed-up")["server"]["id"]
    make_active(stack, sid)
    act = f"{SERVERS}/{sid}/action"
    made = []
    for i in range(3):
        r = stack.post(
            act,
            version="2.45",
            json={"createBackup": {"name": f"b{i}", "backup_type": "daily", "rotation": 2}},
        )
        assert r.status_code == 202, r.text
        made.append(r.json()["image_id"])
    listed = stack.get(
        f"/image/v2/images?instance_uuid={sid}&image_type=backup&sort_key=created_at&sort_dir=asc"
    ).json()["images"]
    assert [i["name"] for i in listed] == ["b1", "b2"]  # the oldest was rotated away
    assert stack.get(f"/image/v2/images/{made[0]}").status_code == 404
    r = stack.post(act, json={"createBackup": {"name": "b", "backup_type": "daily", "rotation": 0}})
    assert r.status_code == 202 and "Location" not in r.headers
    assert stack.get(f"/image/v2/images?instance_uuid={sid}&image_type=backup").json()["images"] == []
    assert stack.post(act, json={"createBackup": {"name": "b", "backup_type": "daily"}}).status_code == 400
    assert (
        stack.post(
            act, json={"createBackup": {"name": "b", "backup_type": "daily", "rotation": -1}}
        ).status_code
        == 400
    )


def test_host_status(stack: Api) -> None:
    sid = create(stack)["server"]["id"]
    make_active(stack, sid)
    server = show(stack, sid, as_="admin", version="2.16")
    assert server["host_status"] == "UP"
    assert "host_status" not in show(stack, sid, version="2.16")  # admins only
    host = server["OS-EXT-SRV-ATTR:host"]
    services = stack.get(
        f"/compute/v2.1/os-services?binary=nova-compute&host={host}", as_="admin", version="2.53"
    ).json()["services"]
    r = stack.put(
        f"/compute/v2.1/os-services/{services[0]['id']}",
        as_="admin",
        version="2.53",
        json={"status": "disabled", "disabled_reason": "maintenance"},
    )
    assert r.status_code == 200, r.text
    assert show(stack, sid, as_="admin", version="2.16")["host_status"] == "MAINTENANCE"
    listed = stack.get(f"{SERVERS}/detail", as_="admin", version="2.16", params={"all_tenants": "1"}).json()
    assert {s["host_status"] for s in listed["servers"] if s["id"] == sid} == {"MAINTENANCE"}


def test_rescue_and_unrescue(stack: Api) -> None:
    sid = create(stack)["server"]["id"]
    make_active(stack, sid)
    act = f"{SERVERS}/{sid}/action"
    r = stack.post(act, json={"rescue": {"adminPass": "rescue-pw"}})
    assert r.status_code == 200 and r.json() == {"adminPass": "rescue-pw"}
    _check(_tempest_schema("2.1").rescue_server_with_admin_pass, r)
    assert show(stack, sid)["status"] == "RESCUE"
    r = stack.post(act, json={"rescue": None})
    assert r.status_code == 409 and "while it is in vm_state rescued" in r.text
    assert stack.post(act, json={"unrescue": None}).status_code == 202
    assert show(stack, sid)["status"] == "ACTIVE"
    assert stack.post(act, json={"unrescue": None}).status_code == 409
    r = stack.post(act, json={"rescue": {"rescue_image_ref": "6f9619ff-8b86-d011-b42d-00cf4fc964ff"}})
    assert r.status_code == 400
    assert len(stack.post(act, json={"rescue": None}).json()["adminPass"]) == 12
