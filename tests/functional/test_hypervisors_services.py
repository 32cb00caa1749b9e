"""os-hypervisors and os-services (admin): views per microversion, paging, search, usage from
placement, enabling/disabling (with the COMPUTE_STATUS_DISABLED trait), forced down, delete,
and up/down from the heartbeat age."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api

HV = "/compute/v2.1/os-hypervisors"
SV = "/compute/v2.1/os-services"
PLACEMENT = {"OpenStack-API-Version": "placement 1.29"}


@pytest.fixture
def cloud(stack_factory: Any) -> Api:
    return stack_factory(fake_hosts=3)  # type: ignore[no-any-return]


def _services(api: Api, version: str = "2.69", query: str = "") -> list[dict[str, Any]]:
    r = api.get(SV + query, as_="admin", version=version)
    assert r.status_code == 200, r.text
    return r.json()["services"]  # type: ignore[no-any-return]


def _compute(api: Api, host: str, version: str = "2.69") -> dict[str, Any]:
    return next(s for s in _services(api, version) if s["host"] == host and s["binary"] == "nova-compute")


def _provider_traits(api: Api, host: str) -> list[str]:
    rps = api.get(f"/placement/resource_providers?name={host}", as_="admin", headers=PLACEMENT).json()
    rp = rps["resource_providers"][0]["uuid"]
    return api.get(
        f"/placement/resource_providers/{rp}/traits",
        as_="admin",  # type: ignore[no-any-return]
        headers=PLACEMENT,
    ).json()["traits"]


# --- services ----------------------------------------------------------------------------------


def test_service_list_per_microversion(cloud: Api) -> None:
    old = _services(cloud, "2.1")
    assert {(s["binary"], s["zone"]) for s in old} == {
        ("nova-compute", "nova"),
        ("nova-conductor", "internal"),
        ("nova-scheduler", "internal"),
    }
    assert len([s for s in old if s["binary"] == "nova-compute"]) == 3
    assert set(old[0]) == {"id", "binary", "host", "zone", "status", "state", "updated_at", "disabled_reason"}
    assert isinstance(old[0]["id"], int)
    new = _services(cloud, "2.53")
    assert "forced_down" in new[0] and len(new[0]["id"]) == 36
    assert all(s["state"] == "up" and s["status"] == "enabled" for s in new)
    only = _services(cloud, query="?host=fake-host-2&binary=nova-compute")
    assert [s["host"] for s in only] == ["fake-host-2"]
    assert cloud.get(SV + "?bogus=1", as_="admin", version="2.75").status_code == 400
    assert cloud.get(SV).status_code == 403


def test_zone_follows_aggregates(cloud: Api) -> None:
    agg = cloud.post(
        "/compute/v2.1/os-aggregates",
        as_="admin",
        json={"aggregate": {"name": "a", "availability_zone": "az1"}},
    ).json()["aggregate"]
    cloud.post(
        f"/compute/v2.1/os-aggregates/{agg['id']}/action",
        as_="admin",
        json={"add_host": {"host": "fake-host-3"}},
    )
    assert _compute(cloud, "fake-host-3")["zone"] == "az1"
    assert _compute(cloud, "fake-host-1")["zone"] == "nova"


def test_disable_and_enable_at_253_mirror_a_trait(cloud: Api) -> None:
    svc = _compute(cloud, "fake-host-1")
    r = cloud.put(
        f"{SV}/{svc['id']}",
        as_="admin",
        version="2.53",
        json={"status": "disabled", "disabled_reason": "maintenance"},
    )
    assert r.status_code == 200, r.text
    body = r.json()["service"]
    assert (
        body["status"] == "disabled" and body["disabled_reason"] == "maintenance" and body["id"] == svc["id"]
    )
    assert "COMPUTE_STATUS_DISABLED" in _provider_traits(cloud, "fake-host-1")
    hv = cloud.get(HV, as_="admin", version="2.53").json()["hypervisors"]
    assert {h["hypervisor_hostname"]: h["status"] for h in hv}["fake-host-1"] == "disabled"
    # the scheduler's query (forbidden trait) no longer offers the host
    cands = cloud.get(
        "/placement/allocation_candidates?resources=VCPU:1&required=!COMPUTE_STATUS_DISABLED",
        as_="admin",
        headers=PLACEMENT,
    ).json()
    names = {
        cloud.get(f"/placement/resource_providers/{rp}", as_="admin").json()["name"]
        for rp in cands["provider_summaries"]
    }
    assert names == {"fake-host-2", "fake-host-3"}
    r = cloud.put(f"{SV}/{svc['id']}", as_="admin", version="2.53", json={"status": "enabled"})
    assert r.json()["service"]["status"] == "enabled" and r.json()["service"]["disabled_reason"] is None
    assert "COMPUTE_STATUS_DISABLED" not in _provider_traits(cloud, "fake-host-1")


def test_update_253_errors(cloud: Api) -> None:
    svc = _compute(cloud, "fake-host-1")
    conductor = next(s for s in _services(cloud) if s["binary"] == "nova-conductor")
    url = f"{SV}/{svc['id']}"
    assert cloud.put(url, as_="admin", version="2.53", json={}).status_code == 400
    r = cloud.put(url, as_="admin", version="2.53", json={"status": "enabled", "disabled_reason": "x"})
    assert r.status_code == 400
    assert cloud.put(url, as_="admin", version="2.53", json={"status": "off"}).status_code == 400
    r = cloud.put(f"{SV}/{conductor['id']}", as_="admin", version="2.53", json={"status": "disabled"})
    assert (
        r.status_code == 400
        and "Only nova-compute services can be updated" in r.json()["badRequest"]["message"]
    )
    assert (
        cloud.put(f"{SV}/not-a-uuid", as_="admin", version="2.53", json={"status": "disabled"}).status_code
        == 400
    )
    r = cloud.put(
        f"{SV}/11111111-2222-3333-4444-555555555555", as_="admin", version="2.53", json={"status": "disabled"}
    )
    assert r.status_code == 404
    assert cloud.put(url, version="2.53", json={"status": "disabled"}).status_code == 403


def test_forced_down_makes_the_service_down(cloud: Api) -> None:
    svc = _compute(cloud, "fake-host-2")
    r = cloud.put(f"{SV}/{svc['id']}", as_="admin", version="2.53", json={"forced_down": True})
    assert r.status_code == 200
    assert r.json()["service"]["forced_down"] is True and r.json()["service"]["state"] == "down"
    hv = cloud.get(HV, as_="admin", version="2.53").json()["hypervisors"]
    assert {h["hypervisor_hostname"]: h["state"] for h in hv}["fake-host-2"] == "down"


def test_legacy_actions_before_253(cloud: Api) -> None:
    host = {"host": "fake-host-1", "binary": "nova-compute"}
    r = cloud.put(f"{SV}/disable", as_="admin", version="2.1", json=host)
    assert r.status_code == 200
    assert r.json() == {"service": {"host": "fake-host-1", "binary": "nova-compute", "status": "disabled"}}
    r = cloud.put(
        f"{SV}/disable-log-reason", as_="admin", version="2.1", json={**host, "disabled_reason": "why"}
    )
    assert r.json()["service"]["disabled_reason"] == "why"
    assert _compute(cloud, "fake-host-1")["disabled_reason"] == "why"
    assert cloud.put(f"{SV}/disable-log-reason", as_="admin", version="2.1", json=host).status_code == 400
    r = cloud.put(f"{SV}/enable", as_="admin", version="2.1", json=host)
    assert r.json()["service"]["status"] == "enabled"
    assert cloud.put(f"{SV}/force-down", as_="admin", version="2.10", json=host).status_code == 404
    r = cloud.put(f"{SV}/force-down", as_="admin", version="2.11", json={**host, "forced_down": True})
    assert r.json() == {"service": {"host": "fake-host-1", "binary": "nova-compute", "forced_down": True}}
    r = cloud.put(
        f"{SV}/disable", as_="admin", version="2.1", json={"host": "nowhere", "binary": "nova-compute"}
    )
    assert r.status_code == 404
    r = cloud.put(
        f"{SV}/disable", as_="admin", version="2.1", json={"host": "fake-host-1", "binary": "nova-scheduler"}
    )
    assert r.status_code == 400


def test_delete_compute_service(cloud: Api) -> None:
    svc = _compute(cloud, "fake-host-3")
    assert cloud.delete(f"{SV}/{svc['id']}", as_="admin", version="2.53").status_code == 204
    assert [s for s in _services(cloud) if s["host"] == "fake-host-3"] == []
    names = [
        h["hypervisor_hostname"] for h in cloud.get(HV, as_="admin", version="2.53").json()["hypervisors"]
    ]
    assert names == ["fake-host-1", "fake-host-2"]
    rps = cloud.get("/placement/resource_providers?name=fake-host-3", as_="admin", headers=PLACEMENT).json()
    assert rps["resource_providers"] == []
    assert cloud.delete(f"{SV}/{svc['id']}", as_="admin", version="2.53").status_code == 404
    assert cloud.delete(f"{SV}/abc", as_="admin", version="2.1").status_code == 400


def test_state_follows_heartbeat_age(stack_factory: Any) -> None:
    # with a negative down time no heartbeat is recent enough: every compute is reported down
    # (the conductor and scheduler run in the answering process, so they stay up)
    api = stack_factory(fake_hosts=2, service_down_time=-1)
    states = {(s["binary"], s["state"]) for s in _services(api)}
    assert states == {("nova-compute", "down"), ("nova-conductor", "up"), ("nova-scheduler", "up")}
    assert {h["state"] for h in api.get(HV, as_="admin", version="2.53").json()["hypervisors"]} == {"down"}


# --- hypervisors -------------------------------------------------------------------------------


def test_list_and_detail_per_microversion(cloud: Api) -> None:
    old = cloud.get(HV, as_="admin", version="2.1").json()["hypervisors"]
    assert [h["hypervisor_hostname"] for h in old] == ["fake-host-1", "fake-host-2", "fake-host-3"]
    assert set(old[0]) == {"id", "hypervisor_hostname", "state", "status"} and isinstance(old[0]["id"], int)
    detail = cloud.get(f"{HV}/detail", as_="admin", version="2.1").json()["hypervisors"][0]
    assert detail["vcpus"] == 64 and detail["memory_mb"] == 131072 and detail["running_vms"] == 0
    assert isinstance(detail["cpu_info"], str) and isinstance(detail["service"]["id"], int)
    v228 = cloud.get(f"{HV}/detail", as_="admin", version="2.28").json()["hypervisors"][0]
    assert v228["cpu_info"]["arch"] == "x86_64"
    v288 = cloud.get(f"{HV}/detail", as_="admin", version="2.88").json()["hypervisors"][0]
    assert set(v288) == {
        "id",
        "hypervisor_hostname",
        "state",
        "status",
        "hypervisor_type",
        "hypervisor_version",
        "host_ip",
        "service",
        "uptime",
    }
    assert len(v288["id"]) == 36 and len(v288["service"]["id"]) == 36
    assert cloud.get(HV).status_code == 403


def test_usage_comes_from_placement(cloud: Api) -> None:
    hv = cloud.get(HV, as_="admin", version="2.53").json()["hypervisors"][0]
    consumer = "11111111-2222-3333-4444-555555555555"
    r = cloud.put(
        f"/placement/allocations/{consumer}",
        as_="admin",
        headers=PLACEMENT,
        json={
            "allocations": {hv["id"]: {"resources": {"VCPU": 2, "MEMORY_MB": 1024}}},
            "project_id": "p",
            "user_id": "u",
            "consumer_generation": None,
        },
    )
    assert r.status_code == 204, r.text
    shown = cloud.get(f"{HV}/{hv['id']}", as_="admin", version="2.53").json()["hypervisor"]
    assert (
        shown["vcpus_used"] == 2 and shown["memory_mb_used"] == 1024 and shown["free_ram_mb"] == 131072 - 1024
    )
    stats = cloud.get(f"{HV}/statistics", as_="admin", version="2.1").json()["hypervisor_statistics"]
    assert stats["count"] == 3 and stats["vcpus"] == 192 and stats["vcpus_used"] == 2


def test_show_uptime_and_statistics_gates(cloud: Api) -> None:
    ident = cloud.get(HV, as_="admin", version="2.1").json()["hypervisors"][0]["id"]
    assert cloud.get(f"{HV}/{ident}", as_="admin", version="2.1").status_code == 200
    r = cloud.get(f"{HV}/abc", as_="admin", version="2.1")
    assert (
        r.status_code == 404
        and r.json()["itemNotFound"]["message"] == "Hypervisor with ID 'abc' could not be found."
    )
    assert cloud.get(f"{HV}/{ident}", as_="admin", version="2.53").status_code == 400
    assert (
        cloud.get(f"{HV}/11111111-2222-3333-4444-555555555555", as_="admin", version="2.53").status_code
        == 404
    )
    up = cloud.get(f"{HV}/{ident}/uptime", as_="admin", version="2.1").json()["hypervisor"]
    assert "up" in up["uptime"]
    uuid = cloud.get(HV, as_="admin", version="2.88").json()["hypervisors"][0]["id"]
    assert cloud.get(f"{HV}/{uuid}/uptime", as_="admin", version="2.88").status_code == 404
    assert cloud.get(f"{HV}/statistics", as_="admin", version="2.88").status_code == 404
    assert "uptime" in cloud.get(f"{HV}/{uuid}", as_="admin", version="2.88").json()["hypervisor"]


def test_paging_from_233(cloud: Api) -> None:
    r = cloud.get(f"{HV}?limit=2", as_="admin", version="2.33").json()
    assert len(r["hypervisors"]) == 2 and "marker=" in r["hypervisors_links"][0]["href"]
    rest = cloud.get(f"{HV}?limit=2&marker={r['hypervisors'][1]['id']}", as_="admin", version="2.33").json()
    assert [h["hypervisor_hostname"] for h in rest["hypervisors"]] == ["fake-host-3"]
    assert cloud.get(f"{HV}?marker=999", as_="admin", version="2.33").status_code == 400
    assert len(cloud.get(f"{HV}?limit=1", as_="admin", version="2.32").json()["hypervisors"]) == 3


def test_search_and_servers_before_253_and_pattern_after(cloud: Api) -> None:
    found = cloud.get(f"{HV}/host-2/search", as_="admin", version="2.1").json()["hypervisors"]
    assert [h["hypervisor_hostname"] for h in found] == ["fake-host-2"]
    assert cloud.get(f"{HV}/nothing/search", as_="admin", version="2.1").status_code == 404
    assert cloud.get(f"{HV}/host-2/servers", as_="admin", version="2.1").status_code == 200
    assert cloud.get(f"{HV}/host-2/search", as_="admin", version="2.53").status_code == 404
    by_pattern = cloud.get(
        f"{HV}?hypervisor_hostname_pattern=host-3&with_servers=true", as_="admin", version="2.75"
    ).json()["hypervisors"]
    assert [h["hypervisor_hostname"] for h in by_pattern] == ["fake-host-3"] and by_pattern[0][
        "servers"
    ] == []
    r = cloud.get(f"{HV}?hypervisor_hostname_pattern=host&limit=1", as_="admin", version="2.53")
    assert r.status_code == 400
    assert cloud.get(f"{HV}?hypervisor_hostname_pattern=zzz", as_="admin", version="2.53").status_code == 404
    assert cloud.get(f"{HV}?with_servers=maybe", as_="admin", version="2.53").status_code == 400
    assert cloud.get(f"{HV}?bogus=1", as_="admin", version="2.53").status_code == 400


def test_servers_on_hypervisors_and_busy_service_delete(cloud: Api) -> None:
    image = cloud.get("/image/v2/images?name=novalite-tiny").json()["images"][0]["id"]
    r = cloud.post(
        "/compute/v2.1/servers",
        version="2.96",
        json={"server": {"name": "vm", "imageRef": image, "flavorRef": "1", "networks": "none"}},
    )
    assert r.status_code == 202, r.text
    server_id = r.json()["server"]["id"]
    host = cloud.wait_for(
        f"/compute/v2.1/servers/{server_id}",
        as_="admin",
        version="2.96",
        predicate=lambda r: r.json()["server"]["status"] == "ACTIVE",
    ).json()["server"]["OS-EXT-SRV-ATTR:host"]
    listed = cloud.get(f"{HV}?with_servers=true", as_="admin", version="2.88").json()["hypervisors"]
    servers = {h["hypervisor_hostname"]: [s["uuid"] for s in h["servers"]] for h in listed}
    assert servers[host] == [server_id]
    assert sum(len(v) for v in servers.values()) == 1
    old = cloud.get(f"{HV}/{host}/servers", as_="admin", version="2.1").json()["hypervisors"][0]
    assert old["servers"][0]["uuid"] == server_id and old["servers"][0]["name"].startswith("instance-")
    detail = {
        h["hypervisor_hostname"]: h
        for h in cloud.get(f"{HV}/detail", as_="admin", version="2.1").json()["hypervisors"]
    }
    assert detail[host]["running_vms"] == 1 and detail[host]["vcpus_used"] == 1
    svc = _compute(cloud, host)
    r = cloud.delete(f"{SV}/{svc['id']}", as_="admin", version="2.53")
    assert r.status_code == 409
    assert "hosting instances" in r.json()["conflictingRequest"]["message"]
