"""Rescue, unrescue, trigger_crash_dump and rebuild of a real guest, on its compute agent.

The API checked the action, set the server's task state (``rescuing``, ``unrescuing``,
``rebuilding``; none for a crash dump), committed and cast the message (``compute.guest_rpc``).
Here the driver carries it out; then the final state is written and the task state cleared,
only while the server still has the task state the API set (a delete or reset in between wins):

* rescue: the guest boots from the rescue image with its own disk second -> RESCUED
  (``launched_at`` updated, as Nova); unrescue: its own disks again, running -> ACTIVE. A driver
  failure gives the server back its vm_state with a fault and the event in error.
* trigger_crash_dump: an NMI (QMP ``inject-nmi``); no state change; a failure (the guest does
  not run) is a fault, as Nova's asynchronous cast makes it.
* rebuild (Nova's ``_rebuild_default_impl``): the guest is powered off, destroyed with its disks,
  task ``rebuild_spawning``, spawned again from the server's (new) image on the same ports, and
  powered off once more when the server was SHUTOFF (it stays SHUTOFF; else ACTIVE). A failure
  leaves the server in ERROR with the fault.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from novalite.compute import actions, build
from novalite.compute.guest_rpc import RebuildInstance, RescueInstance, TriggerCrashDump, UnrescueInstance
from novalite.compute.guest_spec import guest_spec
from novalite.db.base import utcnow
from novalite.db.models.compute import Instance
from novalite.domain.actions import after_rebuild
from novalite.domain.states import PowerState, TaskState, VmState
from novalite.virt.driver import DriverError, GuestSpec

LOG = logging.getLogger(__name__)
Failure = tuple[str, str]  # (reason, traceback)


def _guest(agent: Any, row: Instance) -> GuestSpec:
    return guest_spec(
        row,
        agent.host,
    )


def _load(agent: Any, uuid: str, task_state: str | None) -> tuple[GuestSpec, str] | None:
    """The guest and its vm_state while the server is still there with ``task_state``."""
    with agent.db.reader() as s:
        row = s.scalars(select(Instance).where(Instance.uuid == uuid)).first()
        if row is None or row.deleted or row.task_state != task_state:
            return None
        return _guest(agent, row), row.vm_state


def _method(agent: Any, name: str) -> Callable[..., Any]:
    found = getattr(agent.driver, name, None)  # optional: the QEMU driver has them
    if found is None:
        raise DriverError(f"{name} is not supported by the driver of {agent.host}")
    return found  # type: ignore[no-any-return]


def _failure(exc: Exception) -> Failure:
    return str(exc), traceback.format_exc()


def _finish(
    s: Session,
    agent: Any,
    uuid: str,
    *,
    action: str,
    tasks: tuple[str, ...] | None,
    values: dict[str, Any],
    error: Failure | None,
) -> None:
    """Write ``values`` and clear the task (only while the server has one of ``tasks``; None: no
    task, nothing written), then the action's event and, on failure, the fault."""
    if tasks is not None:
        changed = s.execute(
            update(Instance)
            .where(Instance.uuid == uuid, Instance.deleted.is_(False), Instance.task_state.in_(tasks))
            .values(task_state=None, updated_at=utcnow(), **values)
        ).rowcount  # type: ignore[attr-defined]
        if not changed:
            return
    row = s.execute(
        select(Instance.user_id, Instance.project_id, Instance.deleted).where(Instance.uuid == uuid)
    ).first()
    if row is None or row.deleted:
        return
    action_id = actions.find_action(s, uuid, action, user_id=row.user_id, project_id=row.project_id)
    event = f"compute_{action}" if action == "trigger_crash_dump" else f"compute_{action}_instance"
    if error is None:
        actions.record_event(s, action_id, event, ok=True, host=agent.host)
        return
    reason, tb = error
    actions.record_event(s, action_id, event, ok=False, host=agent.host, traceback=tb, details=reason)
    message = f"{action} of instance {uuid} failed: {reason}"
    actions.add_fault(s, uuid, message=message[:255], details=tb, host=agent.host)


def _record(
    agent: Any,
    uuid: str,
    *,
    action: str,
    tasks: tuple[str, ...] | None,
    values: dict[str, Any],
    error: Failure | None,
) -> None:
    agent.db.write(lambda s: _finish(s, agent, uuid, action=action, tasks=tasks, values=values, error=error))


def _power(agent: Any, guest: GuestSpec) -> int:
    return int(agent.driver.get_info(guest).state)


# -- rescue / unrescue -----------------------------------------------------------------------------


def rescue_instance(agent: Any, msg: RescueInstance) -> None:
    found = _load(agent, msg.instance_uuid, msg.task_state)
    if found is None:
        return
    guest, vm_state = found
    with agent.db.reader() as s:
        image = build.image_info(s, msg.image_ref)
    tasks = (msg.task_state,)
    try:
        _method(agent, "rescue")(guest, image)
    except DriverError as exc:
        LOG.warning("rescue of %s on %s failed: %s", msg.instance_uuid, agent.host, exc)
        error = _failure(exc)
        _record(agent, msg.instance_uuid, action="rescue", tasks=tasks, values={}, error=error)
        return
    values = {"vm_state": VmState.RESCUED, "power_state": _power(agent, guest), "launched_at": utcnow()}
    _record(agent, msg.instance_uuid, action="rescue", tasks=tasks, values=values, error=None)
    LOG.info("instance %s rescued on %s (was %s)", msg.instance_uuid, agent.host, vm_state)


def unrescue_instance(agent: Any, msg: UnrescueInstance) -> None:
    found = _load(agent, msg.instance_uuid, msg.task_state)
    if found is None:
        return
    guest, _vm_state = found
    tasks = (msg.task_state,)
    try:
        _method(agent, "unrescue")(guest)
    except DriverError as exc:
        LOG.warning("unrescue of %s on %s failed: %s", msg.instance_uuid, agent.host, exc)
        error = _failure(exc)
        _record(agent, msg.instance_uuid, action="unrescue", tasks=tasks, values={}, error=error)
        return
    values = {"vm_state": VmState.ACTIVE, "power_state": _power(agent, guest)}
    _record(agent, msg.instance_uuid, action="unrescue", tasks=tasks, values=values, error=None)


# -- trigger_crash_dump ----------------------------------------------------------------------------


def trigger_crash_dump(agent: Any, msg: TriggerCrashDump) -> None:
    with agent.db.reader() as s:
        row = s.scalars(select(Instance).where(Instance.uuid == msg.instance_uuid)).first()
        if row is None or row.deleted:
            return
        guest = _guest(agent, row)
    error: Failure | None = None
    try:
        _method(agent, "inject_nmi")(guest)
    except DriverError as exc:
        LOG.warning("crash dump of %s on %s failed: %s", msg.instance_uuid, agent.host, exc)
        error = _failure(exc)
    _record(agent, msg.instance_uuid, action="trigger_crash_dump", tasks=None, values={}, error=error)


# -- rebuild ---------------------------------------------------------------------------------------


def rebuild_instance(agent: Any, msg: RebuildInstance) -> None:
    uuid = msg.instance_uuid
    found = _load(agent, uuid, msg.task_state)
    if found is None:
        return
    old, vm_state = found
    tasks = (msg.task_state, TaskState.REBUILD_SPAWNING)
    final_vm, _power_state = after_rebuild(vm_state)
    try:
        if agent.driver.get_info(old).state in (PowerState.RUNNING, PowerState.PAUSED):
            agent.driver.power_off(old)  # a clean power-off first (Nova)
        agent.driver.destroy(old)  # its disks, config drive and console log go too
        if not agent.db.write(lambda s: _spawning(s, uuid, msg.task_state)):
            return  # deleted or reset meanwhile
        with agent.db.reader() as s:
            guest = build.existing_guest(s, uuid, agent.host)
        if guest is None:
            return
        agent.driver.spawn(guest)
        if final_vm == VmState.STOPPED:
            agent.driver.power_off(guest)
    except DriverError as exc:
        LOG.warning("rebuild of %s on %s failed: %s", uuid, agent.host, exc)
        error = _failure(exc)
        values = {"vm_state": VmState.ERROR}
        _record(agent, uuid, action="rebuild", tasks=tasks, values=values, error=error)
        return
    done = {"vm_state": final_vm, "power_state": _power(agent, guest), "launched_at": utcnow()}
    _record(agent, uuid, action="rebuild", tasks=tasks, values=done, error=None)


def _spawning(s: Session, uuid: str, expected: str) -> bool:
    changed = s.execute(
        update(Instance)
        .where(Instance.uuid == uuid, Instance.deleted.is_(False), Instance.task_state == expected)
        .values(task_state=TaskState.REBUILD_SPAWNING, updated_at=utcnow())
    ).rowcount  # type: ignore[attr-defined]
    return bool(changed)
