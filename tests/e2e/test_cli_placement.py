"""The real `openstack` CLI (with osc-placement) against `novalite serve --fake-hosts 3`:
placement, hypervisors, compute services, aggregates / availability zones, server groups."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import RunningServer

pytestmark = pytest.mark.e2e


def cli(server: RunningServer, *args: str, cloud: str = "novalite-admin") -> Any:
    return json.loads(server.openstack(*args, "-f", "json", cloud=cloud).stdout)


def test_resource_providers_inventories_and_usages(server: RunningServer) -> None:
    providers = cli(server, "resource", "provider", "list")
    assert sorted(p["name"] for p in providers) == ["fake-host-1", "fake-host-2", "fake-host-3"]
    rp = providers[0]["uuid"]
    shown = cli(server, "resource", "provider", "show", rp)
    assert shown["uuid"] == rp and shown["root_provider_uuid"] == rp
    inventory = {
        row["resource_class"]: row for row in cli(server, "resource", "provider", "inventory", "list", rp)
    }
    assert set(inventory) == {"VCPU", "MEMORY_MB", "DISK_GB"}
    usage = {
        row["resource_class"]: row["usage"]
        for row in cli(server, "resource", "provider", "usage", "show", rp)
    }
    assert set(usage) == {"VCPU", "MEMORY_MB", "DISK_GB"}


def test_allocation_candidates_and_traits(server: RunningServer) -> None:
    candidates = cli(server, "allocation", "candidate", "list", "--resource", "VCPU=1")
    assert len(candidates) == 3
    assert all(row["allocation"] == "VCPU=1" for row in candidates)
    traits = [row["name"] for row in cli(server, "trait", "list")]
    assert "COMPUTE_STATUS_DISABLED" in traits


def test_hypervisors_and_compute_services(server: RunningServer) -> None:
    hypervisors = cli(server, "hypervisor", "list")
    assert sorted(h["Hypervisor Hostname"] for h in hypervisors) == [
        "fake-host-1",
        "fake-host-2",
        "fake-host-3",
    ]
    assert {h["State"] for h in hypervisors} == {"up"}
    services = cli(server, "compute", "service", "list")
    assert {s["Binary"] for s in services} == {"nova-compute", "nova-conductor", "nova-scheduler"}
    assert {s["Zone"] for s in services if s["Binary"] != "nova-compute"} == {"internal"}

    server.openstack(
        "compute", "service", "set", "--disable", "fake-host-1", "nova-compute", cloud="novalite-admin"
    )
    services = cli(server, "compute", "service", "list", "--host", "fake-host-1")
    assert [s["Status"] for s in services if s["Binary"] == "nova-compute"] == ["disabled"]
    rp = next(p["uuid"] for p in cli(server, "resource", "provider", "list") if p["name"] == "fake-host-1")
    assert "COMPUTE_STATUS_DISABLED" in [
        t["name"] for t in cli(server, "resource", "provider", "trait", "list", rp)
    ]
    server.openstack(
        "compute", "service", "set", "--enable", "fake-host-1", "nova-compute", cloud="novalite-admin"
    )
    assert cli(server, "resource", "provider", "trait", "list", rp) == []


def test_aggregate_zone_shows_in_availability_zones(server: RunningServer) -> None:
    created = cli(server, "aggregate", "create", "--zone", "az1", "agg1")
    assert created["availability_zone"] == "az1"
    server.openstack("aggregate", "add", "host", "agg1", "fake-host-2", cloud="novalite-admin")
    assert cli(server, "aggregate", "show", "agg1")["hosts"] == ["fake-host-2"]
    zones = {z["Zone Name"] for z in cli(server, "availability", "zone", "list", "--compute")}
    assert {"az1", "nova"} <= zones
    member_zones = {
        z["Zone Name"] for z in cli(server, "availability", "zone", "list", "--compute", cloud="novalite")
    }
    assert member_zones == {"az1", "nova"}
    server.openstack("aggregate", "remove", "host", "agg1", "fake-host-2", cloud="novalite-admin")
    server.openstack("aggregate", "delete", "agg1", cloud="novalite-admin")
    assert cli(server, "aggregate", "list") == []


def test_server_group_lifecycle(server: RunningServer) -> None:
    created = cli(server, "server", "group", "create", "--policy", "anti-affinity", "g1", cloud="novalite")
    assert created["name"] == "g1" and created["policy"] == "anti-affinity"
    listed = cli(server, "server", "group", "list", cloud="novalite")
    assert [(g["Name"], g["Policy"]) for g in listed] == [("g1", "anti-affinity")]
    shown = cli(server, "server", "group", "show", "g1", cloud="novalite")
    assert shown["id"] == created["id"]
    server.openstack("server", "group", "delete", "g1", cloud="novalite")
    assert cli(server, "server", "group", "list", cloud="novalite") == []


def test_openstacksdk_placement_hosts_and_groups(server: RunningServer) -> None:
    conn = server.sdk("novalite-admin")
    providers = {rp.name: rp for rp in conn.placement.resource_providers()}
    assert set(providers) == {"fake-host-1", "fake-host-2", "fake-host-3"}
    inventory = {
        inv.resource_class: inv.total
        for inv in conn.placement.resource_provider_inventories(providers["fake-host-3"])
    }
    assert set(inventory) == {"VCPU", "MEMORY_MB", "DISK_GB"}
    assert {h.name for h in conn.compute.hypervisors(details=True)} == set(providers)
    services = [s for s in conn.compute.services() if s.host == "fake-host-3"]
    assert [(s.binary, s.state) for s in services] == [("nova-compute", "up")]
    disabled = conn.compute.disable_service(services[0], disabled_reason="sdk test")
    assert disabled.status == "disabled"
    assert conn.compute.enable_service(services[0]).status == "enabled"
    agg = conn.compute.create_aggregate(name="sdk-agg", availability_zone="sdk-az")
    assert conn.compute.add_host_to_aggregate(agg, "fake-host-3").hosts == ["fake-host-3"]
    assert "sdk-az" in {z.name for z in conn.compute.availability_zones()}
    conn.compute.remove_host_from_aggregate(agg, "fake-host-3")
    conn.compute.delete_aggregate(agg)
    demo = server.sdk("novalite")
    group = demo.compute.create_server_group(name="sdk-group", policy="affinity")
    assert group.policy == "affinity" and group.rules == {}
    assert [g.name for g in demo.compute.server_groups()] == ["sdk-group"]
    demo.compute.delete_server_group(group)


def test_cli_provider_writes(server: RunningServer) -> None:
    consumer = "11111111-2222-3333-4444-555555555555"
    rp = cli(server, "resource", "provider", "create", "cli-rp")["uuid"]
    inventory = cli(
        server,
        "resource",
        "provider",
        "inventory",
        "set",
        rp,
        "--resource",
        "VCPU=8",
        "--resource",
        "MEMORY_MB=1024",
    )
    assert {row["resource_class"]: row["total"] for row in inventory} == {"VCPU": 8, "MEMORY_MB": 1024}
    assert (
        cli(server, "resource", "provider", "inventory", "class", "set", rp, "VCPU", "--total", "16")["total"]
        == 16
    )
    held = cli(
        server,
        "resource",
        "provider",
        "allocation",
        "set",
        consumer,
        "--allocation",
        f"rp={rp},VCPU=2",
        "--project-id",
        "p1",
        "--user-id",
        "u1",
    )
    assert held[0]["resource_provider"] == rp
    usage = cli(server, "resource", "usage", "show", "p1")
    assert usage == [{"resource_class": "VCPU", "usage": 2}]
    generation = cli(server, "resource", "provider", "show", rp)["generation"]
    traits = cli(server, "resource", "provider", "trait", "set", rp, "--trait", "HW_CPU_X86_AVX")
    assert [t["name"] for t in traits] == ["HW_CPU_X86_AVX"]
    aggregates = cli(
        server,
        "resource",
        "provider",
        "aggregate",
        "set",
        rp,
        "--aggregate",
        "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
        "--generation",
        str(generation + 1),
    )
    assert [a["uuid"] for a in aggregates] == ["aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"]
    server.openstack("resource", "provider", "allocation", "delete", consumer, cloud="novalite-admin")
    server.openstack("resource", "provider", "delete", rp, cloud="novalite-admin")
    assert "cli-rp" not in {p["name"] for p in cli(server, "resource", "provider", "list")}
