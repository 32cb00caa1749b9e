"""Usage, legacy host and extension reads, server diagnostics and Placement resource classes
with the unmodified ``openstack`` CLI (and openstacksdk for diagnostics, which the CLI has no
command for) against ``novalite serve`` (issue 19, items 4 and 10)."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import RunningServer


def _json(server: RunningServer, *args: str, cloud: str = "novalite") -> Any:
    return json.loads(server.openstack(*args, "-f", "json", cloud=cloud).stdout)


def test_cli_usage_list_and_show(server: RunningServer) -> None:
    created = _json(
        server,
        "server",
        "create",
        "--flavor",
        "m1.tiny",
        "--image",
        "novalite-tiny",
        "--no-network",
        "--wait",
        "u1",
    )
    assert created["status"] == "ACTIVE"
    listed = _json(server, "usage", "list", cloud="novalite-admin")
    # JSON output names the project by id; the SDK asks detailed=True, which Nova (wanting "1")
    # reads as not detailed, so "Servers" stays empty there as it does against Nova
    demo = next(row for row in listed if row["Project"] == created["project_id"])
    assert float(demo["RAM MB-Hours"]) > 0 and float(demo["CPU Hours"]) > 0
    shown = _json(server, "usage", "show", "--project", "demo", cloud="novalite-admin")
    # show is always detailed: its servers (JSON: their usages) are there
    assert created["id"] in {u["instance_id"] for u in shown["Servers"]} and float(shown["CPU Hours"]) > 0
    own = _json(server, "usage", "show")  # a member, its own project
    assert {u["instance_id"] for u in own["Servers"]} == {u["instance_id"] for u in shown["Servers"]}
    refused = server.openstack("usage", "list", check=False)
    assert refused.returncode != 0 and "403" in refused.stderr

    diagnostics = server.sdk("novalite-admin").compute.get_server_diagnostics(created["id"])
    assert diagnostics.state == "running" and diagnostics.num_cpus == 1 and diagnostics.driver == "libvirt"


def test_cli_hosts_and_extensions(server: RunningServer) -> None:
    hosts = _json(server, "host", "list", cloud="novalite-admin")
    assert {"fake-host-1", "fake-host-2", "fake-host-3"} <= {
        h["Host Name"] for h in hosts if h["Service"] == "compute"
    }
    rows = _json(server, "host", "show", "fake-host-1", cloud="novalite-admin")
    assert [r["Project"] for r in rows[:3]] == ["(total)", "(used_now)", "(used_max)"]
    extensions = _json(server, "extension", "list", "--compute", "--long")
    assert {"os-hosts", "os-simple-tenant-usage"} <= {e["Alias"] for e in extensions}


def test_cli_resource_class_create_and_delete(server: RunningServer) -> None:
    server.openstack(
        "--os-placement-api-version",
        "1.2",
        "resource",
        "class",
        "create",
        "CUSTOM_E2E",
        cloud="novalite-admin",
    )
    names = [
        c["name"]
        for c in _json(
            server, "--os-placement-api-version", "1.2", "resource", "class", "list", cloud="novalite-admin"
        )
    ]
    assert "CUSTOM_E2E" in names and "VCPU" in names
    server.openstack(
        "--os-placement-api-version",
        "1.7",
        "resource",
        "class",
        "set",
        "CUSTOM_E2E_SET",
        cloud="novalite-admin",
    )
    server.openstack(
        "--os-placement-api-version",
        "1.2",
        "resource",
        "class",
        "delete",
        "CUSTOM_E2E",
        cloud="novalite-admin",
    )
    refused = server.openstack(
        "--os-placement-api-version",
        "1.2",
        "resource",
        "class",
        "delete",
        "VCPU",
        cloud="novalite-admin",
        check=False,
    )
    assert refused.returncode != 0 and "Cannot delete standard resource class VCPU" in refused.stderr
    names = [
        c["name"]
        for c in _json(
            server, "--os-placement-api-version", "1.2", "resource", "class", "list", cloud="novalite-admin"
        )
    ]
    assert "CUSTOM_E2E" not in names and "CUSTOM_E2E_SET" in names
