"""Evacuate with the unmodified ``openstack`` CLI against ``novalite serve`` (three simulated
hosts): a forced-down host's server is rebuilt elsewhere with ``openstack server evacuate`` and
its migration is listed as an evacuation.

``openstack server evacuate --wait`` is not used: this OSC compares the lowered status with
``"ACTIVE"`` and so never stops waiting, against Nova as here; the test polls ``server show``."""

from __future__ import annotations

import json
import time
from typing import Any

from tests.conftest import RunningServer

ADMIN = "novalite-admin"


def _json(server: RunningServer, *args: str) -> Any:
    return json.loads(server.openstack(*args, "-f", "json", cloud=ADMIN).stdout)


def test_cli_evacuate_a_forced_down_host(server: RunningServer) -> None:
    args = ("--flavor", "m1.tiny", "--image", "novalite-tiny", "--no-network", "--wait", "evac")
    sid = str(_json(server, "server", "create", *args)["id"])
    host = _json(server, "server", "show", sid)["OS-EXT-SRV-ATTR:host"]
    # refused while the host is up: the CLI prints Nova's message
    proc = server.openstack("server", "evacuate", sid, cloud=ADMIN, check=False)
    assert proc.returncode != 0 and f"Compute service of {host} is still in use." in proc.stderr
    down = ("--os-compute-api-version", "2.11", "compute", "service", "set")
    server.openstack(*down, "--down", host, "nova-compute", cloud=ADMIN)
    try:
        server.openstack("--os-compute-api-version", "2.29", "server", "evacuate", sid, cloud=ADMIN)
        deadline = time.monotonic() + 60
        shown = _json(server, "server", "show", sid)
        while shown["status"] != "ACTIVE" and time.monotonic() < deadline:
            time.sleep(0.5)
            shown = _json(server, "server", "show", sid)
        assert shown["status"] == "ACTIVE" and shown["OS-EXT-SRV-ATTR:host"] not in (host, None)
        listing = ("--os-compute-api-version", "2.23", "server", "migration", "list", "--server", sid)
        rows = _json(server, *listing)
        assert [(r["Type"], r["Status"]) for r in rows] == [("evacuation", "done")]
    finally:
        server.openstack(*down, "--up", host, "nova-compute", cloud=ADMIN)
    server.openstack("server", "delete", "--wait", sid, cloud=ADMIN)
