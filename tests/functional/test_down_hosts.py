"""Builds and a compute host that dies (issue 18, item 4) or whose messages go stale (item 5),
driven in-process: rows as the API writes them, then the conductor and a compute agent.

* the conductor's down-host recovery takes every build stranded on a down host back: scheduled
  again (ACTIVE elsewhere, one allocation there) or, for a volume boot, ERROR with a fault;
  nothing stays in BUILD and nothing is left allocated on the dead host;
* a build message for an instance no longer assigned to the host that receives it (rescheduled
  meanwhile) leaves everything alone: the new host's allocation survives and it builds there."""

from __future__ import annotations

import datetime as dt
import uuid as uuidlib
from typing import Any

from sqlalchemy import select, update

from novalite.compute.build import BUILD_EVENT
from novalite.compute.manager import ComputeAgent, node_uuids
from novalite.compute.rpcapi import BuildAndRunInstance
from novalite.conductor import down_hosts
from novalite.context import RequestContext
from novalite.db.base import utcnow
from novalite.db.models.placement import ResourceProvider, Service
from novalite.messaging.messages import context_to_dict
from novalite.virt.driver import DriverError, GuestSpec
from novalite.virt.fake import FakeDriver
from tests.functional import build_helpers as h

TINY = {"VCPU": 1, "MEMORY_MB": 512, "DISK_GB": 1}


def _claim_on(api: Any, uuid: str, host: str) -> None:
    from novalite.placement import allocations

    with api.runtime.db.session() as s:
        provider = s.execute(select(ResourceProvider.uuid).where(ResourceProvider.name == host)).scalar_one()
        owner = s.execute(
            select(h.Instance.project_id, h.Instance.user_id).where(h.Instance.uuid == uuid)
        ).one()
        allocations.claim(s, allocations.ConsumerRef(uuid, owner[0], owner[1]), {provider: dict(TINY)})


def _accepted_on(api: Any, uuid: str, host: str) -> None:
    """As if ``host``'s agent had accepted the build and died while spawning."""
    _claim_on(api, uuid, host)
    with api.runtime.db.session() as s:
        s.execute(
            update(h.Instance)
            .where(h.Instance.uuid == uuid)
            .values(host=host, node=host, task_state="spawning", launched_on=host)
        )


def _kill(api: Any, host: str) -> None:
    """No heartbeat from ``host`` for two minutes (the stack's down time is 60 s)."""
    with api.runtime.db.session() as s:
        s.execute(
            update(Service)
            .where(Service.host == host)
            .values(last_seen_at=utcnow() - dt.timedelta(seconds=120))
        )


def _reschedule(api: Any) -> Any:
    conductor = api.runtime.services.require_conductor()
    return lambda ctx, uuids: conductor.schedule_and_build_instances(ctx, uuids, {})


def _agent(api: Any, host: str, driver: FakeDriver | None = None) -> ComputeAgent:
    """A second agent for ``host`` (the one that comes back and reads its old queue)."""
    rt = api.runtime
    return ComputeAgent(
        host=host,
        node_uuid=node_uuids(rt.db, [host])[host],
        db=rt.db,
        driver=driver or FakeDriver(),
        conductor=rt.services.require_conductor(),
        max_attempts=3,
    )


def _build_message(api: Any, uuid: str, host: str, *, alternates: list[dict[str, Any]] | None = None) -> Any:
    ctx = RequestContext(
        user_id=api.ids["demo_user"], project_id=api.ids["demo_project"], roles=("member",),
        request_id="req-" + uuidlib.uuid4().hex,
    )  # fmt: skip
    return BuildAndRunInstance(
        context=context_to_dict(ctx), instance_uuid=uuid, host=host, node=host, alternates=alternates or []
    )


def test_builds_stranded_on_a_down_host_are_scheduled_again_and_its_claims_released(
    stack_factory: Any,
) -> None:
    api = stack_factory(fake_hosts=2, report_interval=3600, service_down_time=60)
    [accepted, waiting] = h.create_instances(api, count=2, start=False)
    [volume_boot] = h.create_instances(api, start=False, spec_extra={"is_bfv": True})
    _accepted_on(api, accepted, "fake-host-1")
    _claim_on(api, waiting, "fake-host-1")  # its build message sits in the dead host's queue
    _accepted_on(api, volume_boot, "fake-host-1")
    db = api.runtime.db

    assert down_hosts.sweep(db, 60, _reschedule(api)) == []  # the host is up: nothing is touched
    assert h.instance(api, accepted).task_state == "spawning"
    _kill(api, "fake-host-1")
    taken = down_hosts.sweep(db, 60, _reschedule(api))
    assert sorted((t.uuid, t.host, t.rescheduled) for t in taken) == sorted(
        [(accepted, "fake-host-1", True), (waiting, "fake-host-1", True), (volume_boot, "fake-host-1", False)]
    )
    for uuid in (accepted, waiting):
        row = h.wait_for(api, uuid, h.settled)
        assert (row.vm_state, row.host) == ("active", "fake-host-2"), h.faults(api, uuid)
        assert h.allocations_by_host(api, uuid) == {"fake-host-2": TINY}
    row = h.instance(api, volume_boot)
    assert (row.vm_state, row.task_state, row.host) == ("error", None, None)
    [fault] = h.faults(api, volume_boot)
    assert "fake-host-1 went down" in fault.message
    assert h.allocations_by_host(api, volume_boot) == {}
    assert down_hosts.sweep(db, 60, _reschedule(api)) == []  # a second conductor finds nothing left
    h.usage_matches_live_servers(api)

    # the host comes back and reads its old queue: the messages are stale, nothing moves
    back = _agent(api, "fake-host-1")
    for uuid in (accepted, waiting):
        back.build_and_run_instance(_build_message(api, uuid, "fake-host-1"))
        row = h.instance(api, uuid)
        assert (row.vm_state, row.host) == ("active", "fake-host-2")
        assert h.allocations_by_host(api, uuid) == {"fake-host-2": TINY}
    h.usage_matches_live_servers(api)


def test_a_forced_down_host_counts_as_down(stack_factory: Any) -> None:
    api = stack_factory(fake_hosts=2, report_interval=3600, service_down_time=60)
    [uuid] = h.create_instances(api, start=False)
    _accepted_on(api, uuid, "fake-host-2")
    with api.runtime.db.session() as s:
        s.execute(update(Service).where(Service.host == "fake-host-2").values(forced_down=True))
    [taken] = down_hosts.sweep(api.runtime.db, 60, _reschedule(api))
    assert (taken.uuid, taken.host) == (uuid, "fake-host-2")
    assert h.wait_for(api, uuid, h.settled).host == "fake-host-1"
    h.usage_matches_live_servers(api)


def test_with_no_host_left_a_stranded_build_ends_in_error_with_a_fault(stack_factory: Any) -> None:
    api = stack_factory(fake_hosts=1, report_interval=3600, service_down_time=60)
    [uuid] = h.create_instances(api, start=False)
    _accepted_on(api, uuid, "fake-host-1")
    _kill(api, "fake-host-1")
    down_hosts.sweep(api.runtime.db, 60, _reschedule(api))
    row = h.wait_for(api, uuid, h.settled)
    assert row.vm_state == "error"
    assert "No valid host" in h.faults(api, uuid)[-1].message
    assert h.allocations_by_host(api, uuid) == {}
    h.usage_matches_live_servers(api)


def test_a_stale_build_message_after_a_reschedule_does_not_release_the_new_hosts_claim(
    stack_factory: Any,
) -> None:
    """Regression (item 5): the instance was rescheduled to fake-host-2 (claimed there, its build
    message on its way) when a stale build message for it reached fake-host-1. fake-host-1 found no
    claim of its own, took that for a failed build and released every allocation of the instance
    -- fake-host-2's -- then asked the conductor to reschedule it once more."""
    api = stack_factory(fake_hosts=2)
    [uuid] = h.create_instances(api, start=False)
    _claim_on(api, uuid, "fake-host-2")
    _agent(api, "fake-host-1").build_and_run_instance(_build_message(api, uuid, "fake-host-1"))
    row = h.instance(api, uuid)
    assert (row.vm_state, row.task_state, row.host) == ("building", "scheduling", None)
    assert h.allocations_by_host(api, uuid) == {"fake-host-2": TINY}
    assert h.events(api, uuid) == [] and h.faults(api, uuid) == []
    _agent(api, "fake-host-2").build_and_run_instance(_build_message(api, uuid, "fake-host-2"))
    row = h.wait_for(api, uuid, h.settled)
    assert (row.vm_state, row.host) == ("active", "fake-host-2")
    assert h.allocations_by_host(api, uuid) == {"fake-host-2": TINY}
    assert h.events(api, uuid) == [("create", BUILD_EVENT, "Success")]
    h.usage_matches_live_servers(api)


class _TakenWhileSpawning(FakeDriver):
    """A spawn that fails after the instance was taken from this host and claimed on another
    (what the down-host recovery does to a host that was only slow)."""

    def __init__(self, api: Any, to: str):
        super().__init__()
        self.api, self.to = api, to

    def spawn(self, guest: GuestSpec) -> None:
        from novalite.placement import allocations

        with self.api.runtime.db.session() as s:
            allocations.release(s, guest.uuid)
            s.execute(
                update(h.Instance)
                .where(h.Instance.uuid == guest.uuid)
                .values(host=None, node=None, task_state="scheduling")
            )
        _claim_on(self.api, guest.uuid, self.to)
        raise DriverError("the disk went away")


def test_a_failed_build_on_a_host_it_was_taken_from_leaves_the_new_claim_alone(stack_factory: Any) -> None:
    api = stack_factory(fake_hosts=2)
    [uuid] = h.create_instances(api, start=False)
    _claim_on(api, uuid, "fake-host-1")
    slow = _agent(api, "fake-host-1", _TakenWhileSpawning(api, "fake-host-2"))
    slow.build_and_run_instance(_build_message(api, uuid, "fake-host-1"))  # fails: Reschedule
    row = h.instance(api, uuid)
    assert (row.vm_state, row.task_state, row.host) == ("building", "scheduling", None)
    assert h.allocations_by_host(api, uuid) == {"fake-host-2": TINY}
    _agent(api, "fake-host-2").build_and_run_instance(_build_message(api, uuid, "fake-host-2"))
    assert h.wait_for(api, uuid, h.settled).host == "fake-host-2"
    assert h.allocations_by_host(api, uuid) == {"fake-host-2": TINY}
    h.usage_matches_live_servers(api)
