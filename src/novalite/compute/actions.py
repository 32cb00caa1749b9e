"""Instance actions, their events, and faults: the records the API shows about a build/delete.

Statements are built once with bound parameters and run on the session's connection: these
run several times per build, and building SQL expressions costs more than executing them.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

from novalite.db.base import utcnow
from novalite.db.models.compute import InstanceAction, InstanceActionEvent, InstanceFault
from novalite.db.precompiled import Precompiled

FAULT_MESSAGE_MAX = 255
_ACTIONS = cast(Table, InstanceAction.__table__)
_EVENTS = cast(Table, InstanceActionEvent.__table__)
_FAULTS = cast(Table, InstanceFault.__table__)

# Precompiled (``db.precompiled``): several of these run per build while the write lock is held
_FIND = Precompiled(
    select(_ACTIONS.c.id)
    .where(_ACTIONS.c.instance_uuid == bindparam("instance_uuid"), _ACTIONS.c.action == bindparam("action"))
    .order_by(_ACTIONS.c.id.desc())
    .limit(1)
)
_ADD_ACTION = Precompiled(insert(_ACTIONS).returning(_ACTIONS.c.id))
_ADD_EVENT = Precompiled(insert(_EVENTS).returning(_EVENTS.c.id))
_RECORD_EVENT = Precompiled(insert(_EVENTS))
_FINISH = Precompiled(
    update(_EVENTS)
    .where(_EVENTS.c.id == bindparam("event_id"))
    .values(
        finish_time=bindparam("v_finish"),
        result=bindparam("v_result"),
        traceback=bindparam("v_traceback"),
        details=bindparam("v_details"),
    )
)
_ACTION_OF = Precompiled(select(_EVENTS.c.action_id).where(_EVENTS.c.id == bindparam("event_id")))
_MARK_ERROR = Precompiled(
    update(_ACTIONS)
    .where(_ACTIONS.c.id == bindparam("action_id"))
    .values(message="Error", updated_at=bindparam("v_now"))
)


def find_action(
    s: Session,
    instance_uuid: str,
    action: str,
    *,
    user_id: str = "",
    project_id: str = "",
    request_id: str = "",
) -> int:
    """The id of the latest ``action`` of the instance; the action is created when missing."""
    conn = s.connection()
    found = _FIND.first(conn, {"instance_uuid": instance_uuid, "action": action})
    if found is not None:
        return int(found[0])
    now = utcnow()
    added = _ADD_ACTION.first(
        conn,
        {
            "instance_uuid": instance_uuid,
            "action": action,
            "request_id": request_id or "",
            "user_id": user_id,
            "project_id": project_id,
            "start_time": now,
            "updated_at": now,
        },
    )
    assert added is not None
    return int(added[0])


def start_event(s: Session, action_id: int, event: str, *, host: str | None) -> int:
    row: dict[str, Any] = {"action_id": action_id, "event": event, "start_time": utcnow(), "host": host}
    added = _ADD_EVENT.first(s, row)
    assert added is not None
    return int(added[0])


def finish_event(
    s: Session, event_id: int, *, ok: bool, traceback: str | None = None, details: str | None = None
) -> None:
    """Close the event; an error also marks its action's ``message`` "Error"."""
    conn = s.connection()
    _FINISH.run(
        conn,
        {
            "event_id": event_id,
            "v_finish": utcnow(),
            "v_result": "Success" if ok else "Error",
            "v_traceback": None if ok else traceback,
            "v_details": None if ok else details,
        },
    )
    if not ok:
        row = _ACTION_OF.first(conn, {"event_id": event_id})
        _MARK_ERROR.run(conn, {"action_id": row[0] if row else None, "v_now": utcnow()})


def record_event(
    s: Session,
    action_id: int,
    event: str,
    *,
    ok: bool,
    host: str | None,
    traceback: str | None = None,
    details: str | None = None,
) -> None:
    """A finished event in one go (one INSERT; a failure also marks the action "Error")."""
    now = utcnow()
    _RECORD_EVENT.run(
        s,
        {
            "action_id": action_id,
            "event": event,
            "start_time": now,
            "host": host,
            "finish_time": now,
            "result": "Success" if ok else "Error",
            "traceback": None if ok else traceback,
            "details": None if ok else details,
        },
    )
    if not ok:
        mark_error(s, action_id)


def mark_error(s: Session, action_id: int) -> None:
    _MARK_ERROR.run(s, {"action_id": action_id, "v_now": utcnow()})


def add_fault(
    s: Session,
    instance_uuid: str,
    *,
    message: str,
    code: int = 500,
    details: str = "",
    host: str | None = None,
) -> None:
    """Nova keeps ``details`` (the traceback) only for code 500."""
    s.connection().execute(
        insert(_FAULTS),
        {
            "instance_uuid": instance_uuid,
            "code": code,
            "message": message[:FAULT_MESSAGE_MAX],
            "details": details if code == 500 else "",
            "host": host,
            "created_at": utcnow(),
        },
    )
