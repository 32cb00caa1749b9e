"""Reading a server's instance actions and their events (os-instance-actions, §4.6)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from novalite.db.models.compute import InstanceAction, InstanceActionEvent
from novalite.errors import BadRequest


def list_actions(
    s: Session,
    instance_uuid: str,
    *,
    since: dt.datetime | None = None,
    before: dt.datetime | None = None,
    marker: str | None = None,
    limit: int | None = None,
) -> list[InstanceAction]:
    """Newest first; ``since``/``before`` bound ``updated_at``; ``marker`` is the request id of the
    action the page starts after (400 when the server has no such action)."""
    query = select(InstanceAction).where(InstanceAction.instance_uuid == instance_uuid)
    if since:
        query = query.where(InstanceAction.updated_at >= since)
    if before:
        query = query.where(InstanceAction.updated_at <= before)
    if marker is not None:
        row = get_action(s, instance_uuid, marker)
        if row is None:
            raise BadRequest(f"Marker {marker} could not be found.")
        query = query.where(InstanceAction.id < row.id)
    query = query.order_by(InstanceAction.start_time.desc(), InstanceAction.id.desc())
    return list(s.scalars(query.limit(limit) if limit is not None else query))


def get_action(s: Session, instance_uuid: str, request_id: str) -> InstanceAction | None:
    return s.scalars(
        select(InstanceAction).where(
            InstanceAction.instance_uuid == instance_uuid, InstanceAction.request_id == request_id
        )
    ).first()


def action_events(s: Session, action: InstanceAction) -> list[InstanceActionEvent]:
    """Newest first."""
    return list(
        s.scalars(
            select(InstanceActionEvent)
            .where(InstanceActionEvent.action_id == action.id)
            .order_by(InstanceActionEvent.start_time.desc(), InstanceActionEvent.id.desc())
        )
    )
