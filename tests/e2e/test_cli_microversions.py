"""Microversions 2.97-2.104 through the unmodified ``openstack`` CLI against ``novalite serve``:
scheduler hints in ``server show`` (2.100), pinning and unpinning the
availability zone (2.104), flavors without rxtx_factor (2.102), an empty share list (2.97)."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import RunningServer


def _json(server: RunningServer, *args: str) -> Any:
    return json.loads(server.openstack(*args, "-f", "json").stdout)


def test_cli_at_2_104(server: RunningServer) -> None:
    created = _json(
        server,
        "server",
        "create",
        "--flavor",
        "m1.tiny",
        "--image",
        "novalite-tiny",
        "--no-network",
        "--availability-zone",
        "nova",
        "--hint",
        "group_policy=none",
        "--wait",
        "mv-vm",
    )
    sid = created["id"]
    shown = _json(server, "--os-compute-api-version", "2.104", "server", "show", sid)
    assert shown["scheduler_hints"] == {"group_policy": ["none"]}
    assert shown["pinned_availability_zone"] == "nova"
    server.openstack(
        "--os-compute-api-version", "2.104", "server", "unset", "--pinned-availability-zone", sid
    )
    shown = _json(server, "--os-compute-api-version", "2.104", "server", "show", sid)
    assert shown["pinned_availability_zone"] is None
    server.openstack(
        "--os-compute-api-version", "2.104", "server", "set", "--pinned-availability-zone", "nova", sid
    )
    shown = _json(server, "--os-compute-api-version", "2.104", "server", "show", sid)
    assert shown["pinned_availability_zone"] == "nova"
    shares = _json(server, "--os-compute-api-version", "2.97", "server", "share", "list", sid)
    assert shares == []
    flavor = _json(server, "--os-compute-api-version", "2.102", "flavor", "show", "m1.tiny")
    assert flavor["name"] == "m1.tiny"
    assert not flavor.get("rxtx_factor")
    server.openstack("server", "delete", "--wait", sid)
