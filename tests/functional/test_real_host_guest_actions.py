"""Rescue, unrescue, trigger_crash_dump and rebuild of a server on a host running real guests go
through its compute agent (issue 17 item 6), as tests/functional/test_real_host_power_actions.py
shows for the power actions. The real host is a renamed simulated one; its agent's half is run
here with a fake driver that has the QEMU driver's optional actions (the QEMU path itself is
tests/e2e/test_qemu_rescue.py and the rebuild test of tests/e2e/test_qemu_servers.py).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from sqlalchemy import select, update

from novalite.compute import guest_actions
from novalite.compute.api import ComputeAPI
from novalite.compute.guest_rpc import RebuildInstance, RescueInstance, TriggerCrashDump, UnrescueInstance
from novalite.compute.rpcapi import ComputeClient
from novalite.db.models.compute import Instance, InstanceFault
from novalite.messaging.transport import Transport
from novalite.virt.driver import DriverError, GuestSpec
from novalite.virt.fake import FakeDriver
from tests.conftest import Api
from tests.functional.test_move_operations import SERVERS, action, boot, image_id, server
from tests.functional.test_real_host_power_actions import REAL_HOST, _Agent, _closed_port, _move_to_real_host


class _GuestDriver(FakeDriver):
    """A fake host's driver with rescue, unrescue and inject_nmi; ``broken`` makes them fail."""

    def __init__(self, *, broken: bool = False) -> None:
        super().__init__()
        self.broken = broken
        self.calls: list[tuple[str, str]] = []

    def _call(self, what: str, detail: str = "") -> None:
        if self.broken:
            raise DriverError(f"{what} failed on purpose")
        self.calls.append((what, detail))

    def rescue(self, guest: GuestSpec, rescue_image: Mapping[str, Any]) -> None:
        self._call("rescue", str(rescue_image.get("id")))

    def unrescue(self, guest: GuestSpec) -> None:
        self._call("unrescue")

    def inject_nmi(self, guest: GuestSpec) -> None:
        self._call("inject_nmi")

    def spawn(self, guest: GuestSpec) -> None:
        self._call("spawn", str(guest.image.get("id")))
        super().spawn(guest)


@pytest.fixture
def stack(stack_factory: Any) -> Iterator[Api]:
    api = stack_factory(fake_hosts=1)
    services = api.runtime.services
    engine = services.compute_api
    yield api
    services.compute_api = engine


def _events(api: Api, sid: str, name: str) -> list[tuple[str, str]]:
    listed = api.get(f"{SERVERS}/{sid}/os-instance-actions", as_="admin").json()["instanceActions"]
    found = next(a for a in listed if a["action"] == name)
    path = f"{SERVERS}/{sid}/os-instance-actions/{found['request_id']}"
    detail = api.get(path, as_="admin", version="2.51")
    return [(e["event"], e["result"]) for e in detail.json()["instanceAction"]["events"]]


def _fault(api: Api, sid: str) -> str:
    """The server's latest fault (the API shows one only in ERROR, as Nova)."""
    with api.runtime.db.reader() as s:  # type: ignore[attr-defined]
        found = s.scalars(
            select(InstanceFault.message)
            .where(InstanceFault.instance_uuid == sid)
            .order_by(InstanceFault.id.desc())
        ).first()
    return str(found)


def _real_guest(api: Api, driver: _GuestDriver) -> tuple[str, _Agent]:
    sid = boot(api)
    _move_to_real_host(api, sid)
    driver.spawn(GuestSpec(uuid=sid, name="vm", host=REAL_HOST, node=REAL_HOST, flavor={}))
    driver.calls.clear()
    return sid, _Agent(api.runtime.db, driver)  # type: ignore[attr-defined]


def test_rescue_and_unrescue_wait_for_the_agent(stack: Api) -> None:
    driver = _GuestDriver()
    sid, agent = _real_guest(stack, driver)
    r = action(stack, sid, {"rescue": {"adminPass": "pw"}})
    assert r.status_code == 200 and r.json() == {"adminPass": "pw"}
    shown = server(stack, sid)
    assert shown["status"] == "ACTIVE" and shown["OS-EXT-STS:task_state"] == "rescuing"
    assert action(stack, sid, {"os-stop": None}).status_code == 409  # a task is in progress

    guest_actions.rescue_instance(agent, RescueInstance({}, sid, REAL_HOST, "rescuing", image_id(stack)))
    shown = server(stack, sid)
    assert shown["status"] == "RESCUE" and shown["OS-EXT-STS:task_state"] is None
    assert driver.calls == [("rescue", image_id(stack))]  # the server's own image by default
    assert _events(stack, sid, "rescue") == [("compute_rescue_instance", "Success")]

    assert action(stack, sid, {"unrescue": None}).status_code == 202
    shown = server(stack, sid)
    assert shown["status"] == "RESCUE" and shown["OS-EXT-STS:task_state"] == "unrescuing"
    guest_actions.unrescue_instance(agent, UnrescueInstance({}, sid, REAL_HOST, "unrescuing"))
    shown = server(stack, sid)
    assert shown["status"] == "ACTIVE" and shown["OS-EXT-STS:power_state"] == 1
    assert _events(stack, sid, "unrescue") == [("compute_unrescue_instance", "Success")]

    # a message whose task state is no longer the server's does nothing
    guest_actions.unrescue_instance(agent, UnrescueInstance({}, sid, REAL_HOST, "unrescuing"))
    assert driver.calls == [("rescue", image_id(stack)), ("unrescue", "")]


def test_a_failed_rescue_gives_the_server_back_with_a_fault(stack: Api) -> None:
    driver = _GuestDriver()
    sid, agent = _real_guest(stack, driver)
    driver.broken = True
    assert action(stack, sid, {"rescue": None}).status_code == 200
    guest_actions.rescue_instance(agent, RescueInstance({}, sid, REAL_HOST, "rescuing", image_id(stack)))
    shown = server(stack, sid)
    assert shown["status"] == "ACTIVE" and shown["OS-EXT-STS:task_state"] is None
    assert _events(stack, sid, "rescue") == [("compute_rescue_instance", "Error")]
    assert _fault(stack, sid) == "rescue of instance " + sid + " failed: rescue failed on purpose"


def test_trigger_crash_dump_reaches_the_guest(stack: Api) -> None:
    driver = _GuestDriver()
    sid, agent = _real_guest(stack, driver)
    assert action(stack, sid, {"trigger_crash_dump": None}, version="2.17").status_code == 202
    assert server(stack, sid)["OS-EXT-STS:task_state"] is None  # no task state, as Nova
    guest_actions.trigger_crash_dump(agent, TriggerCrashDump({}, sid, REAL_HOST))
    assert driver.calls == [("inject_nmi", "")]
    assert _events(stack, sid, "trigger_crash_dump") == [("compute_trigger_crash_dump", "Success")]
    assert server(stack, sid)["status"] == "ACTIVE"

    driver.broken = True  # e.g. the guest does not run: a fault, no state change
    assert action(stack, sid, {"trigger_crash_dump": None}, version="2.17").status_code == 202
    guest_actions.trigger_crash_dump(agent, TriggerCrashDump({}, sid, REAL_HOST))
    shown = server(stack, sid)
    assert shown["status"] == "ACTIVE" and "inject_nmi failed on purpose" in _fault(stack, sid)
    assert _events(stack, sid, "trigger_crash_dump") == [("compute_trigger_crash_dump", "Error")]

    assert action(stack, sid, {"os-stop": None}).status_code == 202  # powering-off: a task
    r = action(stack, sid, {"trigger_crash_dump": None}, version="2.17")
    assert r.status_code == 409 and "task_state powering-off" in r.text


@pytest.mark.parametrize("stopped", [False, True])
def test_rebuild_is_done_by_the_agent(stack: Api, stopped: bool) -> None:
    driver = _GuestDriver()
    sid, agent = _real_guest(stack, driver)
    if stopped:
        with stack.runtime.db.session() as s:  # type: ignore[attr-defined]
            s.execute(update(Instance).where(Instance.uuid == sid).values(vm_state="stopped", power_state=4))
    r = action(stack, sid, {"rebuild": {"imageRef": image_id(stack), "name": "rebuilt"}})
    assert r.status_code == 202, r.text
    shown = server(stack, sid)
    assert shown["status"] == "REBUILD" and shown["OS-EXT-STS:task_state"] == "rebuilding"
    assert shown["name"] == "rebuilt"

    guest_actions.rebuild_instance(agent, RebuildInstance({}, sid, REAL_HOST, "rebuilding"))
    shown = server(stack, sid)
    assert shown["OS-EXT-STS:task_state"] is None
    assert driver.calls[0] == ("spawn", image_id(stack))  # a new guest from the image
    if stopped:  # Nova: rebuilt, then powered off again
        assert shown["status"] == "SHUTOFF" and shown["OS-EXT-STS:power_state"] == 4
    else:
        assert shown["status"] == "ACTIVE" and shown["OS-EXT-STS:power_state"] == 1
    assert _events(stack, sid, "rebuild") == [("compute_rebuild_instance", "Success")]


def test_a_failed_rebuild_is_an_error_with_the_fault(stack: Api) -> None:
    driver = _GuestDriver()
    sid, agent = _real_guest(stack, driver)
    assert action(stack, sid, {"rebuild": {"imageRef": image_id(stack)}}).status_code == 202
    driver.broken = True
    guest_actions.rebuild_instance(agent, RebuildInstance({}, sid, REAL_HOST, "rebuilding"))
    shown = server(stack, sid)
    assert shown["status"] == "ERROR" and "spawn failed on purpose" in shown["fault"]["message"]
    assert _events(stack, sid, "rebuild") == [("compute_rebuild_instance", "Error")]


def test_broker_unreachable_gives_rescue_and_rebuild_back(stack: Api) -> None:
    sid = boot(stack)
    _move_to_real_host(stack, sid)
    down = Transport(f"amqp://guest:guest@127.0.0.1:{_closed_port()}//", patience=0.5)
    try:
        rt = stack.runtime  # type: ignore[attr-defined]
        rt.services.compute_api = ComputeAPI(rt.db, ComputeClient(down))
        bodies = ({"rescue": None}, {"rebuild": {"imageRef": image_id(stack)}}, {"trigger_crash_dump": None})
        for body in bodies:
            r = action(stack, sid, body, version="2.17")
            assert r.status_code == 503, r.text
            shown = server(stack, sid)
            assert shown["status"] == "ACTIVE" and shown["OS-EXT-STS:task_state"] is None, shown
    finally:
        down.stop()


def test_simulated_hosts_keep_the_immediate_transition(stack: Api) -> None:
    sid = boot(stack)
    assert action(stack, sid, {"rescue": None}).status_code == 200
    assert server(stack, sid)["status"] == "RESCUE"
    assert action(stack, sid, {"unrescue": None}).status_code == 202
    assert action(stack, sid, {"rebuild": {"imageRef": image_id(stack)}}).status_code == 202
    shown = server(stack, sid)
    assert shown["status"] == "ACTIVE" and shown["OS-EXT-STS:task_state"] is None
    assert _events(stack, sid, "rebuild") == [("compute_rebuild_instance", "Success")]
