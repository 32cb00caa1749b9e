"""Real-host actions that never finished: their agent died mid-way, or their message was lost.

The API sets a task state (``powering-off``, ``rebooting``, ``rescuing`` ...) and casts the action
to the host's agent (``compute.power_actions``, ``compute.guest_actions``), which clears it once
the guest is done. When the agent is killed or restarted in between, or the cast never arrives,
nothing would ever clear it. As Nova's compute manager does on start (``_init_instance``), the
agent settles each such server from its guest's real power state (``settle``):

    task state              guest found                 outcome
    ──────────────────────  ──────────────────────────  ──────────────────────────────────────────
    powering-off            any                         the stop is carried out again -> SHUTOFF
    powering-on             any                         the start is carried out again -> ACTIVE
    rebooting(_hard)        running                     task cleared, ACTIVE (reboot not repeated)
                            not running                 hard reboot -> ACTIVE
    pausing                 paused / running            PAUSED / ACTIVE (the pause did not happen)
    unpausing               paused / running            unpaused -> ACTIVE / ACTIVE
    suspending              suspended / running,paused  SUSPENDED / ACTIVE (a paused guest continued)
    resuming                suspended,paused / running  resumed -> ACTIVE / ACTIVE
    rescuing                any                         rolled back: own disks, ACTIVE (SHUTOFF if it
                                                        was), the rescue's event in error
    unrescuing              any                         the unrescue is finished -> ACTIVE
    rebuilding,             (not asked)                 ERROR with a fault (Nova: the guest may be
      rebuild_spawning                                  half destroyed)
    any other outcome       shut down / crashed /       SHUTOFF / SUSPENDED / PAUSED, the action's
                            suspended / paused          event in error

A driver failure (e.g. the guest's directory is gone) ends as the action's own failure does: the
server gets its vm_state back (ERROR for a rebuild) with a fault and the event in error. Every
outcome is an event of the action the API recorded (``compute_stop_instance`` ...): Success when
the action's result was reached, Error (with why) when not. An action carried out here sends its
versioned notifications (``instance.power_off.start`` / ``.end`` ...), as the agent does.

When: at the agent's start, before it consumes messages (``HostSync.settle_interrupted``), and
in its power-state loop for task states that have not moved for ``stuck_action_timeout`` seconds
(lost casts; a message being handled by this agent is never taken for one: ``guarded``). Every
write is conditional on the task state and ``updated_at`` read, so a delete, a reset or the late
message itself wins; a late message finds the task state cleared and does nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from novalite import notifications
from novalite.compute import actions
from novalite.compute.guest_rpc import RebuildInstance, RescueInstance, TriggerCrashDump, UnrescueInstance
from novalite.compute.guest_spec import guest_spec
from novalite.compute.rpcapi import PowerAction
from novalite.db.base import Database, utcnow
from novalite.db.models.compute import Instance, InstanceAction, InstanceActionEvent
from novalite.domain.states import PowerState, TaskState, VmState
from novalite.virt.driver import DriverError, GuestSpec

LOG = logging.getLogger(__name__)

# task state -> the action the API recorded for it
ACTION_OF = {
    TaskState.POWERING_OFF: "stop",
    TaskState.POWERING_ON: "start",
    TaskState.REBOOTING: "reboot",
    TaskState.REBOOTING_HARD: "reboot",
    TaskState.PAUSING: "pause",
    TaskState.UNPAUSING: "unpause",
    TaskState.SUSPENDING: "suspend",
    TaskState.RESUMING: "resume",
    TaskState.RESCUING: "rescue",
    TaskState.UNRESCUING: "unrescue",
    TaskState.REBUILDING: "rebuild",
    TaskState.REBUILD_SPAWNING: "rebuild",
}
TASK_STATES = tuple(ACTION_OF)
# action -> Nova's versioned notification name (instance.<name>.start/.end)
NOTICE_OF = {
    "stop": "power_off",
    "start": "power_on",
    "reboot": "reboot",
    "pause": "pause",
    "unpause": "unpause",
    "suspend": "suspend",
    "resume": "resume",
    "rescue": "rescue",
    "unrescue": "unrescue",
    "trigger_crash_dump": "trigger_crash_dump",
    "rebuild": "rebuild",
}
INTERRUPTED = (
    "{action} of instance {uuid} was interrupted (its compute service restarted or the request was lost)"
)
_FROM_POWER = {
    PowerState.RUNNING: VmState.ACTIVE,
    PowerState.PAUSED: VmState.PAUSED,
    PowerState.SUSPENDED: VmState.SUSPENDED,
    PowerState.SHUTDOWN: VmState.STOPPED,
    PowerState.CRASHED: VmState.STOPPED,
}


# -- one guest at a time: the agent's message handler and the settling never overlap ------------

_LOCK = threading.Lock()
_BUSY: set[str] = set()


@contextmanager
def _holding(uuid: str, *, wait: bool) -> Iterator[bool]:
    """Mark ``uuid`` busy; ``wait`` False: yields False at once when it already is."""
    while True:
        with _LOCK:
            if uuid not in _BUSY:
                _BUSY.add(uuid)
                break
        if not wait:
            yield False
            return
        threading.Event().wait(0.05)
    try:
        yield True
    finally:
        with _LOCK:
            _BUSY.discard(uuid)


_ACTION_MESSAGES = (PowerAction, RescueInstance, UnrescueInstance, RebuildInstance, TriggerCrashDump)


def _message_action(msg: Any) -> str | None:
    if isinstance(msg, PowerAction):
        return str(msg.action)
    if isinstance(msg, RescueInstance):
        return "rescue"
    if isinstance(msg, UnrescueInstance):
        return "unrescue"
    if isinstance(msg, RebuildInstance):
        return "rebuild"
    if isinstance(msg, TriggerCrashDump):
        return "trigger_crash_dump"
    return None


def guarded(handle: Callable[[str, Any], Any], agents: dict[str, Any]) -> Callable[[str, Any], Any]:
    """The compute consumer's handler with, for an action on a real guest: the guest marked busy
    while the agent works on it (the settling leaves it alone), and the action's versioned
    notifications around the driver's work (``.start`` when the agent takes it on, ``.end`` when
    it succeeded, ``.error`` for a failed rebuild)."""

    def handler(topic: str, msg: Any) -> Any:
        action = _message_action(msg) if isinstance(msg, _ACTION_MESSAGES) else None
        agent = agents.get(getattr(msg, "host", ""))
        if action is None or agent is None:
            return handle(topic, msg)
        with _holding(msg.instance_uuid, wait=True):
            task = getattr(msg, "task_state", None)
            since = utcnow()
            started = _notify_start(agent, msg.instance_uuid, action, task)
            result = handle(topic, msg)
            if started:
                _notify_outcome(agent, msg.instance_uuid, action, since)
            return result

    return handler


def _notice(action: str, phase: str) -> str:
    return f"instance.{NOTICE_OF.get(action, action)}.{phase}"


def _notify_start(agent: Any, uuid: str, action: str, task: str | None) -> bool:
    if notifications.notifier_for(agent.db) is None:
        return False
    with agent.db.reader() as s:
        row = s.execute(select(Instance.task_state, Instance.deleted).where(Instance.uuid == uuid)).first()
    if row is None or row.deleted or (action != "trigger_crash_dump" and row.task_state != task):
        return False  # the agent will not act on it
    notifications.instance_in(agent.db, _notice(action, "start"), uuid, host=agent.host)
    return True


def _notify_outcome(agent: Any, uuid: str, action: str, since: dt.datetime) -> None:
    """``.end`` (or a rebuild's ``.error``) from the event the agent recorded for this message."""
    event = f"compute_{action}" if action == "trigger_crash_dump" else f"compute_{action}_instance"
    with agent.db.reader() as s:
        found = s.execute(
            select(InstanceActionEvent.result, InstanceActionEvent.details)
            .join(InstanceAction, InstanceAction.id == InstanceActionEvent.action_id)
            .where(
                InstanceAction.instance_uuid == uuid,
                InstanceActionEvent.event == event,
                InstanceActionEvent.start_time >= since,
            )
            .order_by(InstanceActionEvent.id.desc())
            .limit(1)
        ).first()
    if found is None:
        return
    if found.result == "Success":
        notifications.instance_in(agent.db, _notice(action, "end"), uuid, host=agent.host)
    elif action == "rebuild":
        reason = found.details or "rebuild failed"
        notifications.instance_in(agent.db, _notice(action, "error"), uuid, host=agent.host, fault=reason)


# -- settling -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Stuck:
    uuid: str
    task_state: str
    vm_state: str
    updated_at: dt.datetime | None
    user_id: str
    project_id: str
    guest: GuestSpec


@dataclass
class _Outcome:
    vm_state: str
    done: bool  # the action's result was reached
    carried_out: bool = False  # the driver did the action's work here (notifications)
    fault: bool = False
    details: str = ""
    tb: str = ""


def stuck(db: Database, host: str, *, older_than: dt.datetime | None = None) -> list[_Stuck]:
    """This host's servers in an agent action's task state (``older_than``: not updated since)."""
    where = [
        Instance.host == host,
        Instance.deleted.is_(False),
        Instance.task_state.in_(TASK_STATES),
    ]
    if older_than is not None:
        where.append(Instance.updated_at < older_than)
    with db.reader() as s:
        rows = s.scalars(select(Instance).where(*where).order_by(Instance.id)).all()
        return [
            _Stuck(
                uuid=r.uuid,
                task_state=str(r.task_state),
                vm_state=r.vm_state,
                updated_at=r.updated_at,
                user_id=r.user_id,
                project_id=r.project_id,
                guest=guest_spec(
                    r,
                    host,
                ),
            )
            for r in rows
        ]


def settle(db: Database, host: str, driver: Any, *, older_than: dt.datetime | None = None) -> dict[str, str]:
    """Settle this host's servers stuck in an agent action's task state; returns uuid -> the
    vm_state written (servers changed meanwhile, or being worked on, are left out)."""
    settled: dict[str, str] = {}
    for row in stuck(db, host, older_than=older_than):
        with _holding(row.uuid, wait=False) as mine:
            if not mine:
                continue  # the agent is handling its message right now
            outcome = _settle_one(db, host, driver, row)
            if outcome is not None:
                settled[row.uuid] = outcome
    if settled:
        LOG.warning("settled %d interrupted actions on %s: %s", len(settled), host, settled)
    return settled


def _power(driver: Any, guest: GuestSpec) -> PowerState:
    return PowerState(int(driver.get_info(guest).state))


def _from_power(power: PowerState, uuid: str) -> str:
    found = _FROM_POWER.get(power)
    if found is None:
        raise DriverError(f"the guest of instance {uuid} was not found on its host")
    return found


def _optional(driver: Any, name: str) -> Callable[..., Any]:
    found = getattr(driver, name, None)
    if found is None:
        raise DriverError(f"{name} is not supported by this host's driver")
    return found  # type: ignore[no-any-return]


def _plan(driver: Any, row: _Stuck, power: PowerState) -> _Outcome:
    """Bring the guest to where the interrupted action leaves it (the table above)."""
    guest, task, uuid = row.guest, row.task_state, row.uuid
    if task == TaskState.POWERING_OFF:
        driver.power_off(guest)
        return _Outcome(VmState.STOPPED, done=True, carried_out=True)
    if task == TaskState.POWERING_ON:
        driver.power_on(guest)
        return _Outcome(VmState.ACTIVE, done=True, carried_out=True)
    if task in (TaskState.REBOOTING, TaskState.REBOOTING_HARD):
        if power == PowerState.RUNNING:
            return _Outcome(VmState.ACTIVE, done=False, details="the guest runs: the reboot is not repeated")
        driver.reboot(guest, hard=True)
        return _Outcome(VmState.ACTIVE, done=True, carried_out=True)
    if task == TaskState.UNPAUSING and power == PowerState.PAUSED:
        driver.unpause(guest)
        return _Outcome(VmState.ACTIVE, done=True, carried_out=True)
    if task == TaskState.SUSPENDING and power == PowerState.PAUSED:  # stopped on its way to disk
        driver.unpause(guest)
        return _Outcome(VmState.ACTIVE, done=False, details="the guest was not suspended: it runs again")
    if task == TaskState.RESUMING and power in (PowerState.SUSPENDED, PowerState.PAUSED):
        (driver.resume if power == PowerState.SUSPENDED else driver.unpause)(guest)
        return _Outcome(VmState.ACTIVE, done=True, carried_out=True)
    if task == TaskState.RESCUING:
        return _roll_back_rescue(driver, row, power)
    if task == TaskState.UNRESCUING:
        try:
            _optional(driver, "unrescue")(guest)
        except DriverError as exc:  # not rescued (any more): its own disks are in place
            LOG.info("unrescue of %s: %s; starting its own disks", uuid, exc)
        if _power(driver, guest) != PowerState.RUNNING:
            driver.power_on(guest)
        return _Outcome(VmState.ACTIVE, done=True, carried_out=True)
    vm_state = _from_power(power, uuid)
    wanted = {
        TaskState.PAUSING: VmState.PAUSED,
        TaskState.UNPAUSING: VmState.ACTIVE,
        TaskState.SUSPENDING: VmState.SUSPENDED,
        TaskState.RESUMING: VmState.ACTIVE,
    }.get(task)
    done = vm_state == wanted
    return _Outcome(vm_state, done=done, details="" if done else f"the guest is {power.name.lower()}")


def _roll_back_rescue(driver: Any, row: _Stuck, power: PowerState) -> _Outcome:
    """An interrupted rescue is undone: the guest's own disks again, running as it was."""
    try:
        _optional(driver, "unrescue")(row.guest)
    except DriverError as exc:  # it never got as far as the rescue disk
        LOG.info("rescue of %s rolled back: %s", row.uuid, exc)
    power = _power(driver, row.guest)
    if row.vm_state == VmState.ACTIVE and power != PowerState.RUNNING:
        driver.power_on(row.guest)
        power = _power(driver, row.guest)
    return _Outcome(
        _from_power(power, row.uuid), done=False, details="rolled back: the guest has its own disks"
    )


def _settle_one(db: Database, host: str, driver: Any, row: _Stuck) -> str | None:
    action = ACTION_OF[row.task_state]  # type: ignore[index]
    message = INTERRUPTED.format(action=action.capitalize(), uuid=row.uuid)
    if action == "rebuild":  # as Nova: the rebuild is not resumed
        outcome = _Outcome(VmState.ERROR, done=False, fault=True, details=message)
    else:
        notices = notifications.notifier_for(db) is not None
        try:
            power = _power(driver, row.guest)
            if notices and _carries_out(row.task_state, power):
                notifications.instance_in(db, _notice(action, "start"), row.uuid, host=host)
            outcome = _plan(driver, row, power)
        except DriverError as exc:
            outcome = _Outcome(
                row.vm_state, done=False, fault=True, details=str(exc), tb=traceback.format_exc()
            )
    try:
        power_after: int | None = int(_power(driver, row.guest))
    except DriverError:
        power_after = None
    if power_after == PowerState.NOSTATE:
        power_after = None
    if not db.write(lambda s: _record(s, host, row, action, message, outcome, power_after)):
        return None
    if outcome.carried_out and notifications.notifier_for(db) is not None:
        notifications.instance_in(db, _notice(action, "end"), row.uuid, host=host)
    LOG.warning("%s; %s -> %s", message, row.task_state, outcome.vm_state)
    return outcome.vm_state


def _carries_out(task: str, power: PowerState) -> bool:
    """Whether ``_plan`` does the action's work for this task and power state (start notice)."""
    if task in (TaskState.POWERING_OFF, TaskState.POWERING_ON, TaskState.UNRESCUING):
        return True
    if task in (TaskState.REBOOTING, TaskState.REBOOTING_HARD):
        return power != PowerState.RUNNING
    if task == TaskState.UNPAUSING:
        return power == PowerState.PAUSED
    if task == TaskState.RESUMING:
        return power in (PowerState.SUSPENDED, PowerState.PAUSED)
    return False


def _record(
    s: Session,
    host: str,
    row: _Stuck,
    action: str,
    message: str,
    outcome: _Outcome,
    power: int | None,
) -> bool:
    values: dict[str, Any] = {"vm_state": outcome.vm_state, "task_state": None, "updated_at": utcnow()}
    if power is not None:
        values["power_state"] = power
    changed = s.execute(
        update(Instance)
        .where(
            Instance.uuid == row.uuid,
            Instance.deleted.is_(False),
            Instance.task_state == row.task_state,
            Instance.updated_at == row.updated_at,
        )
        .values(**values)
    ).rowcount  # type: ignore[attr-defined]
    if not changed:
        return False
    action_id = actions.find_action(  # recorded by the API; created when missing (reset by hand)
        s, row.uuid, action, user_id=row.user_id, project_id=row.project_id, request_id=f"req-{uuid.uuid4()}"
    )
    event = f"compute_{action}_instance"
    if outcome.done:
        actions.record_event(s, action_id, event, ok=True, host=host)
        return True
    details = f"{message}: {outcome.details}" if outcome.details and outcome.details != message else message
    actions.record_event(
        s, action_id, event, ok=False, host=host, traceback=outcome.tb or None, details=details
    )
    if outcome.fault:
        actions.add_fault(s, row.uuid, message=details[:255], details=outcome.tb, host=host)
    return True
