"""A snapshot or backup of another project's server (an admin's createImage / createBackup of a
member's server), as Nova makes it: the image is the caller's project's, ``shared``, with
``instance_owner`` set and the server's project a pending member, so the server's owner still
sees it; the owner's own snapshots stay private and theirs."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api
from tests.functional.test_move_operations import SERVERS, action, boot


def _image_of(r: Any) -> str:
    assert r.status_code == 202, r.text
    return str(r.json()["image_id"])


def test_an_admin_snapshot_of_a_members_server_is_the_admins_and_shared(stack: Api) -> None:
    sid = boot(stack, "theirs")
    admin, demo = stack.ids["admin_project"], stack.ids["demo_project"]

    image_id = _image_of(
        action(stack, sid, {"createImage": {"name": "by-admin"}}, as_="admin", version="2.45")
    )
    image = stack.get(f"/image/v2/images/{image_id}", as_="admin").json()
    assert (image["owner"], image["visibility"], image["status"]) == (admin, "shared", "active")
    assert image["instance_owner"] == demo and image["instance_uuid"] == sid
    assert image["user_id"] == stack.ids["admin_user"]
    r = stack.get(f"/image/v2/images/{image_id}/members", as_="admin")
    assert r.status_code == 200, r.text
    assert [(m["member_id"], m["status"]) for m in r.json()["members"]] == [(demo, "pending")]
    # the server's owner sees it (by id; accepting the membership lists it too)
    seen = stack.get(f"/image/v2/images/{image_id}")
    assert seen.status_code == 200 and seen.json()["name"] == "by-admin"
    r = stack.put(f"/image/v2/images/{image_id}/members/{demo}", json={"status": "accepted"})
    assert r.status_code == 200, r.text
    assert image_id in [i["id"] for i in stack.get("/image/v2/images").json()["images"]]

    # the owner's own snapshot: private and the owner's, no members
    own = _image_of(action(stack, sid, {"createImage": {"name": "by-owner"}}, version="2.45"))
    image = stack.get(f"/image/v2/images/{own}").json()
    assert (image["owner"], image["visibility"]) == (demo, "private")
    assert "instance_owner" not in image


def test_an_admin_backup_of_a_members_server_rotates_its_own_backups(stack: Api) -> None:
    sid = boot(stack, "backed")
    admin = stack.ids["admin_project"]
    body = {"createBackup": {"name": "nightly", "backup_type": "daily", "rotation": 1}}
    first = _image_of(action(stack, sid, body, as_="admin", version="2.45"))
    second = _image_of(action(stack, sid, body, as_="admin", version="2.45"))

    assert stack.get(f"/image/v2/images/{first}", as_="admin").status_code == 404  # rotated away
    image = stack.get(f"/image/v2/images/{second}", as_="admin").json()
    assert (image["owner"], image["visibility"], image["image_type"]) == (admin, "shared", "backup")
    assert stack.get(f"/image/v2/images/{second}").status_code == 200  # the server's owner sees it
    assert stack.get(f"{SERVERS}/{sid}").json()["server"]["status"] == "ACTIVE"
