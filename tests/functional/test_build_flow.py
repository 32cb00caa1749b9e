"""The asynchronous half of server creation, driven directly (rows as the API writes them,
then the conductor): scheduling, placement claims, compute build, reschedule, burial, delete."""

from __future__ import annotations

import uuid as uuid_module
from typing import Any

import pytest
from sqlalchemy import select, update

from novalite.db.models.placement import Inventory, ResourceProvider, Service
from tests.functional import build_helpers as h


def test_happy_path_goes_active_with_one_allocation(stack_factory: Any) -> None:
    api = stack_factory(fake_hosts=2)
    [uuid] = h.create_instances(api)
    row = h.wait_for(api, uuid, h.settled)
    assert (row.vm_state, row.task_state, row.power_state) == ("active", None, 1)
    assert row.host in ("fake-host-1", "fake-host-2") and row.node == row.host
    assert row.launched_at is not None
    assert h.allocations_by_host(api, uuid) == {row.host: {"VCPU": 1, "MEMORY_MB": 512, "DISK_GB": 1}}
    assert h.events(api, uuid) == [("create", "compute__do_build_and_run_instance", "Success")]


def test_multi_create_spreads_over_hosts(stack_factory: Any) -> None:
    api = stack_factory(fake_hosts=3)
    uuids = h.create_instances(api, count=3)
    hosts = {h.wait_for(api, u, h.settled).host for u in uuids}
    assert hosts == {"fake-host-1", "fake-host-2", "fake-host-3"}


def test_reschedule_after_injected_failure_ends_on_second_host(stack_factory: Any) -> None:
    api = stack_factory(fake_hosts=3)
    [uuid] = h.create_instances(api, metadata={"novalite:fail_spawn_hosts": "1"})
    row = h.wait_for(api, uuid, h.settled)
    assert row.vm_state == "active"
    results = [r for _a, _e, r in h.events(api, uuid)]
    assert results == ["Error", "Success"]
    assert list(h.allocations_by_host(api, uuid)) == [row.host]
    assert h.faults(api, uuid) == []
    h.usage_matches_live_servers(api)


def test_exhausted_retries_end_in_error_naming_every_host(stack_factory: Any) -> None:
    api = stack_factory(fake_hosts=3, max_attempts=3)
    [uuid] = h.create_instances(api, metadata={"novalite:fail_spawn": "always"})
    row = h.wait_for(api, uuid, h.settled)
    assert (row.vm_state, row.task_state, row.host) == ("error", None, None)
    [fault] = h.faults(api, uuid)
    assert fault.code == 500
    assert "Exceeded maximum number of retries" in fault.message
    for host in ("fake-host-1", "fake-host-2", "fake-host-3"):
        assert host in fault.message
    assert [r for _a, _e, r in h.events(api, uuid)] == ["Error", "Error", "Error"]
    assert h.allocations_by_host(api, uuid) == {}


def test_an_error_while_rescheduling_ends_in_error_not_in_build(stack_factory: Any, monkeypatch: Any) -> None:
    """The conductor's reschedule transaction fails for a reason it cannot retry (here: the
    claim of the alternate raises): the instance ends in ERROR with the cause, claims released."""
    from novalite.conductor import manager

    def broken(*_a: Any, **_k: Any) -> Any:
        raise RuntimeError("placement database unreachable")

    monkeypatch.setattr(manager, "_claim_alternate", broken)
    api = stack_factory(fake_hosts=3)
    [uuid] = h.create_instances(api, metadata={"novalite:fail_spawn_hosts": "1"})
    row = h.wait_for(api, uuid, h.settled)
    assert (row.vm_state, row.task_state, row.host) == ("error", None, None)
    [fault] = h.faults(api, uuid)
    assert fault.code == 500
    assert "Rescheduling instance" in fault.message and "placement database unreachable" in fault.message
    assert "fake-host-" in fault.details and "(conductor)" in fault.details  # the host that failed, then why
    assert h.allocations_by_host(api, uuid) == {}
    h.usage_matches_live_servers(api)


def test_fewer_hosts_than_attempts_exhausts_alternates(stack_factory: Any) -> None:
    api = stack_factory(fake_hosts=2, max_attempts=3)
    [uuid] = h.create_instances(api, metadata={"novalite:fail_spawn": "always"})
    row = h.wait_for(api, uuid, h.settled)
    assert row.vm_state == "error"
    [fault] = h.faults(api, uuid)
    assert "Exhausted all hosts available for retrying build failures" in fault.message
    assert "fake-host-1" in fault.message and "fake-host-2" in fault.message


def test_no_valid_host_names_filters_and_placement(stack_factory: Any) -> None:
    api = stack_factory(fake_hosts=3, fake_host_ram_mb=1024)
    with api.runtime.db.session() as s:
        s.execute(
            update(Service)
            .where(Service.host == "fake-host-1")
            .values(disabled=True, disabled_reason="maintenance")
        )
    h.create_instances(api, flavor=dict(h.TINY, memory_mb=1024))  # fills one of hosts 2 and 3
    [uuid] = h.create_instances(api, flavor=dict(h.TINY, memory_mb=1024))
    h.wait_for(api, uuid, h.settled)
    [uuid] = h.create_instances(api, flavor=dict(h.TINY, memory_mb=1024))
    row = h.wait_for(api, uuid, h.settled)
    assert row.vm_state == "error"
    [fault] = h.faults(api, uuid)
    assert fault.code == 500
    assert fault.message.startswith("No valid host was found. ")
    assert "ComputeFilter: 1 host; placement: 2 hosts" in fault.message
    assert h.events(api, uuid) == [("create", "conductor_schedule_and_build_instances", "Error")]


def test_no_valid_host_counts_filter_drops(stack_factory: Any) -> None:
    api = stack_factory(fake_hosts=3)
    with api.runtime.db.session() as s:
        s.execute(update(Service).where(Service.host == "fake-host-2").values(forced_down=True))
    flavor = dict(h.TINY, extra_specs={"capabilities:hypervisor_type": "s== xen"})
    [uuid] = h.create_instances(api, flavor=flavor)
    row = h.wait_for(api, uuid, h.settled)
    [fault] = h.faults(api, uuid)
    assert row.vm_state == "error"
    assert "ComputeFilter: 1 host" in fault.message
    assert "ComputeCapabilitiesFilter: 2 hosts" in fault.message


def test_multi_create_is_all_or_nothing(stack_factory: Any) -> None:
    api = stack_factory(fake_hosts=2, fake_host_ram_mb=1024)
    uuids = h.create_instances(api, count=3, flavor=dict(h.TINY, memory_mb=1024))
    rows = [h.wait_for(api, u, h.settled) for u in uuids]
    assert {r.vm_state for r in rows} == {"error"}
    for u in uuids:
        assert h.allocations_by_host(api, u) == {}


def test_delete_while_scheduling_leaves_nothing(stack_factory: Any) -> None:
    api = stack_factory(fake_hosts=2)
    [uuid] = h.create_instances(api, start=False)
    api.runtime.services.require_compute_api().delete_instance(h.demo_ctx(api), uuid)
    api.runtime.services.require_conductor().schedule_and_build_instances(h.demo_ctx(api), [uuid], {})
    row = h.wait_for(api, uuid, lambda r: r.deleted)
    assert (row.vm_state, row.deleted_at is not None, row.terminated_at is not None) == (
        "deleted",
        True,
        True,
    )
    assert h.allocations_by_host(api, uuid) == {}
    h.usage_matches_live_servers(api)


def test_delete_during_build_releases_the_claim(stack_factory: Any) -> None:
    api = stack_factory(fake_hosts=2)
    [uuid] = h.create_instances(api, metadata={"novalite:build_delay": "1"})
    h.wait_for(api, uuid, lambda r: r.task_state in ("spawning", "networking", "block_device_mapping"))
    api.runtime.services.require_compute_api().delete_instance(h.demo_ctx(api), uuid)
    row = h.wait_for(api, uuid, lambda r: r.deleted)
    assert row.vm_state == "deleted"
    api.runtime.services.require_compute_api().delete_instance(h.demo_ctx(api), uuid)  # idempotent
    h.wait_for(api, uuid, lambda r: h.allocations_by_host(api, uuid) == {})
    h.usage_matches_live_servers(api)


def test_failed_delete_goes_to_error_and_a_second_delete_works(stack_factory: Any) -> None:
    api = stack_factory(fake_hosts=1)
    [uuid] = h.create_instances(api, metadata={"novalite:fail_delete_once": "true"})
    h.wait_for(api, uuid, h.settled)
    api.runtime.services.require_compute_api().delete_instance(h.demo_ctx(api), uuid)
    row = h.wait_for(api, uuid, lambda r: r.vm_state == "error" and r.task_state is None)
    assert not row.deleted and h.faults(api, uuid)
    api.runtime.services.require_compute_api().delete_instance(h.demo_ctx(api), uuid)
    row = h.wait_for(api, uuid, lambda r: r.deleted)
    assert h.allocations_by_host(api, uuid) == {}
    assert ("delete", "compute_terminate_instance", "Success") in h.events(api, uuid)


def test_error_instance_deletes_locally(stack_factory: Any) -> None:
    api = stack_factory(fake_hosts=1)
    [uuid] = h.create_instances(api, flavor=dict(h.TINY, vcpus=10_000))
    h.wait_for(api, uuid, h.settled)
    api.runtime.services.require_compute_api().delete_instance(h.demo_ctx(api), uuid)
    assert h.instance(api, uuid).deleted


def test_usage_equals_live_servers_after_a_mixed_run(stack_factory: Any) -> None:
    api = stack_factory(fake_hosts=3)
    ok = h.create_instances(api, count=6)
    rescheduled = h.create_instances(api, metadata={"novalite:fail_spawn_hosts": "2"})
    failed = h.create_instances(api, metadata={"novalite:fail_spawn": "always"})
    too_big = h.create_instances(api, flavor=dict(h.TINY, memory_mb=10**8))
    for u in ok + rescheduled + failed + too_big:
        h.wait_for(api, u, h.settled)
    compute_api = api.runtime.services.require_compute_api()
    for u in ok[:3] + failed:
        compute_api.delete_instance(h.demo_ctx(api), u)
    for u in ok[:3] + failed:
        h.wait_for(api, u, lambda r: r.deleted)
    assert h.instance(api, rescheduled[0]).vm_state == "active"
    h.usage_matches_live_servers(api)


def _claim_on(api: Any, uuid: str, host: str) -> None:
    """The claim the conductor makes for an m1.tiny instance on ``host``."""
    from novalite.placement import allocations

    with api.runtime.db.session() as s:
        provider = s.execute(select(ResourceProvider.uuid).where(ResourceProvider.name == host)).scalar_one()
        row = s.execute(
            select(h.Instance.project_id, h.Instance.user_id).where(h.Instance.uuid == uuid)
        ).one()
        allocations.claim(
            s,
            allocations.ConsumerRef(uuid, row[0], row[1]),
            {provider: {"VCPU": 1, "MEMORY_MB": 512, "DISK_GB": 1}},
        )


def _recover(api: Any, hosts: list[str]) -> Any:
    from novalite.compute import recovery

    services = api.runtime.services
    compute = services.require_compute_api().compute
    report = recovery.rewind(api.runtime.db, hosts)
    return recovery.hand_over(
        api.runtime.db,
        services.require_conductor(),
        compute,
        hosts=hosts,
        messages_lost=True,
        report=report,
    )


def test_restart_resumes_claimed_and_interrupted_builds_and_reschedules_waiting_ones(
    stack_factory: Any,
) -> None:
    """Issue 16, item 4: recovery used to hand claimed instances to the scheduler again, whose claim
    then failed everywhere ('consumer already has allocations'): ERROR on empty hosts."""
    api = stack_factory(fake_hosts=2)
    waiting = h.create_instances(api, count=2, start=False)  # as if the cast died with the old process
    [interrupted] = h.create_instances(api, start=False)  # accepted on fake-host-1, died while spawning
    [claimed] = h.create_instances(api, start=False)  # claimed on fake-host-2, its build message lost
    with api.runtime.db.session() as s:
        s.execute(
            update(h.Instance)
            .where(h.Instance.uuid == interrupted)
            .values(host="fake-host-1", node="fake-host-1", task_state="spawning")
        )
    _claim_on(api, interrupted, "fake-host-1")
    _claim_on(api, claimed, "fake-host-2")
    report = _recover(api, ["fake-host-1", "fake-host-2"])
    assert sorted(report.resumed) == sorted([interrupted, claimed])
    assert sorted(report.rescheduled) == sorted(waiting)
    assert report.failed == []
    for uuid in [*waiting, interrupted, claimed]:
        assert h.wait_for(api, uuid, h.settled).vm_state == "active", h.faults(api, uuid)
    assert h.instance(api, interrupted).host == "fake-host-1"  # built on the claim it held
    assert h.instance(api, claimed).host == "fake-host-2"
    assert h.allocations_by_host(api, claimed) == {"fake-host-2": {"VCPU": 1, "MEMORY_MB": 512, "DISK_GB": 1}}
    h.usage_matches_live_servers(api)


def test_a_request_that_arrives_twice_is_scheduled_once(stack_factory: Any) -> None:
    """A create's cast and a recovery's hand-over of the same instances: the second finds them
    claimed and leaves them alone (no 'claims lost to concurrent requests')."""
    api = stack_factory(fake_hosts=2)
    uuids = h.create_instances(api, count=3, start=False)
    conductor = api.runtime.services.require_conductor()
    for _ in range(3):
        conductor.schedule_and_build_instances(h.demo_ctx(api), uuids, {})
    for uuid in uuids:
        assert h.wait_for(api, uuid, h.settled).vm_state == "active", h.faults(api, uuid)
    h.usage_matches_live_servers(api)


def test_an_interrupted_volume_boot_ends_in_error_with_everything_released(stack_factory: Any) -> None:
    from novalite.compute import recovery
    from novalite.db.models.compute import RequestSpec

    api = stack_factory(fake_hosts=1)
    [uuid] = h.create_instances(api, start=False)
    with api.runtime.db.session() as s:
        spec = s.get(RequestSpec, uuid)
        assert spec is not None
        spec.spec = {**spec.spec, "is_bfv": True}
        s.execute(
            update(h.Instance)
            .where(h.Instance.uuid == uuid)
            .values(host="fake-host-1", node="fake-host-1", task_state="spawning")
        )
    _claim_on(api, uuid, "fake-host-1")
    report = _recover(api, ["fake-host-1"])
    assert report.failed == [uuid]
    row = h.instance(api, uuid)
    assert (row.vm_state, row.task_state, row.host) == ("error", None, None)
    assert h.faults(api, uuid)[-1].message == recovery.INTERRUPTED_VOLUMES
    assert h.allocations_by_host(api, uuid) == {}
    h.usage_matches_live_servers(api)


def _private_network(api: Any) -> str:
    from novalite.db.models.network import Network

    with api.runtime.db.reader() as s:
        return str(
            s.execute(
                select(Network.id).where(
                    Network.project_id == api.ids["demo_project"], Network.name == "private"
                )
            ).scalar_one()
        )


def test_build_plugs_a_port_and_delete_removes_it(stack_factory: Any) -> None:
    from novalite.db.models.network import Port

    api = stack_factory(fake_hosts=1)
    [uuid] = h.create_instances(api, requested_networks=[{"network_id": _private_network(api)}])
    row = h.wait_for(api, uuid, h.settled)
    assert row.vm_state == "active"
    [port] = row.network_info
    assert port["fixed_ips"]
    with api.runtime.db.reader() as s:
        assert s.execute(select(Port.binding_host_id).where(Port.device_id == uuid)).scalar_one() == row.host
    api.runtime.services.require_compute_api().delete_instance(h.demo_ctx(api), uuid)
    h.wait_for(api, uuid, lambda r: r.deleted)
    with api.runtime.db.reader() as s:
        assert s.execute(select(Port.id).where(Port.device_id == uuid)).all() == []


def test_network_failure_aborts_without_reschedule(stack_factory: Any) -> None:
    api = stack_factory(fake_hosts=3)
    [uuid] = h.create_instances(
        api, requested_networks=[{"network_id": "00000000-0000-0000-0000-00000000dead"}]
    )
    row = h.wait_for(api, uuid, h.settled)
    assert row.vm_state == "error"
    [fault] = h.faults(api, uuid)
    assert fault.message.startswith("Failed to allocate the network(s), not rescheduling.")
    assert h.events(api, uuid) == [("create", "compute__do_build_and_run_instance", "Error")]
    assert h.allocations_by_host(api, uuid) == {}


def test_forced_host_skips_filters_and_unknown_host_is_no_such_host(stack_factory: Any) -> None:
    api = stack_factory(fake_hosts=2)
    with api.runtime.db.session() as s:
        s.execute(update(Service).where(Service.host == "fake-host-2").values(disabled=True))
    [forced] = h.create_instances(api, spec_extra={"force_hosts": ["fake-host-2"]})
    assert h.wait_for(api, forced, h.settled).host == "fake-host-2"  # filters skipped
    [requested] = h.create_instances(
        api, spec_extra={"requested_destination": {"host": "fake-host-2", "node": None}}
    )
    assert h.wait_for(api, requested, h.settled).vm_state == "error"  # requested still filters
    assert "ComputeFilter: 1 host" in h.faults(api, requested)[0].message
    [unknown] = h.create_instances(api, spec_extra={"force_hosts": ["nowhere"]})
    assert h.wait_for(api, unknown, h.settled).vm_state == "error"
    assert (
        h.faults(api, unknown)[0].message
        == "No valid host was found. No such host - host: nowhere node: None"
    )


def test_mixed_run_on_postgresql(stack_factory: Any) -> None:
    api = stack_factory(fake_hosts=3, postgres=True)
    ok = h.create_instances(api, count=4)
    rescheduled = h.create_instances(api, metadata={"novalite:fail_spawn_hosts": "1"})
    failed = h.create_instances(api, metadata={"novalite:fail_spawn": "always"})
    for u in ok + rescheduled + failed:
        h.wait_for(api, u, h.settled)
    assert h.instance(api, rescheduled[0]).vm_state == "active"
    assert h.instance(api, failed[0]).vm_state == "error"
    for u in ok[:2] + failed:
        api.runtime.services.require_compute_api().delete_instance(h.demo_ctx(api), u)
    for u in ok[:2] + failed:
        h.wait_for(api, u, lambda r: r.deleted)
    h.usage_matches_live_servers(api)


def test_delete_during_a_failing_build_does_not_reschedule(stack_factory: Any) -> None:
    api = stack_factory(fake_hosts=3)
    [uuid] = h.create_instances(api, metadata={"novalite:build_delay": "1", "novalite:fail_spawn": "always"})
    h.wait_for(api, uuid, lambda r: r.task_state == "spawning")
    api.runtime.services.require_compute_api().delete_instance(h.demo_ctx(api), uuid)
    h.wait_for(api, uuid, lambda r: r.deleted)
    build_events = lambda: [e for e in h.events(api, uuid) if e[1] == "compute__do_build_and_run_instance"]  # noqa: E731
    h.wait_for(api, uuid, lambda r: all(result is not None for *_x, result in build_events()))
    assert len(build_events()) == 1  # the failed spawn was not retried elsewhere
    assert h.allocations_by_host(api, uuid) == {}
    h.usage_matches_live_servers(api)


def test_stop_abandons_slow_builds_and_the_next_start_resumes_them(tmp_path: Any) -> None:
    from novalite.app import build_runtime
    from novalite.bootstrap import bootstrap
    from novalite.db.base import upgrade
    from novalite.services import startup
    from tests.conftest import make_settings

    settings = make_settings(tmp_path, fake_hosts=1)
    upgrade(settings.effective_database_url)
    rt = build_runtime(settings)
    report = bootstrap(rt)
    stop = startup.start(rt)
    api = type("Api", (), {"runtime": rt, "ids": report.ids})()
    try:
        [uuid] = h.create_instances(api, metadata={"novalite:build_delay": "3600"})
        [quick] = h.create_instances(api, metadata={"novalite:build_delay": "3600"})
        h.wait_for(api, uuid, lambda r: r.task_state == "spawning")
        h.wait_for(api, quick, lambda r: r.task_state == "spawning")
    finally:
        stop()  # returns although a build is sleeping for an hour
    assert h.instance(api, uuid).vm_state == "building"
    with rt.db.session() as s:  # the next process builds this one at once
        s.execute(
            update(h.InstanceMetadata).where(h.InstanceMetadata.instance_uuid == quick).values(value="0")
        )
    stop = startup.start(rt)  # the next process
    try:
        assert h.wait_for(api, quick, h.settled).vm_state == "active", h.faults(api, quick)
        h.wait_for(api, uuid, lambda r: r.task_state == "spawning")  # building again, on its claim
        assert h.faults(api, uuid) == []
        assert h.allocations_by_host(api, uuid) == {
            "fake-host-1": {"VCPU": 1, "MEMORY_MB": 512, "DISK_GB": 1}
        }
    finally:
        stop()
        rt.db.dispose()


def test_a_batch_of_requests_shares_capacity_without_double_claims(stack_factory: Any) -> None:
    from novalite.db.models.compute import RequestSpec
    from novalite.domain.request_spec import RequestSpecDoc
    from novalite.scheduler.service import Placed, ScheduleRequest, Unplaced

    api = stack_factory(fake_hosts=2, fake_host_ram_mb=1024)
    flavor = dict(h.TINY, memory_mb=1024)
    uuids = [h.create_instances(api, flavor=flavor, start=False)[0] for _ in range(3)]
    with api.runtime.db.reader() as s:
        specs = {
            r.instance_uuid: RequestSpecDoc.from_doc(r.spec)
            for r in s.scalars(select(RequestSpec).where(RequestSpec.instance_uuid.in_(uuids)))
        }
    requests = [ScheduleRequest(specs[u], (u,), api.ids["demo_project"], api.ids["demo_user"]) for u in uuids]
    outcomes = api.runtime.services.scheduler.select_batch(requests)
    placed = [o.hosts for o in outcomes if isinstance(o, Placed)]
    assert len(placed) == 2 and isinstance(outcomes[2], Unplaced)
    hosts = [dests[0].host for o in placed for dests in o.values()]
    assert sorted(hosts) == ["fake-host-1", "fake-host-2"]
    assert [list(h.allocations_by_host(api, u)) for u in uuids] == [[hosts[0]], [hosts[1]], []]


def test_an_unreadable_request_spec_fails_its_own_request_only(stack_factory: Any) -> None:
    """A stored RequestSpec the conductor cannot read (here a flavor whose RAM is not a number, as
    a hand-edited or corrupted row would hold) ends that request in ERROR with a fault that says
    so; a healthy request handed over at the same moment still goes ACTIVE."""
    api = stack_factory(fake_hosts=2)
    [bad] = h.create_instances(api, start=False, spec_extra={"num_instances": "several"})
    [good] = h.create_instances(api, start=False)
    conductor = api.runtime.services.require_conductor()
    conductor.schedule_and_build_instances(h.demo_ctx(api), [bad], {"requested_networks": "none"})
    conductor.schedule_and_build_instances(h.demo_ctx(api), [good], {"requested_networks": "none"})
    assert h.wait_for(api, good, h.settled).vm_state == "active"
    row = h.wait_for(api, bad, h.settled)
    assert row.vm_state == "error"
    [fault] = h.faults(api, bad)
    assert "RequestSpec" in fault.message and "could not be read" in fault.message
    assert h.allocations_by_host(api, bad) == {}


@pytest.mark.parametrize("taken_mb, placed_count", [(1024, 3), (2048, 2)])
def test_a_batch_claim_that_finds_a_host_fuller_than_planned_moves_only_that_instance(
    stack_factory: Any, monkeypatch: Any, taken_mb: int, placed_count: int
) -> None:
    """Between the plan and the claims another scheduler takes memory on the host the batch's
    first instance was planned on: the batch's set-based claim moves only the instances that no
    longer fit to their next host; when the hosts cannot take them all, a request is refused
    (never a host over its capacity) and the others keep their hosts."""
    from novalite.db.models.compute import RequestSpec
    from novalite.domain.request_spec import RequestSpecDoc
    from novalite.placement import allocations
    from novalite.scheduler.service import Placed, ScheduleRequest, Unplaced

    api = stack_factory(fake_hosts=2, fake_host_ram_mb=2048)
    flavor = dict(h.TINY, memory_mb=1024)
    uuids = [h.create_instances(api, flavor=flavor, start=False)[0] for _ in range(3)]
    with api.runtime.db.reader() as s:
        specs = {
            r.instance_uuid: RequestSpecDoc.from_doc(r.spec)
            for r in s.scalars(select(RequestSpec).where(RequestSpec.instance_uuid.in_(uuids)))
        }
    scheduler = api.runtime.services.scheduler
    plan_batch = scheduler.plan_batch

    def plan_then_someone_else_claims(requests: Any) -> Any:
        plans = plan_batch(requests)
        provider = plans[0].selection.ranked[0][0].uuid
        other = allocations.ConsumerRef(
            str(uuid_module.uuid4()), api.ids["demo_project"], api.ids["demo_user"]
        )
        api.runtime.db.write(lambda s: allocations.claim(s, other, {provider: {"MEMORY_MB": taken_mb}}))
        return plans

    monkeypatch.setattr(scheduler, "plan_batch", plan_then_someone_else_claims)
    requests = [ScheduleRequest(specs[u], (u,), api.ids["demo_project"], api.ids["demo_user"]) for u in uuids]
    outcomes = scheduler.select_batch(requests)
    placed = [o for o in outcomes if isinstance(o, Placed)]
    assert len(placed) == placed_count
    assert sum(isinstance(o, Unplaced) for o in outcomes) == 3 - placed_count
    held = [h.allocations_by_host(api, u) for u in uuids]
    assert sum(1 for a in held if a) == placed_count
    for outcome, uuid, alloc in zip(outcomes, uuids, held, strict=True):
        if isinstance(outcome, Placed):
            assert list(alloc) == [outcome.hosts[uuid][0].host]
    with api.runtime.db.reader() as s:
        rows = s.execute(
            select(Inventory.resource_provider_id, Inventory.used, Inventory.total).where(
                Inventory.resource_class == "MEMORY_MB"
            )
        ).all()
    assert all(used <= total for _p, used, total in rows)
    assert sum(used for _p, used, _t in rows) == taken_mb + 1024 * placed_count
