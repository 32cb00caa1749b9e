"""Power actions of a server on a host running real guests (issue 17) go through its compute agent
with Nova's task states. Here the real host is a renamed simulated one (the QEMU path itself is
tests/e2e/test_qemu_servers.py):

* a broker the API cannot reach: 503 with Retry-After, the server keeps its state and no task;
* the agent's driver failing: the server goes back to its state with a fault, the action's event
  in error; succeeding: the final state and a Success event.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import update

from novalite.compute import power_actions
from novalite.compute.api import ComputeAPI
from novalite.compute.rpcapi import ComputeClient, PowerAction
from novalite.db.models.compute import Instance
from novalite.messaging.transport import Transport
from novalite.virt.driver import DriverError, GuestSpec
from novalite.virt.fake import FakeDriver
from tests.conftest import Api
from tests.functional.test_move_operations import SERVERS, action, boot, server

REAL_HOST = "qemu-box"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _move_to_real_host(api: Api, sid: str) -> None:
    with api.runtime.db.session() as s:  # type: ignore[attr-defined]
        s.execute(update(Instance).where(Instance.uuid == sid).values(host=REAL_HOST, node=REAL_HOST))


@pytest.fixture
def stack(stack_factory: Any) -> Iterator[Api]:
    api = stack_factory(fake_hosts=1)
    services = api.runtime.services
    engine = services.compute_api
    yield api
    services.compute_api = engine


def test_broker_unreachable_gives_the_server_back_its_state(stack: Api) -> None:
    sid = boot(stack)
    _move_to_real_host(stack, sid)
    down = Transport(f"amqp://guest:guest@127.0.0.1:{_closed_port()}//", patience=0.5)
    try:
        rt = stack.runtime  # type: ignore[attr-defined]
        rt.services.compute_api = ComputeAPI(rt.db, ComputeClient(down))
        for body in ({"os-stop": None}, {"reboot": {"type": "HARD"}}, {"pause": None}):
            r = action(stack, sid, body)
            assert r.status_code == 503, r.text
            assert r.headers.get("Retry-After")
            shown = server(stack, sid)
            assert shown["status"] == "ACTIVE" and shown["OS-EXT-STS:task_state"] is None, shown
    finally:
        down.stop()


class _Failing(FakeDriver):
    def power_off(self, guest: GuestSpec) -> None:
        raise DriverError("the guest would not stop")


@dataclass
class _Agent:
    db: Any
    driver: Any
    host: str = REAL_HOST


def _start(api: Api, sid: str, body: dict[str, Any], action_name: str, task: str) -> PowerAction:
    """The API half: 202, the task state set, the cast sent (to a host no agent here serves)."""
    assert action(api, sid, body).status_code == 202
    shown = server(api, sid)
    assert shown["OS-EXT-STS:task_state"] == task, shown
    return PowerAction(context={}, instance_uuid=sid, host=REAL_HOST, action=action_name, task_state=task)


def test_agent_records_the_outcome_of_the_driver(stack: Api) -> None:
    sid = boot(stack)
    _move_to_real_host(stack, sid)
    db = stack.runtime.db  # type: ignore[attr-defined]
    msg = _start(stack, sid, {"os-stop": None}, "stop", "powering-off")
    assert server(stack, sid)["status"] == "ACTIVE"

    power_actions.power_action(_Agent(db, _Failing()), msg)
    shown = server(stack, sid)
    assert shown["status"] == "ACTIVE" and shown["OS-EXT-STS:task_state"] is None
    listed = stack.get(f"{SERVERS}/{sid}/os-instance-actions", as_="admin").json()["instanceActions"]
    stop = next(a for a in listed if a["action"] == "stop")
    detail = stack.get(f"{SERVERS}/{sid}/os-instance-actions/{stop['request_id']}", as_="admin")
    events = detail.json()["instanceAction"]["events"]
    assert [(e["event"], e["result"]) for e in events] == [("compute_stop_instance", "Error")]

    driver = FakeDriver()  # the host's guest, running
    driver.spawn(GuestSpec(uuid=sid, name="vm", host=REAL_HOST, node=REAL_HOST, flavor={}))
    power_actions.power_action(
        _Agent(db, driver), _start(stack, sid, {"os-stop": None}, "stop", "powering-off")
    )
    shown = server(stack, sid)
    assert shown["status"] == "SHUTOFF" and shown["OS-EXT-STS:task_state"] is None
    assert shown["OS-EXT-STS:power_state"] == 4
    _start(stack, sid, {"reboot": {"type": "HARD"}}, "reboot", "rebooting_hard")  # from SHUTOFF
    power_actions.power_action(
        _Agent(db, driver), PowerAction({}, sid, REAL_HOST, "reboot", "rebooting_hard", True)
    )
    shown = server(stack, sid)
    assert shown["status"] == "ACTIVE" and shown["OS-EXT-STS:power_state"] == 1

    # a message whose task state is no longer the server's (reset, deleted) does nothing
    power_actions.power_action(_Agent(db, driver), PowerAction({}, sid, REAL_HOST, "stop", "powering-off"))
    shown = server(stack, sid)
    assert shown["status"] == "ACTIVE" and shown["OS-EXT-STS:power_state"] == 1
