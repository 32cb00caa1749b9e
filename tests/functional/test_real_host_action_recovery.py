"""Actions on a host running real guests whose agent died mid-way or whose message was lost do not
leave the server in its task state forever (compute/action_recovery.py, Nova's ``_init_instance``).

The real host is a renamed simulated one, as in tests/functional/test_real_host_power_actions.py:
the API casts to a host no agent here serves (the message is lost), the guest is a fake driver's,
and the agent's ``HostSync`` settles the server at start (``settle_interrupted``) or, for task
states that have not moved for ``stuck_action_timeout``, in its loop (``run_once``). The QEMU
path is tests/e2e/test_qemu_action_recovery.py.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import update

from novalite.compute import action_recovery, power_actions
from novalite.compute.guest_rpc import RebuildInstance, RescueInstance, TriggerCrashDump, UnrescueInstance
from novalite.compute.manager import dispatch
from novalite.compute.power_sync import HostSync
from novalite.compute.rpcapi import PowerAction
from novalite.db.base import utcnow
from novalite.db.models.compute import Instance
from novalite.domain.states import PowerState
from novalite.virt.driver import GuestSpec
from tests.conftest import Api
from tests.functional.test_move_operations import action, boot, image_id, server
from tests.functional.test_notifications import Bus, _data
from tests.functional.test_real_host_guest_actions import _events, _fault, _GuestDriver
from tests.functional.test_real_host_power_actions import REAL_HOST, _Agent, _move_to_real_host


@pytest.fixture
def stack(stack_factory: Any) -> Iterator[Api]:
    api = stack_factory(fake_hosts=1)
    services = api.runtime.services
    engine = services.compute_api
    yield api
    services.compute_api = engine


def _db(api: Api) -> Any:
    return api.runtime.db  # type: ignore[attr-defined]


def _real_guest(api: Api, driver: _GuestDriver, power: PowerState = PowerState.RUNNING) -> str:
    sid = boot(api)
    _move_to_real_host(api, sid)
    driver.spawn(GuestSpec(uuid=sid, name="vm", host=REAL_HOST, node=REAL_HOST, flavor={}))
    driver._guests[sid] = power  # the guest as the host has it
    driver.calls.clear()
    return sid


def _left_in(api: Api, sid: str, vm_state: str, task: str, *, ago_s: float = 0) -> None:
    """The server as the API leaves it once its cast is sent (here: never received)."""
    with _db(api).session() as s:
        s.execute(
            update(Instance)
            .where(Instance.uuid == sid)
            .values(vm_state=vm_state, task_state=task, updated_at=utcnow() - dt.timedelta(seconds=ago_s))
        )


def _sync(api: Api, driver: Any, **kwargs: Any) -> HostSync:
    return HostSync(host=REAL_HOST, db=_db(api), driver=driver, interval=60, **kwargs)


# (vm_state before, task state, guest's power state) -> (status, power_state, event result, driver calls)
CASES = [
    ("active", "powering-off", PowerState.RUNNING, "SHUTOFF", 4, "Success", []),
    ("active", "powering-off", PowerState.SHUTDOWN, "SHUTOFF", 4, "Success", []),
    ("stopped", "powering-on", PowerState.SHUTDOWN, "ACTIVE", 1, "Success", []),
    ("active", "rebooting", PowerState.RUNNING, "ACTIVE", 1, "Error", []),
    ("active", "rebooting", PowerState.SHUTDOWN, "ACTIVE", 1, "Success", []),
    ("stopped", "rebooting_hard", PowerState.SHUTDOWN, "ACTIVE", 1, "Success", []),
    ("active", "rebooting_hard", PowerState.CRASHED, "ACTIVE", 1, "Success", []),
    ("active", "pausing", PowerState.PAUSED, "PAUSED", 3, "Success", []),
    ("active", "pausing", PowerState.RUNNING, "ACTIVE", 1, "Error", []),
    ("paused", "unpausing", PowerState.PAUSED, "ACTIVE", 1, "Success", []),
    ("paused", "unpausing", PowerState.RUNNING, "ACTIVE", 1, "Success", []),
    ("active", "suspending", PowerState.SUSPENDED, "SUSPENDED", 7, "Success", []),
    ("active", "suspending", PowerState.RUNNING, "ACTIVE", 1, "Error", []),
    ("active", "suspending", PowerState.PAUSED, "ACTIVE", 1, "Error", []),
    ("active", "suspending", PowerState.SHUTDOWN, "SHUTOFF", 4, "Error", []),
    ("suspended", "resuming", PowerState.SUSPENDED, "ACTIVE", 1, "Success", []),
    ("suspended", "resuming", PowerState.RUNNING, "ACTIVE", 1, "Success", []),
    ("active", "rescuing", PowerState.RUNNING, "ACTIVE", 1, "Error", [("unrescue", "")]),
    ("active", "rescuing", PowerState.SHUTDOWN, "ACTIVE", 1, "Error", [("unrescue", "")]),
    ("stopped", "rescuing", PowerState.SHUTDOWN, "SHUTOFF", 4, "Error", [("unrescue", "")]),
    ("rescued", "unrescuing", PowerState.RUNNING, "ACTIVE", 1, "Success", [("unrescue", "")]),
]
ACTION = {
    "powering-off": "stop",
    "powering-on": "start",
    "rebooting": "reboot",
    "rebooting_hard": "reboot",
    "pausing": "pause",
    "unpausing": "unpause",
    "suspending": "suspend",
    "resuming": "resume",
    "rescuing": "rescue",
    "unrescuing": "unrescue",
}


@pytest.mark.parametrize(("vm", "task", "power", "status", "power_after", "result", "calls"), CASES)
def test_agent_start_settles_an_interrupted_action_from_the_guest(
    stack: Api,
    vm: str,
    task: str,
    power: PowerState,
    status: str,
    power_after: int,
    result: str,
    calls: list[tuple[str, str]],
) -> None:
    driver = _GuestDriver()
    sid = _real_guest(stack, driver, power)
    _left_in(stack, sid, vm, task)

    assert _sync(stack, driver).settle_interrupted() == {sid: _vm_of(status)}
    shown = server(stack, sid)
    assert shown["status"] == status and shown["OS-EXT-STS:task_state"] is None, shown
    assert shown["OS-EXT-STS:power_state"] == power_after
    assert driver._guests[sid] == power_after  # the guest is where the server says it is
    name = ACTION[task]
    assert _events(stack, sid, name) == [(f"compute_{name}_instance", result)]
    assert driver.calls == calls
    # idempotent: a second start finds nothing to do
    assert _sync(stack, driver).settle_interrupted() == {}
    assert len(_events(stack, sid, name)) == 1


def _vm_of(status: str) -> str:
    return {"SHUTOFF": "stopped", "RESCUE": "rescued"}.get(status, status.lower())


@pytest.mark.parametrize("task", ["rebuilding", "rebuild_spawning"])
def test_an_interrupted_rebuild_ends_in_error_with_a_fault(stack: Api, task: str) -> None:
    driver = _GuestDriver()
    sid = _real_guest(stack, driver)
    _left_in(stack, sid, "active", task)
    assert _sync(stack, driver).settle_interrupted() == {sid: "error"}
    shown = server(stack, sid)
    assert shown["status"] == "ERROR" and shown["OS-EXT-STS:task_state"] is None
    assert "Rebuild of instance" in shown["fault"]["message"]
    assert "interrupted" in shown["fault"]["message"]
    assert _events(stack, sid, "rebuild") == [("compute_rebuild_instance", "Error")]
    assert driver.calls == []  # the guest is left as it is for the user to rebuild or delete


def test_a_guest_missing_from_its_host_gives_the_server_back_with_a_fault(stack: Api) -> None:
    driver = _GuestDriver()
    sid = _real_guest(stack, driver)
    driver.destroy(GuestSpec(uuid=sid, name="vm", host=REAL_HOST, node=REAL_HOST, flavor={}))
    assert action(stack, sid, {"os-stop": None}).status_code == 202  # cast to no agent: lost
    assert server(stack, sid)["OS-EXT-STS:task_state"] == "powering-off"

    assert _sync(stack, driver).settle_interrupted() == {sid: "active"}
    shown = server(stack, sid)
    assert shown["status"] == "ACTIVE" and shown["OS-EXT-STS:task_state"] is None
    assert _events(stack, sid, "stop") == [("compute_stop_instance", "Error")]
    assert "not running" in _fault(stack, sid)


def test_a_lost_cast_is_settled_by_the_loop_once_its_task_state_is_stale(stack: Api) -> None:
    driver = _GuestDriver()
    sid = _real_guest(stack, driver)
    assert action(stack, sid, {"os-stop": None}).status_code == 202  # the cast is lost
    sync = _sync(stack, driver, action_timeout=600)

    sync.run_once()  # just set: maybe on its way
    assert server(stack, sid)["OS-EXT-STS:task_state"] == "powering-off"
    assert driver._guests[sid] == PowerState.RUNNING

    _left_in(stack, sid, "active", "powering-off", ago_s=601)
    sync.run_once()
    shown = server(stack, sid)
    assert shown["status"] == "SHUTOFF" and shown["OS-EXT-STS:task_state"] is None
    assert driver._guests[sid] == PowerState.SHUTDOWN
    assert _events(stack, sid, "stop") == [("compute_stop_instance", "Success")]

    # stuck_action_timeout <= 0: left alone
    assert action(stack, sid, {"os-start": None}).status_code == 202
    _left_in(stack, sid, "stopped", "powering-on", ago_s=10_000)
    _sync(stack, driver, action_timeout=0).run_once()
    assert server(stack, sid)["OS-EXT-STS:task_state"] == "powering-on"


def test_an_action_the_agent_is_carrying_out_is_not_taken_for_a_lost_one(stack: Api) -> None:
    driver = _GuestDriver()
    sid = _real_guest(stack, driver)
    assert action(stack, sid, {"pause": None}).status_code == 202
    _left_in(stack, sid, "active", "pausing", ago_s=601)  # a slow action
    sync = _sync(stack, driver, action_timeout=600)
    agent = _Agent(_db(stack), driver)
    seen: list[dict[str, str]] = []

    def handle(_topic: str, msg: Any) -> None:
        seen.append(sync.settle_stuck())  # the loop runs while the agent works on the guest
        power_actions.power_action(agent, msg)

    guarded = action_recovery.guarded(handle, {REAL_HOST: agent})
    guarded("compute", PowerAction({}, sid, REAL_HOST, "pause", "pausing"))
    assert seen == [{}]
    shown = server(stack, sid)
    assert shown["status"] == "PAUSED" and shown["OS-EXT-STS:task_state"] is None
    assert _events(stack, sid, "pause") == [("compute_pause_instance", "Success")]


def test_a_real_host_stop_sends_its_notifications(stack_factory: Any) -> None:
    stack = stack_factory(fake_hosts=1, notifications="versioned")
    bus = Bus(stack)
    driver = _GuestDriver()
    sid = _real_guest(stack, driver)
    bus.drain()
    bus.seen.clear()
    assert action(stack, sid, {"os-stop": None}).status_code == 202
    assert bus.types(sid) == []  # the API only asked: the agent sends them
    agent = _Agent(_db(stack), driver)
    handle = action_recovery.guarded(lambda _t, m: power_actions.power_action(agent, m), {REAL_HOST: agent})
    handle("compute", PowerAction({}, sid, REAL_HOST, "stop", "powering-off"))
    assert bus.types(sid) == ["instance.power_off.start", "instance.power_off.end"]
    start, end = (m for m in bus.seen if _data(m).get("uuid") == sid and m["event_type"] != "instance.update")
    assert start["publisher_id"] == f"nova-compute:{REAL_HOST}"
    assert _data(start)["task_state"] == "powering-off" and _data(start)["power_state"] == "running"
    assert _data(end)["state"] == "stopped" and _data(end)["task_state"] is None
    assert _data(end)["power_state"] == "shutdown"

    # a stop finished by the agent's start after a restart sends them too
    bus.seen.clear()
    assert action(stack, sid, {"os-start": None}).status_code == 202
    _sync(stack, driver).settle_interrupted()
    assert bus.types(sid) == ["instance.power_on.start", "instance.power_on.end"]
    assert server(stack, sid)["status"] == "ACTIVE"

    # a message the agent does not act on (task state no longer the server's) sends nothing
    bus.seen.clear()
    handle("compute", PowerAction({}, sid, REAL_HOST, "stop", "powering-off"))
    assert bus.types(sid) == []


def test_guest_actions_on_a_real_host_send_their_notifications(stack_factory: Any) -> None:
    stack = stack_factory(fake_hosts=1, notifications="versioned")
    bus = Bus(stack)
    driver = _GuestDriver()
    sid = _real_guest(stack, driver)
    agent = _Agent(_db(stack), driver)
    handle = action_recovery.guarded(dispatch({REAL_HOST: agent}), {REAL_HOST: agent})  # type: ignore[dict-item]
    bus.drain()
    bus.seen.clear()

    assert action(stack, sid, {"rescue": None}).status_code == 200
    handle("compute", RescueInstance({}, sid, REAL_HOST, "rescuing", image_id(stack)))
    assert action(stack, sid, {"unrescue": None}).status_code == 202
    handle("compute", UnrescueInstance({}, sid, REAL_HOST, "unrescuing"))
    assert action(stack, sid, {"trigger_crash_dump": None}, version="2.17").status_code == 202
    handle("compute", TriggerCrashDump({}, sid, REAL_HOST))
    assert action(stack, sid, {"rebuild": {"imageRef": image_id(stack)}}).status_code == 202
    handle("compute", RebuildInstance({}, sid, REAL_HOST, "rebuilding"))
    assert bus.types(sid) == [
        "instance.rescue.start",
        "instance.rescue.end",
        "instance.unrescue.start",
        "instance.unrescue.end",
        "instance.trigger_crash_dump.start",
        "instance.trigger_crash_dump.end",
        "instance.rebuild.start",
        "instance.rebuild.end",
    ]

    bus.seen.clear()  # a failed rebuild: .error with the fault, ERROR priority
    assert action(stack, sid, {"rebuild": {"imageRef": image_id(stack)}}).status_code == 202
    driver.broken = True
    handle("compute", RebuildInstance({}, sid, REAL_HOST, "rebuilding"))
    assert bus.types(sid) == ["instance.rebuild.start", "instance.rebuild.error"]
    error = next(m for m in bus.seen if m["event_type"] == "instance.rebuild.error")
    assert error["priority"] == "ERROR"
    assert "spawn failed on purpose" in _data(error)["fault"]["nova_object.data"]["exception_message"]
