"""The Placement REST API under /placement: version negotiation, providers, inventories with
generation checks, allocations with consumer generations, usages, candidates, traits,
aggregates, and the error envelope."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api

P = "/placement"
CONSUMER = "11111111-2222-3333-4444-555555555555"


def h(version: str) -> dict[str, str]:
    return {"OpenStack-API-Version": f"placement {version}"}


@pytest.fixture
def cloud(stack_factory: Any) -> Api:
    return stack_factory(fake_hosts=2)  # type: ignore[no-any-return]


def _providers(api: Api, query: str = "", version: str = "1.39") -> list[dict[str, Any]]:
    r = api.get(f"{P}/resource_providers{query}", as_="admin", headers=h(version))
    assert r.status_code == 200, r.text
    return r.json()["resource_providers"]  # type: ignore[no-any-return]


def _rp(api: Api, name: str = "fake-host-1") -> dict[str, Any]:
    return next(rp for rp in _providers(api) if rp["name"] == name)


def _allocate(api: Api, rp: str, vcpu: int, generation: int | None, version: str = "1.28") -> Any:
    return api.put(
        f"{P}/allocations/{CONSUMER}",
        as_="admin",
        headers=h(version),
        json={
            "allocations": {rp: {"resources": {"VCPU": vcpu}}},
            "project_id": "p1",
            "user_id": "u1",
            "consumer_generation": generation,
        },
    )


# --- versions and errors ---------------------------------------------------------------------


def test_root_document_needs_no_token(cloud: Api) -> None:
    r = cloud.get(f"{P}/", as_=None)
    assert r.status_code == 200
    version = r.json()["versions"][0]
    assert (version["id"], version["min_version"], version["max_version"], version["status"]) == (
        "v1.0",
        "1.0",
        "1.39",
        "CURRENT",
    )
    assert r.headers["openstack-api-version"] == "placement 1.0"


def test_microversion_negotiation(cloud: Api) -> None:
    r = cloud.get(f"{P}/resource_providers", as_="admin", headers=h("latest"))
    assert r.headers["openstack-api-version"] == "placement 1.39"
    assert "openstack-api-version" in r.headers["vary"].lower()
    r = cloud.get(f"{P}/", as_=None, headers=h("1.40"))
    assert r.status_code == 406
    error = r.json()["errors"][0]
    assert error["max_version"] == "1.39" and error["min_version"] == "1.0"
    assert cloud.get(f"{P}/", as_=None, headers=h("one")).status_code == 400


def test_admin_only_and_error_envelope(cloud: Api) -> None:
    r = cloud.get(f"{P}/resource_providers", headers=h("1.29"))
    assert r.status_code == 403
    error = r.json()["errors"][0]
    assert set(error) == {"status", "title", "detail", "code", "request_id"}
    assert (
        error["status"] == 403
        and error["title"] == "Forbidden"
        and error["code"] == "placement.undefined_code"
    )
    assert cloud.get(f"{P}/resource_providers", as_=None).status_code == 401
    r = cloud.get(f"{P}/resource_providers/{CONSUMER}", as_="admin")
    assert r.status_code == 404 and "errors" in r.json()


# --- providers ---------------------------------------------------------------------------------


def test_compute_nodes_are_providers_with_links_per_version(cloud: Api) -> None:
    rps = _providers(cloud, version="1.29")
    assert sorted(rp["name"] for rp in rps) == ["fake-host-1", "fake-host-2"]
    assert {link["rel"] for link in rps[0]["links"]} == {
        "self",
        "inventories",
        "usages",
        "aggregates",
        "traits",
        "allocations",
    }
    assert rps[0]["root_provider_uuid"] == rps[0]["uuid"] and rps[0]["parent_provider_uuid"] is None
    old = _providers(cloud, version="1.0")[0]
    assert "root_provider_uuid" not in old and {link["rel"] for link in old["links"]} == {
        "self",
        "inventories",
        "usages",
    }


def test_create_update_delete_provider(cloud: Api) -> None:
    r = cloud.post(f"{P}/resource_providers", as_="admin", headers=h("1.20"), json={"name": "extra"})
    assert r.status_code == 200, r.text
    rp = r.json()
    assert rp["generation"] == 0 and rp["name"] == "extra"
    r = cloud.post(f"{P}/resource_providers", as_="admin", headers=h("1.19"), json={"name": "older"})
    assert r.status_code == 201  # Location is absolute: osc-placement follows it as it is
    assert r.headers["location"].startswith("http://testserver/placement/resource_providers/")
    r = cloud.post(f"{P}/resource_providers", as_="admin", headers=h("1.29"), json={"name": "extra"})
    assert r.status_code == 409 and r.json()["errors"][0]["code"] == "placement.duplicate_name"
    child = cloud.post(
        f"{P}/resource_providers",
        as_="admin",
        headers=h("1.29"),
        json={"name": "child", "parent_provider_uuid": rp["uuid"]},
    ).json()
    assert child["root_provider_uuid"] == rp["uuid"]
    assert [c["name"] for c in _providers(cloud, f"?in_tree={child['uuid']}")] == ["extra", "child"]
    r = cloud.put(
        f"{P}/resource_providers/{rp['uuid']}", as_="admin", headers=h("1.29"), json={"name": "renamed"}
    )
    assert r.status_code == 200 and r.json()["name"] == "renamed"
    r = cloud.delete(f"{P}/resource_providers/{rp['uuid']}", as_="admin", headers=h("1.29"))
    assert r.status_code == 409  # it has a child
    assert cloud.delete(f"{P}/resource_providers/{child['uuid']}", as_="admin").status_code == 204
    assert cloud.delete(f"{P}/resource_providers/{rp['uuid']}", as_="admin").status_code == 204
    assert cloud.get(f"{P}/resource_providers/{rp['uuid']}", as_="admin").status_code == 404


@pytest.mark.parametrize(
    "body", [{}, {"name": ""}, {"name": "x" * 201}, {"name": "x", "uuid": "nope"}, {"name": "x", "bogus": 1}]
)
def test_bad_provider_bodies_are_400(cloud: Api, body: dict[str, Any]) -> None:
    assert cloud.post(f"{P}/resource_providers", as_="admin", headers=h("1.29"), json=body).status_code == 400


def test_list_filters(cloud: Api) -> None:
    assert [rp["name"] for rp in _providers(cloud, "?name=fake-host-2")] == ["fake-host-2"]
    assert len(_providers(cloud, "?resources=VCPU:1,MEMORY_MB:1024")) == 2
    assert _providers(cloud, "?resources=VCPU:100000") == []
    assert (
        cloud.get(f"{P}/resource_providers?resources=VCPU", as_="admin", headers=h("1.29")).status_code == 400
    )
    assert cloud.get(f"{P}/resource_providers?bogus=1", as_="admin", headers=h("1.29")).status_code == 400
    r = cloud.get(f"{P}/resource_providers?required=NO_SUCH_TRAIT", as_="admin", headers=h("1.29"))
    assert r.status_code == 400


# --- inventories -------------------------------------------------------------------------------


def test_inventories_with_generation_checks(cloud: Api) -> None:
    rp = _rp(cloud)
    url = f"{P}/resource_providers/{rp['uuid']}/inventories"
    current = cloud.get(url, as_="admin").json()
    assert set(current["inventories"]) == {"VCPU", "MEMORY_MB", "DISK_GB"}
    gen = current["resource_provider_generation"]
    new = dict(current["inventories"])
    new["CUSTOM_GPU"] = {"total": 4}
    r = cloud.put(url, as_="admin", json={"resource_provider_generation": gen, "inventories": new})
    assert r.status_code == 200, r.text
    assert r.json()["resource_provider_generation"] == gen + 1
    assert r.json()["inventories"]["CUSTOM_GPU"]["max_unit"] == 2147483647
    stale = cloud.put(
        url, as_="admin", headers=h("1.29"), json={"resource_provider_generation": gen, "inventories": new}
    )
    assert stale.status_code == 409 and stale.json()["errors"][0]["code"] == "placement.concurrent_update"
    one = cloud.get(f"{url}/CUSTOM_GPU", as_="admin").json()
    assert one["total"] == 4 and one["resource_provider_generation"] == gen + 1
    r = cloud.put(
        f"{url}/CUSTOM_GPU", as_="admin", json={"resource_provider_generation": gen + 1, "total": 8}
    )
    assert r.status_code == 200 and r.json()["total"] == 8
    bad = cloud.put(
        f"{url}/CUSTOM_GPU",
        as_="admin",
        json={"resource_provider_generation": gen + 2, "total": 1, "reserved": 2},
    )
    assert bad.status_code == 400
    assert cloud.delete(f"{url}/CUSTOM_GPU", as_="admin").status_code == 204
    assert cloud.get(f"{url}/CUSTOM_GPU", as_="admin").status_code == 404


def test_post_inventory_and_in_use_inventory_cannot_go(cloud: Api) -> None:
    rp = _rp(cloud)
    url = f"{P}/resource_providers/{rp['uuid']}/inventories"
    gen = cloud.get(url, as_="admin").json()["resource_provider_generation"]
    r = cloud.post(
        url, as_="admin", json={"resource_class": "CUSTOM_X", "total": 2, "resource_provider_generation": gen}
    )
    assert r.status_code == 201 and r.json()["total"] == 2
    assert _allocate(cloud, rp["uuid"], 2, None).status_code == 204
    r = cloud.delete(f"{url}/VCPU", as_="admin", headers=h("1.29"))
    assert r.status_code == 409 and r.json()["errors"][0]["code"] == "placement.inventory.inuse"
    assert cloud.delete(url, as_="admin", headers=h("1.5")).status_code == 409


# --- allocations and usages --------------------------------------------------------------------


def test_allocations_consumer_generations_and_usages(cloud: Api) -> None:
    rp = _rp(cloud)["uuid"]
    assert _allocate(cloud, rp, 2, None).status_code == 204
    shown = cloud.get(f"{P}/allocations/{CONSUMER}", as_="admin", headers=h("1.28")).json()
    assert shown["allocations"][rp]["resources"] == {"VCPU": 2}
    assert shown["consumer_generation"] == 0 and shown["project_id"] == "p1"
    r = _allocate(cloud, rp, 3, None)  # the consumer exists now
    assert r.status_code == 409 and r.json()["errors"][0]["code"] == "placement.concurrent_update"
    assert _allocate(cloud, rp, 3, 0).status_code == 204
    usage = cloud.get(f"{P}/resource_providers/{rp}/usages", as_="admin").json()["usages"]
    assert usage["VCPU"] == 3
    assert cloud.get(f"{P}/usages?project_id=p1", as_="admin", headers=h("1.9")).json() == {
        "usages": {"VCPU": 3}
    }
    grouped = cloud.get(f"{P}/usages?project_id=p1", as_="admin", headers=h("1.38")).json()["usages"]
    assert grouped == {"INSTANCE": {"consumer_count": 1, "VCPU": 3}}
    by_rp = cloud.get(f"{P}/resource_providers/{rp}/allocations", as_="admin").json()["allocations"]
    assert by_rp == {CONSUMER: {"resources": {"VCPU": 3}}}
    assert cloud.delete(f"{P}/allocations/{CONSUMER}", as_="admin").status_code == 204
    assert cloud.delete(f"{P}/allocations/{CONSUMER}", as_="admin").status_code == 404
    assert cloud.get(f"{P}/resource_providers/{rp}/usages", as_="admin").json()["usages"]["VCPU"] == 0


def test_over_capacity_and_unknown_provider(cloud: Api) -> None:
    rp = _rp(cloud)["uuid"]
    assert _allocate(cloud, rp, 100000, None).status_code == 409
    assert cloud.get(f"{P}/allocations/{CONSUMER}", as_="admin").json() == {"allocations": {}}
    r = _allocate(cloud, "99999999-9999-9999-9999-999999999999", 1, None)
    assert r.status_code == 400


def test_old_list_shaped_allocations(cloud: Api) -> None:
    rp = _rp(cloud)["uuid"]
    body = {
        "allocations": [{"resource_provider": {"uuid": rp}, "resources": {"MEMORY_MB": 512}}],
        "project_id": "p",
        "user_id": "u",
    }
    assert (
        cloud.put(f"{P}/allocations/{CONSUMER}", as_="admin", headers=h("1.8"), json=body).status_code == 204
    )
    assert (
        cloud.put(f"{P}/allocations/{CONSUMER}", as_="admin", headers=h("1.12"), json=body).status_code == 400
    )


# --- candidates --------------------------------------------------------------------------------


def test_allocation_candidates(cloud: Api) -> None:
    r = cloud.get(f"{P}/allocation_candidates?resources=VCPU:1,MEMORY_MB:512", as_="admin", headers=h("1.29"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["allocation_requests"]) == 2
    rp = next(iter(body["allocation_requests"][0]["allocations"]))
    assert body["allocation_requests"][0]["allocations"][rp]["resources"] == {"VCPU": 1, "MEMORY_MB": 512}
    summary = body["provider_summaries"][rp]
    assert summary["resources"]["VCPU"] == {"capacity": 256, "used": 0}
    assert summary["root_provider_uuid"] == rp and summary["traits"] == []
    limited = cloud.get(f"{P}/allocation_candidates?resources=VCPU:1&limit=1", as_="admin", headers=h("1.29"))
    assert len(limited.json()["allocation_requests"]) == 1
    old = cloud.get(f"{P}/allocation_candidates?resources=VCPU:1", as_="admin", headers=h("1.10")).json()
    assert isinstance(old["allocation_requests"][0]["allocations"], list)
    assert (
        cloud.get(f"{P}/allocation_candidates?resources=VCPU:1", as_="admin", headers=h("1.9")).status_code
        == 404
    )
    assert cloud.get(f"{P}/allocation_candidates", as_="admin", headers=h("1.29")).status_code == 400


# --- traits and aggregates ---------------------------------------------------------------------


def test_traits(cloud: Api) -> None:
    assert (
        "COMPUTE_STATUS_DISABLED" in cloud.get(f"{P}/traits", as_="admin", headers=h("1.6")).json()["traits"]
    )
    assert cloud.put(f"{P}/traits/CUSTOM_FAST", as_="admin", headers=h("1.6")).status_code == 201
    assert cloud.put(f"{P}/traits/CUSTOM_FAST", as_="admin", headers=h("1.6")).status_code == 204
    assert cloud.put(f"{P}/traits/NOT_CUSTOM", as_="admin", headers=h("1.6")).status_code == 400
    assert cloud.get(f"{P}/traits/CUSTOM_FAST", as_="admin", headers=h("1.6")).status_code == 204
    custom = cloud.get(f"{P}/traits?name=startswith:CUSTOM_", as_="admin", headers=h("1.6")).json()["traits"]
    assert custom == ["CUSTOM_FAST"]
    rp = _rp(cloud)
    url = f"{P}/resource_providers/{rp['uuid']}/traits"
    gen = cloud.get(url, as_="admin", headers=h("1.6")).json()["resource_provider_generation"]
    r = cloud.put(
        url,
        as_="admin",
        headers=h("1.6"),
        json={"traits": ["CUSTOM_FAST"], "resource_provider_generation": gen},
    )
    assert r.status_code == 200 and r.json()["traits"] == ["CUSTOM_FAST"]
    assert (
        cloud.put(
            url,
            as_="admin",
            headers=h("1.6"),
            json={"traits": ["CUSTOM_NOPE"], "resource_provider_generation": gen + 1},
        ).status_code
        == 400
    )
    assert [p["name"] for p in _providers(cloud, "?required=CUSTOM_FAST")] == ["fake-host-1"]
    assert [p["name"] for p in _providers(cloud, "?required=!CUSTOM_FAST")] == ["fake-host-2"]
    assert cloud.delete(f"{P}/traits/CUSTOM_FAST", as_="admin", headers=h("1.6")).status_code == 409
    assert cloud.delete(f"{P}/traits/HW_CPU_X86_AVX", as_="admin", headers=h("1.6")).status_code == 400
    assert cloud.delete(url, as_="admin", headers=h("1.6")).status_code == 204
    assert cloud.delete(f"{P}/traits/CUSTOM_FAST", as_="admin", headers=h("1.6")).status_code == 204


def test_provider_aggregates_with_generation(cloud: Api) -> None:
    rp = _rp(cloud)
    url = f"{P}/resource_providers/{rp['uuid']}/aggregates"
    agg = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
    current = cloud.get(url, as_="admin", headers=h("1.19")).json()
    assert current["aggregates"] == []
    gen = current["resource_provider_generation"]
    r = cloud.put(
        url, as_="admin", headers=h("1.19"), json={"aggregates": [agg], "resource_provider_generation": gen}
    )
    assert r.status_code == 200 and r.json()["aggregates"] == [agg]
    stale = cloud.put(
        url, as_="admin", headers=h("1.19"), json={"aggregates": [], "resource_provider_generation": gen}
    )
    assert stale.status_code == 409
    assert [p["name"] for p in _providers(cloud, f"?member_of=in:{agg}")] == ["fake-host-1"]
    assert [p["name"] for p in _providers(cloud, f"?member_of=!{agg}")] == ["fake-host-2"]
    r = cloud.put(url, as_="admin", headers=h("1.1"), json=[])
    assert r.status_code == 200 and r.json() == {"aggregates": []}


def test_resource_classes(cloud: Api) -> None:
    r = cloud.get(f"{P}/resource_classes", as_="admin", headers=h("1.2"))
    assert r.status_code == 200
    names = [c["name"] for c in r.json()["resource_classes"]]
    assert {"VCPU", "MEMORY_MB", "DISK_GB"} <= set(names)
    rp = _rp(cloud)
    url = f"{P}/resource_providers/{rp['uuid']}/inventories"
    gen = cloud.get(url, as_="admin").json()["resource_provider_generation"]
    cloud.post(
        url,
        as_="admin",
        json={"resource_class": "CUSTOM_DISK", "total": 2, "resource_provider_generation": gen},
    )
    assert (
        cloud.get(f"{P}/resource_classes/CUSTOM_DISK", as_="admin", headers=h("1.2")).json()["name"]
        == "CUSTOM_DISK"
    )
    assert cloud.get(f"{P}/resource_classes/CUSTOM_NONE", as_="admin", headers=h("1.2")).status_code == 404
    assert cloud.get(f"{P}/resource_classes", as_="admin", headers=h("1.1")).status_code == 404
