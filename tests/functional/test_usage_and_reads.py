"""The compute API's read-only corners that clients and Tempest call (issue 19, item 4):
``os-simple-tenant-usage``, ``os-instance_usage_audit_log``, server diagnostics, ``os-hosts``,
``/extensions`` and ``os-tenant-networks`` — plus the regression where
``GET /servers/{id}/os-security-groups`` answered 404 from microversion 2.36 on."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api

V21 = "/compute/v2.1"
SERVERS = V21 + "/servers"


def boot(api: Api, name: str = "vm", *, as_: str = "demo", flavor: str = "1") -> str:
    image = api.get("/image/v2/images?name=novalite-tiny", as_=as_).json()["images"][0]["id"]
    server = {"name": name, "imageRef": image, "flavorRef": flavor, "networks": "none"}
    r = api.post(SERVERS, as_=as_, version="2.37", json={"server": server})
    assert r.status_code == 202, r.text
    sid = str(r.json()["server"]["id"])
    api.wait_for(f"{SERVERS}/{sid}", lambda r: r.json()["server"]["status"] in ("ACTIVE", "ERROR"), as_=as_)
    assert api.get(f"{SERVERS}/{sid}", as_=as_).json()["server"]["status"] == "ACTIVE"
    return sid


def fault(r: Any, status: int) -> str:
    assert r.status_code == status, r.text
    return str(next(iter(r.json().values()))["message"])


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One stack for the module (each boot costs a little): two fake hosts, one demo server."""
    from fastapi.testclient import TestClient

    from novalite.app import build_runtime, create_app
    from novalite.bootstrap import bootstrap
    from novalite.db.base import upgrade
    from tests.conftest import ADMIN_PW, DEMO_PW, make_settings

    settings = make_settings(tmp_path_factory.mktemp("reads"), fake_hosts=2)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.effective_database_url)
    rt = build_runtime(settings)
    report = bootstrap(rt)
    client = TestClient(create_app(rt), raise_server_exceptions=False)
    client.__enter__()
    api = Api(client=client, ids=dict(report.ids))
    api.tokens["admin"] = api.token_for("admin", ADMIN_PW, "admin")
    api.tokens["demo"] = api.token_for("demo", DEMO_PW, "demo")
    api.runtime = rt  # type: ignore[attr-defined]
    api.ids["server"] = boot(api)
    yield api
    client.__exit__(None, None, None)
    rt.db.dispose()


# --- regression: servers/{id}/os-security-groups ----------------------------------------------


@pytest.mark.parametrize("version", ["2.1", "2.36", "2.90"])
def test_server_security_groups_of_a_server_without_ports_is_an_empty_list(cloud: Api, version: str) -> None:
    """Tempest's server tests list a port-less server's groups at the newest microversion:
    Nova answers ``[]``; novalite answered 404 from 2.36 on, where only the ``os-security-groups``
    proxy (not this server sub-resource) is removed."""
    r = cloud.get(f"{SERVERS}/{cloud.ids['server']}/os-security-groups", version=version)
    assert r.status_code == 200, r.text
    assert r.json() == {"security_groups": []}
    assert cloud.get(V21 + "/os-security-groups", version=version).status_code == (
        404 if version != "2.1" else 200
    )
    fault(cloud.get(f"{SERVERS}/no-such-server/os-security-groups", version=version), 404)


def delete_server(api: Api, sid: str) -> None:
    assert api.delete(f"{SERVERS}/{sid}").status_code == 204
    api.wait_for(f"{SERVERS}/{sid}", lambda r: r.status_code == 404)


# --- os-simple-tenant-usage ------------------------------------------------------------------

USAGE = V21 + "/os-simple-tenant-usage"
WINDOW = "start=2000-01-01T00:00:00&end=2100-01-01T00:00:00"


def test_usage_list_and_show_count_running_and_deleted_servers(cloud: Api) -> None:
    gone = boot(cloud, "gone")
    delete_server(cloud, gone)
    demo = cloud.ids["demo_project"]
    r = cloud.get(f"{USAGE}?{WINDOW}&detailed=1", as_="admin")
    assert r.status_code == 200, r.text
    mine = next(t for t in r.json()["tenant_usages"] if t["tenant_id"] == demo)
    assert mine["start"] == "2000-01-01T00:00:00.000000"
    assert mine["stop"] < "2100" and len(mine["stop"]) == 26  # capped at now, with microseconds
    by_id = {u["instance_id"]: u for u in mine["server_usages"]}
    running, deleted = by_id[cloud.ids["server"]], by_id[gone]
    assert running["state"] == "active" and running["ended_at"] is None
    assert running["flavor"] == "m1.tiny" and running["vcpus"] == 1 and running["memory_mb"] == 512
    assert running["local_gb"] == 1 and running["name"] == "vm" and running["tenant_id"] == demo
    assert running["hours"] > 0 and isinstance(running["uptime"], int)
    assert deleted["state"] == "terminated" and deleted["ended_at"] is not None
    assert mine["total_hours"] == pytest.approx(sum(u["hours"] for u in mine["server_usages"]))
    assert mine["total_vcpus_usage"] == pytest.approx(
        sum(u["hours"] * u["vcpus"] for u in mine["server_usages"])
    )
    plain = cloud.get(f"{USAGE}?{WINDOW}", as_="admin").json()["tenant_usages"]
    assert all("server_usages" not in t for t in plain)
    # a member reads its own project's usage (always detailed), not another's
    own = cloud.get(f"{USAGE}/{demo}?{WINDOW}")
    assert own.status_code == 200, own.text
    assert {u["instance_id"] for u in own.json()["tenant_usage"]["server_usages"]} >= {
        cloud.ids["server"],
        gone,
    }
    refused = cloud.get(f"{USAGE}/{cloud.ids['admin_project']}?{WINDOW}")
    assert "os_compute_api:os-simple-tenant-usage:show" in fault(refused, 403)
    assert "os_compute_api:os-simple-tenant-usage:list" in fault(cloud.get(USAGE), 403)
    # a window before any server ran: nothing (show answers an empty object)
    early = "start=2001-01-01T00:00:00&end=2001-02-01T00:00:00"
    assert cloud.get(f"{USAGE}?{early}", as_="admin").json() == {"tenant_usages": []}
    assert cloud.get(f"{USAGE}/{demo}?{early}").json() == {"tenant_usage": {}}


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("start=yesterday", "Invalid datetime string: Datetime is in invalid format"),
        ("start=2020-01-01T00:00:00Z", "Invalid datetime string: Datetime is in invalid format"),
        (
            "start=2020-02-01T00:00:00&end=2020-01-01T00:00:00",
            "The start time cannot occur after the end time.",
        ),
    ],
)
def test_usage_refuses_bad_windows(cloud: Api, query: str, message: str) -> None:
    assert message in fault(cloud.get(f"{USAGE}?{query}", as_="admin"), 400)


def test_usage_pages_by_server_from_2_40(cloud: Api) -> None:
    second = boot(cloud, "second")
    demo = cloud.ids["demo_project"]
    r = cloud.get(f"{USAGE}/{demo}?{WINDOW}&limit=1", as_="admin", version="2.40")
    assert r.status_code == 200, r.text
    body = r.json()
    first = body["tenant_usage"]["server_usages"]
    assert len(first) == 1
    link = body["tenant_usage_links"][0]
    assert link["rel"] == "next" and f"marker={first[0]['instance_id']}" in link["href"]
    assert f"/os-simple-tenant-usage/{demo}?" in link["href"]
    seen = [first[0]["instance_id"]]
    marker = first[0]["instance_id"]
    while True:
        page = cloud.get(
            f"{USAGE}/{demo}?{WINDOW}&limit=1&marker={marker}", as_="admin", version="2.40"
        ).json()
        if not page["tenant_usage"]:
            break
        marker = page["tenant_usage"]["server_usages"][0]["instance_id"]
        seen.append(marker)
    assert {cloud.ids["server"], second} <= set(seen) and seen == sorted(seen)
    listing = cloud.get(f"{USAGE}?{WINDOW}&limit=1", as_="admin", version="2.40").json()
    assert len(listing["tenant_usages"]) == 1 and "tenant_usages_links" in listing
    # before 2.40 there is no paging: limit is ignored (and there are no links)
    old = cloud.get(f"{USAGE}?{WINDOW}&limit=1", as_="admin", version="2.39").json()
    assert "tenant_usages_links" not in old
    assert "could not be found" in fault(
        cloud.get(f"{USAGE}?{WINDOW}&marker=no-such-server", as_="admin", version="2.40"), 400
    )
    assert fault(cloud.get(f"{USAGE}?{WINDOW}&limit=x", as_="admin", version="2.40"), 400)
    assert "Additional properties are not allowed" in fault(
        cloud.get(f"{USAGE}?{WINDOW}&bogus=1", as_="admin", version="2.75"), 400
    )
    assert cloud.get(f"{USAGE}?{WINDOW}&bogus=1", as_="admin", version="2.74").status_code == 200


# --- os-instance_usage_audit_log -------------------------------------------------------------

AUDIT = V21 + "/os-instance_usage_audit_log"


def test_audit_log_answers_for_computes_that_ran_no_audit(cloud: Api) -> None:
    r = cloud.get(AUDIT, as_="admin")
    assert r.status_code == 200, r.text
    log = r.json()["instance_usage_audit_logs"]
    assert log["num_hosts"] == 2 and log["num_hosts_done"] == 0 and log["num_hosts_running"] == 0
    assert sorted(log["hosts_not_run"]) == ["fake-host-1", "fake-host-2"] and log["num_hosts_not_run"] == 2
    assert log["overall_status"] == "0 of 2 hosts done. 0 errors."
    assert log["total_instances"] == 0 and log["total_errors"] == 0 and log["log"] == {}
    assert log["period_ending"].endswith("-01 00:00:00")
    one = cloud.get(f"{AUDIT}/2026-03-15 10:00:00", as_="admin").json()["instance_usage_audit_log"]
    assert (one["period_beginning"], one["period_ending"]) == ("2026-02-01 00:00:00", "2026-03-01 00:00:00")
    edge = cloud.get(f"{AUDIT}/2026-01-01 00:00:00.000000", as_="admin").json()["instance_usage_audit_log"]
    assert (edge["period_beginning"], edge["period_ending"]) == ("2025-11-01 00:00:00", "2025-12-01 00:00:00")
    assert (
        fault(cloud.get(f"{AUDIT}/2026-13-01", as_="admin"), 400) == "Invalid timestamp for date 2026-13-01"
    )
    assert "os-instance-usage-audit-log:list" in fault(cloud.get(AUDIT), 403)


# --- server diagnostics ------------------------------------------------------------------------


def test_diagnostics_of_a_running_server_per_microversion(cloud: Api) -> None:
    url = f"{SERVERS}/{cloud.ids['server']}/diagnostics"
    r = cloud.get(url, as_="admin", version="2.48")
    assert r.status_code == 200, r.text
    d = r.json()
    assert set(d) == {
        "state",
        "driver",
        "hypervisor",
        "hypervisor_os",
        "uptime",
        "config_drive",
        "num_cpus",
        "num_nics",
        "num_disks",
        "cpu_details",
        "nic_details",
        "disk_details",
        "memory_details",
    }
    assert d["state"] == "running" and d["driver"] == "libvirt" and d["num_cpus"] == 1
    assert len(d["cpu_details"]) == 1 and set(d["cpu_details"][0]) == {"id", "time", "utilisation"}
    assert d["num_nics"] == 0 and d["nic_details"] == [] and d["num_disks"] == len(d["disk_details"]) == 1
    assert d["memory_details"]["maximum"] == 512
    legacy = cloud.get(url, as_="admin", version="2.47").json()
    assert "cpu0_time" in legacy and legacy["memory"] == 512 * 1024 and "vda_read" in legacy
    assert "os-server-diagnostics" in fault(cloud.get(url), 403)
    fault(cloud.get(f"{SERVERS}/no-such-server/diagnostics", as_="admin"), 404)


def test_diagnostics_of_a_stopped_server_is_409(cloud: Api) -> None:
    sid = boot(cloud, "stopped")
    assert cloud.post(f"{SERVERS}/{sid}/action", json={"os-stop": None}).status_code == 202
    cloud.wait_for(f"{SERVERS}/{sid}", lambda r: r.json()["server"]["status"] == "SHUTOFF")
    message = fault(cloud.get(f"{SERVERS}/{sid}/diagnostics", as_="admin", version="2.48"), 409)
    assert message == f"Cannot 'get_diagnostics' instance {sid} while it is in power state shutdown"
    delete_server(cloud, sid)


# --- os-hosts ----------------------------------------------------------------------------------

HOSTS = V21 + "/os-hosts"


def test_os_hosts_list_and_show_below_2_43(cloud: Api) -> None:
    r = cloud.get(HOSTS, as_="admin", version="2.42")
    assert r.status_code == 200, r.text
    hosts = r.json()["hosts"]
    assert {(h["host_name"], h["service"], h["zone"]) for h in hosts if h["service"] == "compute"} == {
        ("fake-host-1", "compute", "nova"),
        ("fake-host-2", "compute", "nova"),
    }
    assert {h["service"] for h in hosts} >= {"compute", "conductor", "scheduler"}
    assert all(h["zone"] == "internal" for h in hosts if h["service"] != "compute")
    assert {h["service"] for h in cloud.get(f"{HOSTS}?zone=nova", as_="admin").json()["hosts"]} == {"compute"}
    host = cloud.get(f"{SERVERS}/{cloud.ids['server']}", as_="admin").json()["server"]["OS-EXT-SRV-ATTR:host"]
    rows = [row["resource"] for row in cloud.get(f"{HOSTS}/{host}", as_="admin").json()["host"]]
    assert [row["project"] for row in rows[:3]] == ["(total)", "(used_now)", "(used_max)"]
    assert all(row["host"] == host for row in rows)
    assert rows[0]["cpu"] > 0 and rows[2]["cpu"] >= 1 and rows[2]["memory_mb"] >= 512
    assert cloud.ids["demo_project"] in [row["project"] for row in rows[3:]]
    assert "not mapped to any cell" in fault(cloud.get(f"{HOSTS}/no-such-host", as_="admin"), 404)
    assert cloud.get(HOSTS, as_="admin", version="2.43").status_code == 404
    assert "os-hosts:list" in fault(cloud.get(HOSTS), 403)


def test_os_hosts_actions_are_not_supported_by_the_driver(cloud: Api) -> None:
    r = cloud.put(f"{HOSTS}/fake-host-1", as_="admin", json={"status": "disable"})
    assert fault(r, 501) == "The requested functionality is not supported."
    assert r.json()["notImplemented"]["code"] == 501
    fault(cloud.put(f"{HOSTS}/fake-host-1", as_="admin", json={"maintenance_mode": "Enable"}), 501)
    fault(cloud.put(f"{HOSTS}/fake-host-1", as_="admin", json={}), 400)
    fault(cloud.put(f"{HOSTS}/fake-host-1", as_="admin", json={"status": "on"}), 400)
    fault(cloud.put(f"{HOSTS}/no-such-host", as_="admin", json={"status": "enable"}), 404)
    for action in ("reboot", "shutdown", "startup"):
        fault(cloud.get(f"{HOSTS}/fake-host-2/{action}", as_="admin"), 501)
        fault(cloud.get(f"{HOSTS}/no-such-host/{action}", as_="admin"), 404)
    # the compute service on the host must be up first
    sv = V21 + "/os-services"
    compute = next(
        s
        for s in cloud.get(sv, as_="admin", version="2.53").json()["services"]
        if s["host"] == "fake-host-2" and s["binary"] == "nova-compute"
    )
    down = cloud.put(f"{sv}/{compute['id']}", as_="admin", version="2.53", json={"forced_down": True})
    assert down.status_code == 200, down.text
    try:
        message = fault(cloud.get(f"{HOSTS}/fake-host-2/reboot", as_="admin"), 400)
        assert message == "Compute service of fake-host-2 is unavailable at this time."
    finally:
        cloud.put(f"{sv}/{compute['id']}", as_="admin", version="2.53", json={"forced_down": False})


# --- /extensions -------------------------------------------------------------------------------


def test_extensions_list_and_show(cloud: Api) -> None:
    r = cloud.get(V21 + "/extensions", version="2.90")
    assert r.status_code == 200, r.text
    exts = r.json()["extensions"]
    aliases = [e["alias"] for e in exts]
    assert (
        len(exts) == 99 and aliases == sorted(aliases) and aliases[0] == "NMN" and aliases[-1] == "os-volumes"
    )
    assert {"os-hosts", "os-simple-tenant-usage", "os-shelve", "os-instance_usage_audit_log"} <= set(aliases)
    one = cloud.get(V21 + "/extensions/os-hosts").json()["extension"]
    assert one == {
        "alias": "os-hosts",
        "description": "Admin-only host administration.",
        "links": [],
        "name": "Hosts",
        "namespace": "http://docs.openstack.org/compute/ext/fake_xml",
        "updated": "2014-12-03T00:00:00Z",
    }
    fault(cloud.get(V21 + "/extensions/os-nothing"), 404)
    assert cloud.get(V21 + "/extensions", as_=None).status_code == 401


# --- os-tenant-networks ------------------------------------------------------------------------

TN = V21 + "/os-tenant-networks"


def test_tenant_networks_below_2_36(cloud: Api) -> None:
    r = cloud.get(TN, version="2.35")
    assert r.status_code == 200, r.text
    nets = r.json()["networks"]
    private = next(n for n in nets if n["label"] == "private")
    assert private["cidr"] == "None" and set(private) == {"id", "cidr", "label"}
    shown = cloud.get(f"{TN}/{private['id']}").json()["network"]
    assert shown == private
    assert fault(cloud.get(f"{TN}/{'0' * 36}"), 404) == "Network not found"
    assert cloud.get(TN, version="2.36").status_code == 404
    for r in (cloud.post(TN, json={"network": {"label": "x"}}), cloud.delete(f"{TN}/{private['id']}")):
        assert r.status_code == 410 and "computeFault" in r.json()
    assert cloud.post(TN, version="2.90", json={}).status_code == 410
