"""Placement claims: generations, capacity, concurrent claims, candidates (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
import uuid as uuidlib
from typing import Any

import pytest
from sqlalchemy import select

from novalite.db.models.placement import ResourceProvider
from novalite.placement import allocations, candidates, providers
from novalite.placement.providers import InventorySpec


def _provider(
    db: Any, name: str, *, vcpus: int = 4, ram: int = 4096, disk: int = 100, cpu_ratio: float = 1.0
) -> str:
    with db.session() as s:
        rp = providers.create_provider(s, name=name)
        providers.set_inventories(
            s,
            rp,
            {
                "VCPU": InventorySpec(total=vcpus, allocation_ratio=cpu_ratio),
                "MEMORY_MB": InventorySpec(total=ram),
                "DISK_GB": InventorySpec(total=disk),
            },
        )
        return rp.uuid


def _consumer() -> allocations.ConsumerRef:
    return allocations.ConsumerRef(str(uuidlib.uuid4()), "p", "u")


def _generation(db: Any, uuid: str) -> int:
    with db.reader() as s:
        return int(
            s.execute(select(ResourceProvider.generation).where(ResourceProvider.uuid == uuid)).scalar_one()
        )


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: Any, stack_factory: Any) -> Any:
    api = stack_factory(fake_hosts=0, postgres=request.param == "postgres")
    return api.runtime.db


def test_claim_bumps_generation_and_usage(db: Any) -> None:
    rp = _provider(db, "rp-a")
    before = _generation(db, rp)
    c = _consumer()
    with db.session() as s:
        allocations.claim(s, c, {rp: {"VCPU": 2, "MEMORY_MB": 1024}})
    assert _generation(db, rp) == before + 1
    with db.reader() as s:
        assert allocations.provider_usages(s, rp) == {"VCPU": 2, "MEMORY_MB": 1024, "DISK_GB": 0}
        assert allocations.allocations_of(s, c.uuid) == {rp: {"VCPU": 2, "MEMORY_MB": 1024}}


def test_stale_provider_generation_is_a_conflict(db: Any) -> None:
    rp = _provider(db, "rp-b")
    seen = _generation(db, rp)
    with db.session() as s:
        allocations.claim(s, _consumer(), {rp: {"VCPU": 1}})
    with db.session() as s, pytest.raises(allocations.AllocationConflict):
        allocations.claim(s, _consumer(), {rp: {"VCPU": 1}}, provider_generations={rp: seen})
    with db.reader() as s:
        assert allocations.provider_usages(s, rp)["VCPU"] == 1


def test_consumer_generation_guards_a_second_claim(db: Any) -> None:
    rp = _provider(db, "rp-c")
    c = _consumer()
    with db.session() as s:
        allocations.claim(s, c, {rp: {"VCPU": 1}})
    with db.session() as s, pytest.raises(allocations.AllocationConflict):
        allocations.claim(s, c, {rp: {"VCPU": 1}})  # "new consumer" but it already holds resources


def test_over_capacity_claim_fails_and_leaves_nothing(db: Any) -> None:
    rp = _provider(db, "rp-d", vcpus=2)
    c = _consumer()
    with db.session() as s, pytest.raises(allocations.AllocationConflict):
        allocations.claim(s, c, {rp: {"MEMORY_MB": 512, "VCPU": 3}})
    with db.reader() as s:
        assert allocations.provider_usages(s, rp) == {"VCPU": 0, "MEMORY_MB": 0, "DISK_GB": 0}
        assert allocations.allocations_of(s, c.uuid) == {}


def test_release_is_idempotent(db: Any) -> None:
    rp = _provider(db, "rp-e")
    c = _consumer()
    with db.session() as s:
        allocations.claim(s, c, {rp: {"VCPU": 1, "DISK_GB": 10}})
    for expected in (True, False):
        with db.session() as s:
            assert allocations.release(s, c.uuid) is expected
    with db.reader() as s:
        assert allocations.provider_usages(s, rp) == {"VCPU": 0, "MEMORY_MB": 0, "DISK_GB": 0}


def test_concurrent_claims_never_double_claim(db: Any) -> None:
    rp = _provider(db, "rp-f", vcpus=5)
    wins: list[str] = []
    barrier = threading.Barrier(12)

    def worker() -> None:
        c = _consumer()
        barrier.wait()
        try:
            with db.session() as s:
                allocations.claim(s, c, {rp: {"VCPU": 1}})
            wins.append(c.uuid)
        except allocations.AllocationConflict:
            pass

    threads = [threading.Thread(target=worker) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 5
    with db.reader() as s:
        assert allocations.provider_usages(s, rp)["VCPU"] == 5


def test_candidates_respect_capacity_ratio_traits_and_limit(db: Any) -> None:
    small = _provider(db, "rp-small", vcpus=2, ram=1024)
    big = _provider(db, "rp-big", vcpus=2, ram=8192, cpu_ratio=4.0)
    with db.session() as s:
        allocations.claim(s, _consumer(), {small: {"MEMORY_MB": 768, "VCPU": 2}})
        allocations.claim(s, _consumer(), {big: {"VCPU": 2}})
        rp = providers.get_provider(s, big)
        assert rp is not None
        providers.set_traits(s, rp, ["CUSTOM_FAST"])
    with db.reader() as s:
        names = lambda q: [c.provider_name for c in candidates.find_candidates(s, q)]  # noqa: E731
        assert names(candidates.ResourceQuery({"MEMORY_MB": 512})) == ["rp-big"]
        assert names(candidates.ResourceQuery({"MEMORY_MB": 256})) == ["rp-small", "rp-big"]
        assert names(candidates.ResourceQuery({"VCPU": 2})) == ["rp-big"]  # 2 of 2 used; 2 of 2 * 4.0
        assert names(candidates.ResourceQuery({"VCPU": 3})) == []  # above max_unit
        assert names(candidates.ResourceQuery({"DISK_GB": 1}, forbidden_traits=("CUSTOM_FAST",))) == [
            "rp-small"
        ]
        assert names(candidates.ResourceQuery({"DISK_GB": 1}, required_traits=("CUSTOM_FAST",))) == ["rp-big"]
        assert names(candidates.ResourceQuery({"DISK_GB": 1}, limit=1)) == ["rp-small"]
        [cand] = candidates.find_candidates(
            s, candidates.ResourceQuery({"VCPU": 1, "DISK_GB": 5}, provider_names=("rp-big",))
        )
        assert cand.allocation_request == {big: {"VCPU": 1, "DISK_GB": 5}}


def test_candidates_stay_sql_at_ten_thousand_providers(stack_factory: Any) -> None:
    api = stack_factory(fake_hosts=10_000, max_placement_results=1000)
    with api.runtime.db.reader() as s:
        found = candidates.find_candidates(
            s, candidates.ResourceQuery({"VCPU": 1, "MEMORY_MB": 512}, limit=1000)
        )
        assert len(found) == 1000
        assert candidates.count_providers(s) == 10_000


def test_fake_hosts_seed_is_idempotent_and_grows(stack_factory: Any) -> None:
    from sqlalchemy import func

    from novalite.compute import hosts
    from novalite.db.models.placement import ComputeNode, Inventory, Service

    api = stack_factory(fake_hosts=2, fake_host_vcpus=8, cpu_allocation_ratio=2.0)
    rt = api.runtime
    rt.settings.fake_hosts = 4
    for _ in range(2):
        with rt.db.session() as s:
            hosts.seed(rt, s, api.ids)
    with rt.db.reader() as s:
        assert hosts.local_hosts(s) == ["fake-host-1", "fake-host-2", "fake-host-3", "fake-host-4"]
        assert s.execute(select(func.count()).select_from(ComputeNode)).scalar_one() == 4
        assert (
            s.execute(
                select(func.count()).select_from(Service).where(Service.binary == "nova-compute")
            ).scalar_one()
            == 4
        )
        node = s.scalars(select(ComputeNode).where(ComputeNode.host == "fake-host-4")).one()
        rp = s.scalars(select(ResourceProvider).where(ResourceProvider.uuid == node.uuid)).one()
        assert rp.name == "fake-host-4"
        vcpu = s.scalars(
            select(Inventory).where(
                Inventory.resource_provider_id == rp.id, Inventory.resource_class == "VCPU"
            )
        ).one()
        assert (vcpu.total, vcpu.allocation_ratio) == (8, 2.0)


def test_first_claim_for_an_existing_consumer_without_allocations(db: Any) -> None:
    from novalite.db.models.placement import Consumer

    rp = _provider(db, "rp-empty-consumer")
    c = _consumer()
    with db.session() as s:
        s.add(Consumer(uuid=c.uuid, project_id="p", user_id="u", generation=0))
    with db.session() as s:
        allocations.claim(s, c, {rp: {"VCPU": 1}})
    with db.reader() as s:
        assert allocations.allocations_of(s, c.uuid) == {rp: {"VCPU": 1}}
        assert s.execute(select(Consumer.generation).where(Consumer.uuid == c.uuid)).scalar_one() == 1
    with pytest.raises(allocations.AllocationConflict), db.session() as s:  # now it holds some
        allocations.claim(s, c, {rp: {"VCPU": 1}})


def test_claim_on_a_missing_provider_is_a_conflict_leaving_nothing(db: Any) -> None:
    c = _consumer()
    with db.session() as s:
        with pytest.raises(allocations.AllocationConflict, match="does not exist"):
            allocations.claim(s, c, {str(uuidlib.uuid4()): {"VCPU": 1}})
        assert allocations.allocations_of(s, c.uuid) == {}
