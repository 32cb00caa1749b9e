"""``instance.update``: a server's vm_state, task_state or name changed (docs/notifications.md).

Nova sends it from ``Instance.save()`` (with ``[notifications] notify_on_state_change =
vm_and_task_state``); novalite changes instances both through the ORM and with plain UPDATE
statements, so the changes are seen where every write passes, the session:

* ``before_flush`` -- the attribute history of the ``Instance`` objects about to be written;
* ``do_orm_execute`` -- an UPDATE of the instances table run through ``Session.execute``: the
  matched rows are read before and after it;
* ``before_commit`` -- the session is flushed and a payload built for every change (the
  instance as the transaction leaves it); ``after_commit`` publishes them, a rollback drops them.

The hooks are registered on the first ``notifications.install``: with notifications off nothing
is registered and writes cost nothing more.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

from sqlalchemy import event, inspect, select
from sqlalchemy.orm import ORMExecuteState, Session

from novalite import notifications

PAYLOAD = ("InstanceUpdatePayload", "1.9")
WATCHED = ("vm_state", "task_state", "display_name")
_CHANGES = "novalite.instance_updates"
_READY = "novalite.instance_update_messages"
_lock = threading.Lock()
_listening = False


def listen() -> None:
    """Register the session hooks (once per process)."""
    global _listening
    with _lock:
        if _listening:
            return
        event.listen(Session, "before_flush", _before_flush)
        event.listen(Session, "do_orm_execute", _do_orm_execute)
        event.listen(Session, "before_commit", _before_commit)
        event.listen(Session, "after_commit", _after_commit)
        event.listen(Session, "after_rollback", _forget)
        _listening = True


def _instance_model() -> Any:
    from novalite.db.models.compute import Instance

    return Instance


def _record(s: Session, uuid: str, old: tuple[Any, ...], new: tuple[Any, ...]) -> None:
    if old != new:
        s.info.setdefault(_CHANGES, []).append((uuid, old, new))


def _before_flush(s: Session, _ctx: Any, _instances: Any) -> None:
    if notifications.notifier_of(s) is None:
        return
    model = _instance_model()
    for obj in list(s.dirty):
        if not isinstance(obj, model):
            continue
        attrs = inspect(obj).attrs
        old, new = [], []
        for name in WATCHED:
            hist = attrs[name].history
            now = getattr(obj, name)
            old.append(hist.deleted[0] if hist.deleted else now)
            new.append(now)
        _record(s, obj.uuid, tuple(old), tuple(new))


def _rows(s: Session, where: Any, params: Any) -> dict[str, tuple[Any, ...]]:
    model = _instance_model()
    cols = [model.uuid, *(getattr(model, n) for n in WATCHED)]
    query = select(*cols).where(where)
    return {r[0]: tuple(r[1:]) for r in s.execute(query, params or {})}


def _do_orm_execute(state: ORMExecuteState) -> Any:
    if not state.is_update or notifications.notifier_of(state.session) is None:
        return None
    stmt = state.statement
    table = getattr(stmt, "table", None)
    model = _instance_model()
    where = getattr(stmt, "whereclause", None)
    name = getattr(table, "name", None)  # update(Instance) names an annotated copy of the table
    if name != model.__tablename__ or where is None or not isinstance(state.parameters, (dict, type(None))):
        return None
    values = {getattr(k, "key", k) for k in getattr(stmt, "_values", None) or {}}
    if values and not values & set(WATCHED):
        return None
    before = _rows(state.session, where, state.parameters)
    result = state.invoke_statement()
    if before:
        after = _rows(state.session, model.uuid.in_(list(before)), {})
        for uuid, old in before.items():
            if uuid in after:
                _record(state.session, uuid, old, after[uuid])
    return result


def before(s: Session, uuid: str) -> tuple[Any, ...] | None:
    """For a write the hooks do not see: the instance's watched fields before it (None when
    notifications are off); pass them to ``after`` once the write is done."""
    if not notifications._NOTIFIERS or notifications.notifier_of(s) is None:
        return None
    return _rows(s, _instance_model().uuid == uuid, {}).get(uuid, ())


def after(s: Session, uuid: str, old: tuple[Any, ...]) -> None:
    new = _rows(s, _instance_model().uuid == uuid, {}).get(uuid)
    if old and new is not None:
        _record(s, uuid, old, new)


def _audit_period() -> dict[str, Any]:
    """The current audit period (Nova's default: the month so far)."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    begin = now.replace(day=1, hour=0, minute=0, second=0)
    return notifications._object(
        "AuditPeriodPayload",
        "1.0",
        {
            "audit_period_beginning": begin.isoformat().replace("+00:00", "Z"),
            "audit_period_ending": now.isoformat().replace("+00:00", "Z"),
        },
    )


def _tags(s: Session, uuid: str) -> list[str]:
    from novalite.db.models.compute import InstanceTag

    return sorted(s.scalars(select(InstanceTag.tag).where(InstanceTag.instance_uuid == uuid)))


def _before_commit(s: Session) -> None:
    if notifications.notifier_of(s) is None:
        return
    s.flush()  # the commit's own flush comes after this hook
    changes = s.info.pop(_CHANGES, [])
    if not changes:
        return
    ready = s.info.setdefault(_READY, [])
    name, version = PAYLOAD
    for uuid, old, new in changes:
        (old_state, old_task, old_name), (state, task, display_name) = old, new
        extra = {
            "state_update": notifications._object(
                "InstanceStateUpdatePayload",
                "1.0",
                {"old_state": old_state, "state": state, "old_task_state": old_task, "new_task_state": task},
            ),
            "old_display_name": old_name if old_name != display_name else None,
            "audit_period": _audit_period(),
            "bandwidth": [],
            "tags": _tags(s, uuid),
        }
        payload = notifications.instance_payload(s, uuid, name=name, version=version, extra=extra)
        ready.append(payload)


def _after_commit(s: Session) -> None:
    ready = s.info.pop(_READY, None)
    if not ready:
        return
    notifier = notifications.notifier_of(s)
    if notifier is None:
        return
    for payload in ready:
        notifier.notify("instance.update", payload, host=payload["nova_object.data"].get("host"))


def _forget(s: Session) -> None:
    s.info.pop(_CHANGES, None)
    s.info.pop(_READY, None)
