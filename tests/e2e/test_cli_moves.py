"""Resize, migrate and shelve with the unmodified ``openstack`` CLI against ``novalite serve``
(three simulated hosts): what the CLI waits for and prints."""

from __future__ import annotations

import json
import time
from typing import Any

from tests.conftest import RunningServer


def _json(server: RunningServer, *args: str, cloud: str = "novalite") -> Any:
    return json.loads(server.openstack(*args, "-f", "json", cloud=cloud).stdout)


def _show(server: RunningServer, sid: str) -> dict[str, Any]:
    """As the admin (the host fields), by id: names are per project."""
    return dict(_json(server, "server", "show", sid, cloud="novalite-admin"))


def _create(server: RunningServer, name: str) -> str:
    args = ("--flavor", "m1.tiny", "--image", "novalite-tiny", "--no-network", "--wait", name)
    return str(_json(server, "server", "create", *args)["id"])


def _wait(server: RunningServer, sid: str, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    shown = _show(server, sid)
    while shown["status"] != status and time.monotonic() < deadline:
        time.sleep(0.5)
        shown = _show(server, sid)
    assert shown["status"] == status, shown
    return shown


def test_cli_resize_confirm_revert_and_migrate(server: RunningServer) -> None:
    sid = _create(server, "mover")
    host = _show(server, sid)["OS-EXT-SRV-ATTR:host"]

    server.openstack("server", "resize", "--flavor", "m1.small", "--wait", "mover")
    shown = _show(server, sid)
    assert shown["status"] == "VERIFY_RESIZE" and shown["OS-EXT-SRV-ATTR:host"] != host
    server.openstack("server", "resize", "confirm", "mover")
    shown = _wait(server, sid, "ACTIVE")
    assert "m1.small" in json.dumps(shown["flavor"])

    server.openstack("server", "resize", "--flavor", "m1.medium", "--wait", "mover")
    server.openstack("server", "resize", "revert", "mover")
    shown = _wait(server, sid, "ACTIVE")
    assert "m1.small" in json.dumps(shown["flavor"])

    before = shown["OS-EXT-SRV-ATTR:host"]
    server.openstack("server", "migrate", "--wait", "mover")
    shown = _show(server, sid)
    assert shown["status"] == "VERIFY_RESIZE" and shown["OS-EXT-SRV-ATTR:host"] != before
    server.openstack("server", "resize", "confirm", "mover")
    _wait(server, sid, "ACTIVE")

    rows = _json(server, "server", "migration", "list", "--server", "mover")
    assert sorted(r["Status"] for r in rows) == ["confirmed", "confirmed", "reverted"]
    assert sorted(r["Type"] for r in rows) == ["migration", "resize", "resize"]
    server.openstack("server", "delete", "--wait", "mover")


def test_cli_shelve_unshelve(server: RunningServer) -> None:
    sid = _create(server, "shelf")
    server.openstack("server", "shelve", "shelf")
    _wait(server, sid, "SHELVED_OFFLOADED")
    images = _json(server, "image", "list", "--name", "shelf-shelved")
    assert [i["Name"] for i in images] == ["shelf-shelved"]
    server.openstack("server", "unshelve", "shelf")
    shown = _wait(server, sid, "ACTIVE")
    assert shown["OS-EXT-SRV-ATTR:host"]
    assert _json(server, "image", "list", "--name", "shelf-shelved") == []
    server.openstack("server", "delete", "--wait", "shelf")
