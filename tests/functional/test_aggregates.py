"""Host aggregates through /os-aggregates (admin): views per microversion, hosts, metadata,
zone conflicts, the placement mirror, and availability zones listed from aggregates."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api

AGG = "/compute/v2.1/os-aggregates"
AZ = "/compute/v2.1/os-availability-zone"


@pytest.fixture
def cloud(stack_factory: Any) -> Api:
    return stack_factory(fake_hosts=3)  # type: ignore[no-any-return]


def _create(api: Api, name: str, zone: str | None = None, version: str = "2.41") -> Any:
    body: dict[str, Any] = {"name": name}
    if zone is not None:
        body["availability_zone"] = zone
    return api.post(AGG, as_="admin", version=version, json={"aggregate": body})


def _action(api: Api, agg_id: int, body: dict[str, Any], version: str = "2.41") -> Any:
    return api.post(f"{AGG}/{agg_id}/action", as_="admin", version=version, json=body)


def test_create_show_list_with_uuid_from_241(cloud: Api) -> None:
    r = _create(cloud, "agg1", "az1")
    assert r.status_code == 200, r.text
    agg = r.json()["aggregate"]
    assert set(agg) == {
        "availability_zone",
        "created_at",
        "deleted",
        "deleted_at",
        "id",
        "name",
        "updated_at",
        "uuid",
    }
    assert agg["availability_zone"] == "az1" and agg["deleted"] is False
    shown = cloud.get(f"{AGG}/{agg['id']}", as_="admin", version="2.41").json()["aggregate"]
    assert shown["hosts"] == [] and shown["metadata"] == {"availability_zone": "az1"}
    assert shown["uuid"] == agg["uuid"]
    old = cloud.get(f"{AGG}/{agg['id']}", as_="admin", version="2.40").json()["aggregate"]
    assert "uuid" not in old
    listed = cloud.get(AGG, as_="admin").json()["aggregates"]
    assert [a["name"] for a in listed] == ["agg1"] and "hosts" in listed[0]


def test_members_are_forbidden(cloud: Api) -> None:
    r = cloud.get(AGG)
    assert r.status_code == 403
    assert "os_compute_api:os-aggregates:index" in r.json()["forbidden"]["message"]
    assert cloud.post(AGG, json={"aggregate": {"name": "x"}}).status_code == 403


def test_duplicate_name_is_409_and_bad_bodies_are_400(cloud: Api) -> None:
    assert _create(cloud, "dup").status_code == 200
    r = _create(cloud, "dup")
    assert r.status_code == 409
    assert r.json()["conflictingRequest"]["message"] == "Aggregate dup already exists."
    for body in (
        {"name": ""},
        {"name": "x" * 256},
        {"name": " x"},
        {"name": "x", "availability_zone": "a:b"},
        {"name": "x", "bogus": 1},
        {},
    ):
        assert cloud.post(AGG, as_="admin", json={"aggregate": body}).status_code == 400, body
    assert (
        cloud.post(AGG, as_="admin", content=b"[", headers={"Content-Type": "application/json"}).status_code
        == 400
    )


def test_ids_must_be_integers_and_unknown_is_404(cloud: Api) -> None:
    r = cloud.get(f"{AGG}/abc", as_="admin")
    assert r.status_code == 400
    r = cloud.get(f"{AGG}/999", as_="admin")
    assert r.status_code == 404
    assert r.json()["itemNotFound"]["message"] == "Aggregate 999 could not be found."
    assert cloud.get(f"{AGG}/99999999999999999999", as_="admin").status_code == 404


def test_add_and_remove_host(cloud: Api) -> None:
    agg_id = _create(cloud, "hosts").json()["aggregate"]["id"]
    r = _action(cloud, agg_id, {"add_host": {"host": "fake-host-1"}})
    assert r.status_code == 200, r.text
    assert r.json()["aggregate"]["hosts"] == ["fake-host-1"]
    r = _action(cloud, agg_id, {"add_host": {"host": "fake-host-1"}})
    assert r.status_code == 409
    assert r.json()["conflictingRequest"]["message"] == f"Aggregate {agg_id} already has host fake-host-1."
    r = _action(cloud, agg_id, {"add_host": {"host": "no-such-host"}})
    assert r.status_code == 404
    assert r.json()["itemNotFound"]["message"] == "Compute host no-such-host could not be found."
    # an aggregate with hosts cannot be deleted (Nova: 400)
    r = cloud.delete(f"{AGG}/{agg_id}", as_="admin")
    assert r.status_code == 400
    assert "Host aggregate is not empty" in r.json()["badRequest"]["message"]
    r = _action(cloud, agg_id, {"remove_host": {"host": "fake-host-1"}})
    assert r.status_code == 200 and r.json()["aggregate"]["hosts"] == []
    r = _action(cloud, agg_id, {"remove_host": {"host": "fake-host-1"}})
    assert r.status_code == 404
    assert r.json()["itemNotFound"]["message"] == f"Cannot remove host fake-host-1 in aggregate {agg_id}"
    r = cloud.delete(f"{AGG}/{agg_id}", as_="admin")
    assert r.status_code == 200 and r.content == b""
    assert cloud.get(f"{AGG}/{agg_id}", as_="admin").status_code == 404


def test_unknown_action_and_invalid_action_bodies(cloud: Api) -> None:
    agg_id = _create(cloud, "acts").json()["aggregate"]["id"]
    assert _action(cloud, agg_id, {"explode": {}}).status_code == 400
    assert _action(cloud, agg_id, {"add_host": {"host": "bad host!"}}).status_code == 400
    assert _action(cloud, agg_id, {"add_host": {}}).status_code == 400
    assert _action(cloud, agg_id, {"set_metadata": {"metadata": {"k": 1}}}).status_code == 400
    assert _action(cloud, 999, {"add_host": {"host": "fake-host-1"}}).status_code == 404


def test_set_metadata_adds_replaces_and_removes_keys(cloud: Api) -> None:
    agg_id = _create(cloud, "meta").json()["aggregate"]["id"]
    r = _action(cloud, agg_id, {"set_metadata": {"metadata": {"ssd": "true", "gpu": "no"}}})
    assert r.status_code == 200, r.text
    assert r.json()["aggregate"]["metadata"] == {"ssd": "true", "gpu": "no"}
    r = _action(cloud, agg_id, {"set_metadata": {"metadata": {"gpu": None, "availability_zone": "az9"}}})
    meta = r.json()["aggregate"]["metadata"]
    assert meta == {"ssd": "true", "availability_zone": "az9"}
    assert r.json()["aggregate"]["availability_zone"] == "az9"
    # a zone cannot be emptied
    r = _action(cloud, agg_id, {"set_metadata": {"metadata": {"availability_zone": None}}})
    assert r.status_code == 400
    assert "does not support empty named availability zone" in r.json()["badRequest"]["message"]


def test_update_name_and_zone(cloud: Api) -> None:
    agg_id = _create(cloud, "old").json()["aggregate"]["id"]
    _create(cloud, "taken")
    renamed = cloud.put(f"{AGG}/{agg_id}", as_="admin", json={"aggregate": {"name": "renamed"}}).json()[
        "aggregate"
    ]
    assert renamed["name"] == "renamed" and renamed["updated_at"] is not None
    r = cloud.put(
        f"{AGG}/{agg_id}", as_="admin", json={"aggregate": {"name": "new", "availability_zone": "az2"}}
    )
    assert r.status_code == 200, r.text
    assert r.json()["aggregate"]["name"] == "new" and r.json()["aggregate"]["availability_zone"] == "az2"
    assert cloud.put(f"{AGG}/{agg_id}", as_="admin", json={"aggregate": {"name": "taken"}}).status_code == 409
    assert cloud.put(f"{AGG}/{agg_id}", as_="admin", json={"aggregate": {}}).status_code == 400
    assert cloud.put(f"{AGG}/999", as_="admin", json={"aggregate": {"name": "z"}}).status_code == 404


def test_a_host_cannot_be_in_two_zones(cloud: Api) -> None:
    a1 = _create(cloud, "z1", "az1").json()["aggregate"]["id"]
    a2 = _create(cloud, "z2", "az2").json()["aggregate"]["id"]
    plain = _create(cloud, "plain").json()["aggregate"]["id"]
    assert _action(cloud, a1, {"add_host": {"host": "fake-host-1"}}).status_code == 200
    r = _action(cloud, a2, {"add_host": {"host": "fake-host-1"}})
    assert r.status_code == 409
    assert (
        "One or more hosts already in availability zone(s) ['az1']"
        in r.json()["conflictingRequest"]["message"]
    )
    # a zone-less aggregate may share the host, but may not then take another zone
    assert _action(cloud, plain, {"add_host": {"host": "fake-host-1"}}).status_code == 200
    r = _action(cloud, plain, {"set_metadata": {"metadata": {"availability_zone": "az2"}}})
    assert r.status_code == 400
    r = cloud.put(f"{AGG}/{plain}", as_="admin", json={"aggregate": {"availability_zone": "az2"}})
    assert r.status_code == 400
    assert (
        _action(cloud, plain, {"set_metadata": {"metadata": {"availability_zone": "az1"}}}).status_code == 200
    )


def test_hosts_are_mirrored_into_placement_aggregates(cloud: Api) -> None:
    agg = _create(cloud, "mirror", "az1").json()["aggregate"]
    assert _action(cloud, agg["id"], {"add_host": {"host": "fake-host-2"}}).status_code == 200
    headers = {"OpenStack-API-Version": "placement 1.19"}
    rps = cloud.get(f"/placement/resource_providers?member_of={agg['uuid']}", as_="admin", headers=headers)
    assert rps.status_code == 200, rps.text
    assert [rp["name"] for rp in rps.json()["resource_providers"]] == ["fake-host-2"]
    _action(cloud, agg["id"], {"remove_host": {"host": "fake-host-2"}})
    rps = cloud.get(f"/placement/resource_providers?member_of={agg['uuid']}", as_="admin", headers=headers)
    assert rps.json()["resource_providers"] == []


def test_availability_zones_come_from_aggregates(cloud: Api) -> None:
    agg_id = _create(cloud, "zoned", "az1").json()["aggregate"]["id"]
    # a zone without hosts is not listed
    names = [z["zoneName"] for z in cloud.get(AZ).json()["availabilityZoneInfo"]]
    assert names == ["nova"]
    _action(cloud, agg_id, {"add_host": {"host": "fake-host-2"}})
    listed = cloud.get(AZ).json()["availabilityZoneInfo"]
    assert listed == [
        {"zoneName": "az1", "zoneState": {"available": True}, "hosts": None},
        {"zoneName": "nova", "zoneState": {"available": True}, "hosts": None},
    ]
    detail = {z["zoneName"]: z for z in cloud.get(f"{AZ}/detail", as_="admin").json()["availabilityZoneInfo"]}
    assert set(detail) == {"az1", "nova", "internal"}
    assert set(detail["az1"]["hosts"]) == {"fake-host-2"}
    assert set(detail["nova"]["hosts"]) == {"fake-host-1", "fake-host-3"}
    state = detail["az1"]["hosts"]["fake-host-2"]["nova-compute"]
    assert state["available"] is True and state["active"] is True


def test_servers_asking_for_a_zone_land_on_its_hosts(cloud: Api) -> None:
    agg_id = _create(cloud, "zoned", "az1").json()["aggregate"]["id"]
    _action(cloud, agg_id, {"add_host": {"host": "fake-host-2"}})
    image = cloud.get("/image/v2/images?name=novalite-tiny").json()["images"][0]["id"]
    for _ in range(2):
        body = {
            "server": {
                "name": "vm",
                "imageRef": image,
                "flavorRef": "1",
                "networks": "none",
                "availability_zone": "az1",
            }
        }
        r = cloud.post("/compute/v2.1/servers", version="2.96", json=body)
        assert r.status_code == 202, r.text
        server = cloud.wait_for(
            f"/compute/v2.1/servers/{r.json()['server']['id']}",
            as_="admin",
            version="2.96",
            predicate=lambda r: r.json()["server"]["status"] in ("ACTIVE", "ERROR"),
        ).json()["server"]
        assert server["status"] == "ACTIVE"
        assert server["OS-EXT-SRV-ATTR:host"] == "fake-host-2"
        assert server["OS-EXT-AZ:availability_zone"] == "az1"
