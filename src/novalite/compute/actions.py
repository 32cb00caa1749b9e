"""Instance actions, their events, and faults: the records the API shows about a build/delete."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from novalite.db.base import utcnow
from novalite.db.models.compute import InstanceAction, InstanceActionEvent, InstanceFault

FAULT_MESSAGE_MAX = 255


def find_action(s: Session, instance_uuid: str, action: str, *, user_id: str = "", project_id: str = "",
                request_id: str = "") -> InstanceAction:
    """The latest ``action`` of the instance; created when missing."""
    q = (select(InstanceAction).where(InstanceAction.instance_uuid == instance_uuid, InstanceAction.action == action)
         .order_by(InstanceAction.id.desc()).limit(1))
    row = s.scalars(q).first()
    if row is None:
        row = InstanceAction(instance_uuid=instance_uuid, action=action, request_id=request_id or "",
                             user_id=user_id, project_id=project_id, start_time=utcnow())
        s.add(row)
        s.flush()
    return row


def start_event(s: Session, action: InstanceAction, event: str, *, host: str | None) -> int:
    ev = InstanceActionEvent(action_id=action.id, event=event, start_time=utcnow(), host=host)
    s.add(ev)
    s.flush()
    return ev.id


def finish_event(s: Session, event_id: int, *, ok: bool, traceback: str | None = None,
                 details: str | None = None) -> None:
    s.execute(update(InstanceActionEvent).where(InstanceActionEvent.id == event_id)
              .values(finish_time=utcnow(), result="Success" if ok else "Error",
                      traceback=None if ok else traceback, details=None if ok else details))
    if not ok:
        action_id = s.execute(select(InstanceActionEvent.action_id).where(InstanceActionEvent.id == event_id)).scalar()
        s.execute(update(InstanceAction).where(InstanceAction.id == action_id).values(message="Error"))


def record_event(s: Session, action: InstanceAction, event: str, *, ok: bool, host: str | None,
                 traceback: str | None = None, details: str | None = None) -> None:
    """A finished event in one go."""
    finish_event(s, start_event(s, action, event, host=host), ok=ok, traceback=traceback, details=details)


def add_fault(s: Session, instance_uuid: str, *, message: str, code: int = 500, details: str = "",
              host: str | None = None) -> None:
    """Nova keeps ``details`` (the traceback) only for code 500."""
    s.add(InstanceFault(instance_uuid=instance_uuid, code=code, message=message[:FAULT_MESSAGE_MAX],
                        details=details if code == 500 else "", host=host, created_at=utcnow()))
