"""Deleting a shelved server deletes its ``<name>-shelved`` snapshot image, as Nova does: a
SHELVED_OFFLOADED or SHELVED server leaves no image behind in the owner's image list."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api
from tests.functional.test_move_operations import SERVERS, action, boot, wait_status
from tests.functional.test_shelve import images_named


def _delete_and_wait(stack: Api, sid: str, *, as_: str = "demo") -> None:
    assert stack.delete(f"{SERVERS}/{sid}", as_=as_).status_code == 204
    stack.wait_for(f"{SERVERS}/{sid}", lambda r: r.status_code == 404)


def test_deleting_an_offloaded_server_deletes_its_shelved_image(stack_factory: Any) -> None:
    stack = stack_factory()
    sid = boot(stack, "gone")
    keep = boot(stack, "kept")  # another shelved server's image stays
    for server in (sid, keep):
        assert action(stack, server, {"shelve": None}).status_code == 202
        wait_status(stack, server, "SHELVED_OFFLOADED")
    [image] = images_named(stack, "gone-shelved")
    assert image["status"] == "active"

    _delete_and_wait(stack, sid)
    assert images_named(stack, "gone-shelved") == []
    assert stack.get(f"/image/v2/images/{image['id']}", as_="admin").status_code == 404
    assert [i["status"] for i in images_named(stack, "kept-shelved")] == ["active"]


def test_deleting_a_shelved_server_by_an_admin_deletes_its_image(stack_factory: Any) -> None:
    stack = stack_factory(shelved_offload_time=-1)
    sid = boot(stack, "onhost")
    assert action(stack, sid, {"shelve": None}).status_code == 202
    wait_status(stack, sid, "SHELVED")
    [image] = images_named(stack, "onhost-shelved")

    _delete_and_wait(stack, sid, as_="admin")
    assert stack.get(f"/image/v2/images/{image['id']}").status_code == 404
    assert images_named(stack, "onhost-shelved") == []


def test_a_shelved_image_already_deleted_does_not_stop_the_delete(stack_factory: Any) -> None:
    stack = stack_factory()
    sid = boot(stack, "early")
    assert action(stack, sid, {"shelve": None}).status_code == 202
    wait_status(stack, sid, "SHELVED_OFFLOADED")
    [image] = images_named(stack, "early-shelved")
    assert stack.delete(f"/image/v2/images/{image['id']}").status_code == 204

    _delete_and_wait(stack, sid)


def test_a_server_shelved_by_an_admin_keeps_its_image_with_the_owner(stack_factory: Any) -> None:
    """shelve by an admin: the snapshot stays the server's project's (so the owner's unshelve and
    delete can remove it); deleting the server as its owner deletes it."""
    stack = stack_factory()
    sid = boot(stack, "adminshelf")
    assert action(stack, sid, {"shelve": None}, as_="admin").status_code == 202
    wait_status(stack, sid, "SHELVED_OFFLOADED")
    [image] = images_named(stack, "adminshelf-shelved")
    assert (image["owner"], image["visibility"]) == (stack.ids["demo_project"], "private")

    _delete_and_wait(stack, sid)
    assert stack.get(f"/image/v2/images/{image['id']}", as_="admin").status_code == 404
