"""Server groups through /os-server-groups: bodies per microversion, validation, visibility,
paging, delete and the server_groups quota."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api

SG = "/compute/v2.1/os-server-groups"


def _create(stack: Api, body: dict[str, Any], version: str = "2.64", as_: str = "demo") -> Any:
    return stack.post(SG, as_=as_, version=version, json={"server_group": body})


def test_create_at_264_has_policy_and_rules(stack: Api) -> None:
    r = _create(stack, {"name": "g1", "policy": "anti-affinity", "rules": {"max_server_per_host": 2}})
    assert r.status_code == 200, r.text
    group = r.json()["server_group"]
    assert set(group) == {"id", "name", "policy", "rules", "members", "project_id", "user_id"}
    assert group["policy"] == "anti-affinity"
    assert group["rules"] == {"max_server_per_host": 2}
    assert group["members"] == []
    assert group["project_id"] == stack.ids["demo_project"]
    assert group["user_id"] == stack.ids["demo_user"]
    shown = stack.get(f"{SG}/{group['id']}", version="2.64").json()["server_group"]
    assert shown == group


def test_rules_default_to_empty_and_string_integers_are_accepted(stack: Api) -> None:
    plain = _create(stack, {"name": "plain", "policy": "affinity"}).json()["server_group"]
    assert plain["rules"] == {}
    r = _create(stack, {"name": "s", "policy": "anti-affinity", "rules": {"max_server_per_host": "3"}})
    assert r.json()["server_group"]["rules"] == {"max_server_per_host": 3}


def test_same_group_seen_through_older_microversions(stack: Api) -> None:
    gid = _create(stack, {"name": "g", "policy": "affinity"}).json()["server_group"]["id"]
    old = stack.get(f"{SG}/{gid}", version="2.1").json()["server_group"]
    assert old == {"id": gid, "name": "g", "policies": ["affinity"], "members": [], "metadata": {}}
    v213 = stack.get(f"{SG}/{gid}", version="2.13").json()["server_group"]
    assert v213["project_id"] == stack.ids["demo_project"] and v213["policies"] == ["affinity"]


def test_create_before_264_takes_a_policies_list(stack: Api) -> None:
    r = _create(stack, {"name": "old", "policies": ["anti-affinity"]}, version="2.1")
    assert r.status_code == 200, r.text
    assert r.json()["server_group"]["policies"] == ["anti-affinity"]
    assert r.json()["server_group"]["metadata"] == {}
    # 2.64 shape is refused before 2.64 and vice versa
    assert _create(stack, {"name": "x", "policy": "affinity"}, version="2.63").status_code == 400
    assert _create(stack, {"name": "x", "policies": ["affinity"]}, version="2.64").status_code == 400


@pytest.mark.parametrize("version, ok", [("2.14", False), ("2.15", True)])
def test_soft_policies_from_215(stack: Api, version: str, ok: bool) -> None:
    r = _create(stack, {"name": "soft", "policies": ["soft-anti-affinity"]}, version=version)
    assert r.status_code == (200 if ok else 400), r.text


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "policies": ["affinity", "anti-affinity"]},
        {"name": "x", "policies": []},
        {"name": "x", "policies": ["legacy"]},
        {"name": "", "policies": ["affinity"]},
        {"name": " lead", "policies": ["affinity"]},
        {"name": "x" * 256, "policies": ["affinity"]},
        {"name": "x"},
        {"name": "x", "policies": ["affinity"], "extra": 1},
    ],
)
def test_invalid_bodies_before_264_are_400(stack: Api, body: dict[str, Any]) -> None:
    r = _create(stack, body, version="2.63")
    assert r.status_code == 400, r.text
    assert "badRequest" in r.json()


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "policy": "affinity", "rules": {"max_server_per_host": 0}},
        {"name": "x", "policy": "anti-affinity", "rules": {"max_server_per_host": -1}},
        {"name": "x", "policy": "anti-affinity", "rules": {"other": 1}},
        {"name": "x", "policy": "anti-affinity", "rules": {"max_server_per_host": "a"}},
        {"name": "x", "policy": ["affinity"]},
    ],
)
def test_invalid_bodies_at_264_are_400(stack: Api, body: dict[str, Any]) -> None:
    assert _create(stack, body).status_code == 400


def test_rules_only_for_anti_affinity(stack: Api) -> None:
    r = _create(stack, {"name": "x", "policy": "affinity", "rules": {"max_server_per_host": 2}})
    assert r.status_code == 400
    assert r.json()["badRequest"]["message"] == "Only anti-affinity policy supports rules."


def test_malformed_json_is_400(stack: Api) -> None:
    r = stack.post(SG, content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400


def test_other_projects_group_is_404_and_admin_sees_it(stack: Api) -> None:
    gid = _create(stack, {"name": "mine", "policy": "affinity"}, as_="admin").json()["server_group"]["id"]
    r = stack.get(f"{SG}/{gid}")
    assert r.status_code == 404
    assert r.json()["itemNotFound"]["message"] == f"Instance group {gid} could not be found."
    assert stack.delete(f"{SG}/{gid}").status_code == 404
    demo_gid = _create(stack, {"name": "demo's", "policy": "affinity"}).json()["server_group"]["id"]
    assert stack.get(f"{SG}/{demo_gid}", as_="admin").status_code == 200


def test_list_is_per_project_and_all_projects_is_for_admins(stack: Api) -> None:
    _create(stack, {"name": "a", "policy": "affinity"}, as_="admin")
    _create(stack, {"name": "d", "policy": "affinity"})
    names = lambda r: sorted(g["name"] for g in r.json()["server_groups"])  # noqa: E731
    assert names(stack.get(SG)) == ["d"]
    assert names(stack.get(SG + "?all_projects=True")) == ["d"]  # ignored for members
    assert names(stack.get(SG, as_="admin")) == ["a"]
    assert names(stack.get(SG + "?all_projects=True", as_="admin")) == ["a", "d"]


def test_list_limit_and_offset(stack: Api) -> None:
    for i in range(4):
        _create(stack, {"name": f"g{i}", "policy": "affinity"})
    page = stack.get(SG + "?limit=2&offset=1", version="2.64").json()["server_groups"]
    assert [g["name"] for g in page] == ["g1", "g2"]
    assert stack.get(SG + "?limit=abc").status_code == 400
    assert stack.get(SG + "?offset=-1").status_code == 400
    # 2.75: unknown query parameters are refused
    assert stack.get(SG + "?foo=1", version="2.74").status_code == 200
    assert stack.get(SG + "?foo=1", version="2.75").status_code == 400


def test_delete_is_204_then_404(stack: Api) -> None:
    gid = _create(stack, {"name": "gone", "policy": "affinity"}).json()["server_group"]["id"]
    r = stack.delete(f"{SG}/{gid}")
    assert r.status_code == 204 and r.content == b""
    assert stack.get(f"{SG}/{gid}").status_code == 404
    assert stack.delete(f"{SG}/{gid}").status_code == 404
    assert stack.get(SG).json()["server_groups"] == []


def test_server_groups_quota(stack: Api) -> None:
    r = stack.put(
        f"/compute/v2.1/os-quota-sets/{stack.ids['demo_project']}",
        as_="admin",
        json={"quota_set": {"server_groups": 2}},
    )
    assert r.status_code == 200, r.text
    first = _create(stack, {"name": "q1", "policy": "affinity"}).json()["server_group"]["id"]
    assert _create(stack, {"name": "q2", "policy": "affinity"}).status_code == 200
    r = _create(stack, {"name": "q3", "policy": "affinity"})
    assert r.status_code == 403
    assert r.json()["forbidden"]["message"] == "Quota exceeded, too many server groups."
    # usage is visible in the quota detail, and deleting frees a slot
    detail = stack.get(f"/compute/v2.1/os-quota-sets/{stack.ids['demo_project']}/detail").json()["quota_set"]
    assert detail["server_groups"]["in_use"] == 2
    assert stack.delete(f"{SG}/{first}").status_code == 204
    assert _create(stack, {"name": "q3", "policy": "affinity"}).status_code == 200


# --- membership through server create ---------------------------------------------------------


def _boot(stack: Api, group_id: str) -> Any:
    image = stack.get("/image/v2/images?name=novalite-tiny").json()["images"][0]["id"]
    body = {
        "server": {"name": "member", "imageRef": image, "flavorRef": "1", "networks": "none"},
        "OS-SCH-HNT:scheduler_hints": {"group": group_id},
    }
    return stack.post("/compute/v2.1/servers", version="2.96", json=body)


def _settled(stack: Api, server_id: str) -> Any:
    return stack.wait_for(
        f"/compute/v2.1/servers/{server_id}",
        version="2.96",
        predicate=lambda r: r.json()["server"]["status"] in ("ACTIVE", "ERROR"),
    )


def test_servers_join_the_group_and_deleted_ones_leave(stack_factory: Any) -> None:
    cloud = stack_factory(fake_hosts=2)
    gid = _create(cloud, {"name": "members", "policy": "anti-affinity"}).json()["server_group"]["id"]
    first = _boot(cloud, gid)
    assert first.status_code == 202, first.text
    first_id = first.json()["server"]["id"]
    shown = _settled(cloud, first_id).json()["server"]
    assert shown["server_groups"] == [gid]
    second_id = _boot(cloud, gid).json()["server"]["id"]
    _settled(cloud, second_id)
    members = cloud.get(f"{SG}/{gid}", version="2.64").json()["server_group"]["members"]
    assert sorted(members) == sorted([first_id, second_id])
    assert cloud.delete(f"/compute/v2.1/servers/{first_id}").status_code == 204
    cloud.wait_for(f"/compute/v2.1/servers/{first_id}", predicate=lambda r: r.status_code == 404)
    assert cloud.get(f"{SG}/{gid}", version="2.64").json()["server_group"]["members"] == [second_id]
    listed = cloud.get(SG, version="2.64").json()["server_groups"]
    assert listed[0]["members"] == [second_id]


def test_server_group_members_quota(stack: Api) -> None:
    r = stack.put(
        f"/compute/v2.1/os-quota-sets/{stack.ids['demo_project']}",
        as_="admin",
        json={"quota_set": {"server_group_members": 1}},
    )
    assert r.status_code == 200, r.text
    gid = _create(stack, {"name": "small", "policy": "affinity"}).json()["server_group"]["id"]
    assert _boot(stack, gid).status_code == 202
    r = _boot(stack, gid)
    assert r.status_code == 403
    assert r.json()["forbidden"]["message"] == "Quota exceeded, too many servers in group"
    assert len(stack.get(f"{SG}/{gid}", version="2.64").json()["server_group"]["members"]) == 1


def test_unknown_group_hint_is_400(stack: Api) -> None:
    r = _boot(stack, "11111111-2222-3333-4444-555555555555")
    assert r.status_code == 400
