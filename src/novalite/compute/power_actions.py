"""Power actions of a real guest, on its compute agent (issue 17): stop, start, reboot, pause,
unpause, suspend, resume.

The API checked the action, set the server's task state (``powering-off``, ``rebooting_hard``,
...) and cast ``PowerAction``; here the driver carries it out, then the final vm_state and
power_state are written and the task state cleared, only while the server still has the task
state the API set (a delete or reset in between wins). A driver failure gives the server back
its vm_state with a fault and the action's event in error (Nova's ``_error_out_instance...``).
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from novalite.compute import actions
from novalite.compute.guest_spec import guest_spec
from novalite.compute.rpcapi import PowerAction
from novalite.db.base import utcnow
from novalite.db.models.compute import Instance
from novalite.domain.actions import TRANSITIONS, reboot
from novalite.domain.states import TaskState
from novalite.virt.driver import DriverError, GuestSpec

LOG = logging.getLogger(__name__)

# the action's name -> the task state the API sets while the agent works
TASK_STATES = {
    "stop": TaskState.POWERING_OFF,
    "start": TaskState.POWERING_ON,
    "pause": TaskState.PAUSING,
    "unpause": TaskState.UNPAUSING,
    "suspend": TaskState.SUSPENDING,
    "resume": TaskState.RESUMING,
}
_FINAL = {t.name: t.to_vm for t in TRANSITIONS.values()}


def task_state(action: str, *, hard: bool) -> str | None:
    """The task state of ``action`` on a real host (None: not an agent action)."""
    if action == "reboot":
        return TaskState.REBOOTING_HARD if hard else TaskState.REBOOTING
    return TASK_STATES.get(action)


def _final_vm_state(action: str, hard: bool, current: str) -> str:
    if action == "reboot":
        return reboot("HARD" if hard else "SOFT").to_vm or current
    return _FINAL.get(action) or current


def power_action(agent: Any, msg: PowerAction) -> None:
    with agent.db.reader() as s:
        row = s.scalars(select(Instance).where(Instance.uuid == msg.instance_uuid)).first()
        if row is None or row.deleted or row.task_state != msg.task_state:
            return
        guest = guest_spec(
            row,
            agent.host,
        )
        vm_state = row.vm_state
    event = f"compute_{msg.action}_instance"
    try:
        _drive(agent.driver, msg, guest)
    except DriverError as exc:
        LOG.warning("%s of %s on %s failed: %s", msg.action, msg.instance_uuid, agent.host, exc)
        failure = (str(exc), traceback.format_exc())
        agent.db.write(lambda s: _finish(s, agent, msg, vm_state, None, event, error=failure))
        return
    power = int(agent.driver.get_info(guest).state)
    final = _final_vm_state(msg.action, msg.hard, vm_state)
    agent.db.write(lambda s: _finish(s, agent, msg, final, power, event, error=None))


def _drive(driver: Any, msg: PowerAction, guest: GuestSpec) -> None:
    if msg.action == "stop":
        driver.power_off(guest)
    elif msg.action == "start":
        driver.power_on(guest)
    elif msg.action == "reboot":
        driver.reboot(guest, hard=msg.hard)
    elif msg.action == "pause":
        driver.pause(guest)
    elif msg.action == "unpause":
        driver.unpause(guest)
    elif msg.action == "suspend":
        driver.suspend(guest)
    elif msg.action == "resume":
        driver.resume(guest)


def _finish(
    s: Session,
    agent: Any,
    msg: PowerAction,
    vm_state: str,
    power: int | None,
    event: str,
    *,
    error: tuple[str, str] | None,
) -> None:
    values: dict[str, Any] = {"vm_state": vm_state, "task_state": None, "updated_at": utcnow()}
    if power is not None:
        values["power_state"] = power
    changed = s.execute(
        update(Instance)
        .where(
            Instance.uuid == msg.instance_uuid,
            Instance.deleted.is_(False),
            Instance.task_state == msg.task_state,
        )
        .values(**values)
    ).rowcount  # type: ignore[attr-defined]
    if not changed:
        return
    row = s.execute(
        select(Instance.user_id, Instance.project_id).where(Instance.uuid == msg.instance_uuid)
    ).first()
    action_id = actions.find_action(
        s,
        msg.instance_uuid,
        msg.action,
        user_id=row.user_id if row else "",
        project_id=row.project_id if row else "",
    )
    if error is None:
        actions.record_event(s, action_id, event, ok=True, host=agent.host)
        return
    reason, tb = error
    actions.record_event(s, action_id, event, ok=False, host=agent.host, traceback=tb, details=reason)
    message = f"{msg.action} of instance {msg.instance_uuid} failed: {reason}"
    actions.add_fault(s, msg.instance_uuid, message=message[:255], details=tb, host=agent.host)
