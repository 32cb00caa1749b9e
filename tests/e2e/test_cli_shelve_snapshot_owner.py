"""With the unmodified ``openstack`` CLI against ``novalite serve``: an admin's image of a
member's server is the admin project's and shared with the member, who still sees it; deleting
a shelved server deletes its ``<name>-shelved`` image."""

from __future__ import annotations

from typing import Any

from tests.conftest import RunningServer
from tests.e2e.test_cli_moves import _create, _json, _wait

ADMIN = "novalite-admin"


def _project_id(server: RunningServer, name: str) -> str:
    return str(_json(server, "project", "show", name, cloud=ADMIN)["id"])


def test_cli_admin_snapshot_and_shelved_delete(server: RunningServer) -> None:
    sid = _create(server, "owned")
    snap: dict[str, Any] = _json(
        server, "server", "image", "create", "--name", "admin-snap", "--wait", sid, cloud=ADMIN
    )
    shown = _json(server, "image", "show", snap["id"], cloud=ADMIN)
    assert shown["owner"] == _project_id(server, "admin") and shown["visibility"] == "shared"
    members = _json(server, "image", "member", "list", snap["id"], cloud=ADMIN)
    assert [(m["Member ID"], m["Status"]) for m in members] == [(_project_id(server, "demo"), "pending")]
    assert _json(server, "image", "show", snap["id"])["name"] == "admin-snap"  # the owner sees it

    server.openstack("server", "shelve", "owned")
    _wait(server, sid, "SHELVED_OFFLOADED")
    assert [i["Name"] for i in _json(server, "image", "list", "--name", "owned-shelved")] == ["owned-shelved"]
    server.openstack("server", "delete", "--wait", "owned")
    assert _json(server, "image", "list", "--name", "owned-shelved") == []
