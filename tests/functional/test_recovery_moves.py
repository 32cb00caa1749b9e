"""A server deleted during a move while the engine died: the move's end never came, so its
migration still held the source host's allocation. Recovery releases it, as the delete of a
server on a host does; a move of a live server is left alone."""

from __future__ import annotations

from typing import Any

from novalite.compute import cleanup, recovery
from novalite.context import RequestContext
from novalite.domain import actions as transitions
from novalite.services import server_moves
from tests.conftest import Api
from tests.functional.test_move_operations import (
    SERVERS,
    TINY,
    boot,
    consumer,
    host_of,
    migrations,
    server,
    usages,
)


def _moving(stack: Api, name: str) -> tuple[str, str]:
    """A server whose resize began (the migration holds its source allocation) and went no
    further: (server id, migration uuid)."""
    rt = stack.runtime  # type: ignore[attr-defined]
    sid = boot(stack, name)
    ctx = RequestContext(
        user_id=stack.ids["demo_user"], project_id=stack.ids["demo_project"], roles=("member",)
    )
    move = server_moves.begin(rt, ctx, sid, transition=transitions.RESIZE, flavor_ref="2", host=None)
    rt.db.write(lambda s: server_moves.start_move(s, move.migration_uuid))
    assert server(stack, sid)["status"] == "RESIZE" and consumer(stack, sid) == {}
    return sid, move.migration_uuid


def test_recovery_releases_the_move_of_a_server_deleted_meanwhile(stack_factory: Any) -> None:
    stack = stack_factory(fake_hosts=2)
    rt = stack.runtime
    gone, gone_move = _moving(stack, "gone")
    kept, kept_move = _moving(stack, "kept")
    src = host_of(stack, kept)

    # the delete finished without the move's end (as the database is left when the engine died
    # between them): the row is deleted, the migration still holds the source allocation
    def delete_row(s: Any) -> None:
        cleanup.release_resources(s, gone, None)
        cleanup.mark_deleted(s, gone)

    rt.db.write(delete_row)
    assert stack.get(f"{SERVERS}/{gone}").status_code == 404
    assert consumer(stack, gone_move) != {}

    report = recovery.Report()
    recovery.release_deleted_moves(rt.db, report)
    assert report.moves_released == [gone] and bool(report)

    assert consumer(stack, gone_move) == {}
    [m] = migrations(stack, instance_uuid=gone)
    assert m["status"] == "error"
    # the live server's move is untouched: its migration still holds its source allocation
    assert list(consumer(stack, kept_move)) and usages(stack)[src] == TINY
    assert [m["status"] for m in migrations(stack, instance_uuid=kept)] == ["migrating"]

    again = recovery.Report()
    recovery.release_deleted_moves(rt.db, again)
    assert again.moves_released == [] and not again
