"""Scheduling as a user sees it, through POST /servers: server group policies, forced hosts,
disabled services, and what the fault says when nothing fits (issue: scheduling and placement)."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest

from tests.conftest import Api

SERVERS = "/compute/v2.1/servers"


@pytest.fixture
def cloud(stack_factory: Any) -> Api:
    api: Api = stack_factory(fake_hosts=3)
    # lift the demo project's quotas: these tests create more than 10 servers
    r = api.put(
        f"/compute/v2.1/os-quota-sets/{api.ids['demo_project']}",
        as_="admin",
        json={"quota_set": {"instances": 100, "cores": 200, "ram": 512000, "server_group_members": 100}},
    )
    assert r.status_code == 200, r.text
    return api


def _image(api: Api) -> str:
    images = api.get("/image/v2/images?name=novalite-tiny").json()["images"]
    return str(images[0]["id"])


def _group(api: Api, policy: str, rules: dict[str, int] | None = None) -> str:
    body: dict[str, Any] = {"name": f"g-{policy}", "policy": policy}
    if rules:
        body["rules"] = rules
    r = api.post("/compute/v2.1/os-server-groups", version="2.64", json={"server_group": body})
    assert r.status_code == 200, r.text
    return str(r.json()["server_group"]["id"])


def _create(
    api: Api, name: str, *, group: str | None = None, as_: str = "demo", zone: str | None = None
) -> str:
    server: dict[str, Any] = {"name": name, "imageRef": _image(api), "flavorRef": "1", "networks": "none"}
    if zone:
        server["availability_zone"] = zone
    body: dict[str, Any] = {"server": server}
    if group:
        body["os:scheduler_hints"] = {"group": group}
    r = api.post(SERVERS, as_=as_, version="2.37", json=body)
    assert r.status_code == 202, r.text
    return str(r.json()["server"]["id"])


def _settle(api: Api, sid: str) -> dict[str, Any]:
    r = api.wait_for(
        f"{SERVERS}/{sid}",
        lambda r: r.json()["server"]["status"] in ("ACTIVE", "ERROR"),
        as_="admin",
        version="2.37",
    )
    return r.json()["server"]  # type: ignore[no-any-return]


def _host(server: dict[str, Any]) -> str:
    return str(server["OS-EXT-SRV-ATTR:host"])


def test_anti_affinity_spreads_then_the_extra_server_fails_naming_the_filter(cloud: Api) -> None:
    group = _group(cloud, "anti-affinity")
    servers = [_settle(cloud, _create(cloud, f"aa-{i}", group=group)) for i in range(3)]
    assert [s["status"] for s in servers] == ["ACTIVE"] * 3
    assert len({_host(s) for s in servers}) == 3
    extra = _settle(cloud, _create(cloud, "aa-extra", group=group))
    assert extra["status"] == "ERROR"
    message = extra["fault"]["message"]
    assert "No valid host was found" in message
    assert "ServerGroupAntiAffinityFilter" in message
    assert "3 host" in message


def test_parallel_creates_into_one_anti_affinity_group_never_share_a_host(stack_factory: Any) -> None:
    api: Api = stack_factory(fake_hosts=20)
    api.put(
        f"/compute/v2.1/os-quota-sets/{api.ids['demo_project']}",
        as_="admin",
        json={"quota_set": {"instances": 100, "cores": 200, "ram": 512000, "server_group_members": 100}},
    )
    group = _group(api, "anti-affinity")
    ids: list[str] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        sid = _create(api, f"par-{i}", group=group)
        with lock:
            ids.append(sid)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    servers = [_settle(api, sid) for sid in ids]
    active = [s for s in servers if s["status"] == "ACTIVE"]
    hosts = Counter(_host(s) for s in active)
    assert hosts and max(hosts.values()) == 1, hosts
    # with 20 hosts for 20 servers, the late check and reschedules should place (nearly) all of them;
    # any that could not be placed are in ERROR, never on a shared host
    assert all(s["status"] in ("ACTIVE", "ERROR") for s in servers)


def test_max_server_per_host_rule(cloud: Api) -> None:
    group = _group(cloud, "anti-affinity", {"max_server_per_host": 2})
    servers = [_settle(cloud, _create(cloud, f"mx-{i}", group=group)) for i in range(6)]
    assert all(s["status"] == "ACTIVE" for s in servers)
    per_host = Counter(_host(s) for s in servers)
    assert max(per_host.values()) == 2
    seventh = _settle(cloud, _create(cloud, "mx-7", group=group))
    assert seventh["status"] == "ERROR"
    assert "ServerGroupAntiAffinityFilter" in seventh["fault"]["message"]


def test_affinity_keeps_the_group_on_one_host(cloud: Api) -> None:
    group = _group(cloud, "affinity")
    servers = [_settle(cloud, _create(cloud, f"af-{i}", group=group)) for i in range(4)]
    assert all(s["status"] == "ACTIVE" for s in servers)
    assert len({_host(s) for s in servers}) == 1


def test_forced_zone_host_lands_there(cloud: Api) -> None:
    sid = _create(cloud, "forced", as_="admin", zone="nova:fake-host-3")
    server = _settle(cloud, sid)
    assert server["status"] == "ACTIVE"
    assert _host(server) == "fake-host-3"
    # members may not force a host
    r = cloud.post(
        SERVERS,
        version="2.37",
        json={
            "server": {
                "name": "nope",
                "imageRef": _image(cloud),
                "flavorRef": "1",
                "networks": "none",
                "availability_zone": "nova:fake-host-3",
            }
        },
    )
    assert r.status_code == 403


def test_disabled_service_receives_nothing(cloud: Api) -> None:
    services = cloud.get("/compute/v2.1/os-services?binary=nova-compute", as_="admin", version="2.53").json()[
        "services"
    ]
    disabled = next(s for s in services if s["host"] == "fake-host-1")
    r = cloud.put(
        f"/compute/v2.1/os-services/{disabled['id']}",
        as_="admin",
        version="2.53",
        json={"status": "disabled", "disabled_reason": "maintenance"},
    )
    assert r.status_code == 200, r.text
    servers = [_settle(cloud, _create(cloud, f"d-{i}")) for i in range(6)]
    assert all(s["status"] == "ACTIVE" for s in servers)
    assert "fake-host-1" not in {_host(s) for s in servers}


def test_no_valid_host_when_nothing_fits_names_placement(stack_factory: Any) -> None:
    api: Api = stack_factory(fake_hosts=2, fake_host_ram_mb=1024)
    r = api.post(
        "/compute/v2.1/flavors",
        as_="admin",
        json={"flavor": {"name": "big", "ram": 4096, "vcpus": 1, "disk": 1, "id": "big"}},
    )
    assert r.status_code == 200, r.text
    r = api.post(
        SERVERS,
        as_="admin",
        version="2.37",
        json={"server": {"name": "big", "imageRef": _image(api), "flavorRef": "big", "networks": "none"}},
    )
    assert r.status_code == 202
    server = _settle(api, r.json()["server"]["id"])
    assert server["status"] == "ERROR"
    assert server["fault"]["code"] == 500
    assert "No valid host was found" in server["fault"]["message"]
    # nothing is left claimed on any provider
    providers = api.get(
        "/placement/resource_providers", as_="admin", headers={"OpenStack-API-Version": "placement 1.9"}
    ).json()["resource_providers"]
    for rp in providers:
        usage = api.get(
            f"/placement/resource_providers/{rp['uuid']}/usages",
            as_="admin",
            headers={"OpenStack-API-Version": "placement 1.9"},
        ).json()["usages"]
        assert usage.get("MEMORY_MB", 0) == 0
