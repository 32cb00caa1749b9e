"""The scheduler's candidate window: placement returns the best few candidates first (most free
RAM first) and the scheduler widens the window only when the filters leave too few hosts.
A request that fits somewhere must still land, spread must still happen, and a refusal must
still count every host (SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid as uuidlib
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import Table, insert, update

import novalite.db.models  # noqa: F401  (registers every model)
from novalite.compute.hosts import host_name
from novalite.config import Settings
from novalite.db.base import Base, Database, utcnow
from novalite.db.models.compute import Instance
from novalite.db.models.placement import ComputeNode, Inventory, ResourceProvider, Service
from novalite.placement import allocations
from novalite.scheduler.service import NoValidHost, SchedulerService

HOSTS = 12
FLAVOR = {
    "flavorid": "1",
    "name": "m1.tiny",
    "memory_mb": 512,
    "vcpus": 1,
    "root_gb": 1,
    "ephemeral_gb": 0,
    "swap": 0,
    "extra_specs": {},
}


def _t(model: Any) -> Table:
    return cast(Table, model.__table__)


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: Any, tmp_path: Path, stack_factory: Any) -> Any:
    if request.param == "postgres":
        database = stack_factory(fake_hosts=0, postgres=True).runtime.db
    else:
        database = Database(f"sqlite:///{tmp_path / 'w.db'}")
    Base.metadata.drop_all(database.engine)
    Base.metadata.create_all(database.engine)
    now = utcnow()
    ids = range(1, HOSTS + 1)
    with database.session() as s:
        conn = s.connection()
        conn.execute(
            insert(_t(Service)),
            [
                {
                    "id": i,
                    "uuid": str(uuidlib.uuid4()),
                    "binary": "nova-compute",
                    "host": host_name(i),
                    "topic": "compute",
                    "availability_zone": "nova",
                    "disabled": False,
                    "forced_down": False,
                    "report_count": 0,
                    "version": 1,
                    "last_seen_at": now,
                    "created_at": now,
                    "updated_at": now,
                    "deleted": False,
                }
                for i in ids
            ],
        )
        uuids = {i: str(uuidlib.uuid4()) for i in ids}
        conn.execute(
            insert(_t(ComputeNode)),
            [
                {
                    "id": i,
                    "uuid": uuids[i],
                    "service_id": i,
                    "host": host_name(i),
                    "hypervisor_hostname": host_name(i),
                    "hypervisor_type": "QEMU",
                    "hypervisor_version": 1,
                    "vcpus": 8,
                    "memory_mb": 4096,
                    "local_gb": 100,
                    "cpu_info": {},
                    "supported_instances": [],
                    "stats": {},
                    "host_ip": "127.0.0.1",
                    "failed_builds": 0,
                    "created_at": now,
                    "updated_at": now,
                    "deleted": False,
                    "notes": "",
                }
                for i in ids
            ],
        )
        conn.execute(
            insert(_t(ResourceProvider)),
            [
                {
                    "id": i,
                    "uuid": uuids[i],
                    "name": host_name(i),
                    "generation": 1,
                    "root_provider_uuid": uuids[i],
                    "created_at": now,
                    "updated_at": now,
                }
                for i in ids
            ],
        )
        conn.execute(
            insert(_t(Inventory)),
            [
                {
                    "resource_provider_id": i,
                    "resource_class": rc,
                    "total": total,
                    "reserved": 0,
                    "min_unit": 1,
                    "max_unit": total,
                    "step_size": 1,
                    "allocation_ratio": 1.0,
                    "used": 0,
                }
                for i in ids
                for rc, total in (("VCPU", 8), ("MEMORY_MB", 4096), ("DISK_GB", 100))
            ],
        )
    yield database
    if request.param != "postgres":
        database.dispose()


def _scheduler(db: Any, **kw: Any) -> SchedulerService:
    return SchedulerService(db, Settings(service_down_time=10**7, scheduler_candidate_window=4, **kw))


def _instance(db: Any) -> str:
    u = str(uuidlib.uuid4())
    now = utcnow()
    with db.session() as s:
        s.connection().execute(
            insert(_t(Instance)),
            [
                {
                    "uuid": u,
                    "project_id": "p",
                    "user_id": "u",
                    "display_name": "w",
                    "hostname": "w",
                    "reservation_id": "r-1",
                    "launch_index": 0,
                    "image_ref": "",
                    "kernel_id": "",
                    "ramdisk_id": "",
                    "flavor_id": "1",
                    "flavor": FLAVOR,
                    "memory_mb": 512,
                    "vcpus": 1,
                    "root_gb": 1,
                    "ephemeral_gb": 0,
                    "config_drive": "",
                    "auto_disk_config": False,
                    "vm_state": "building",
                    "task_state": "scheduling",
                    "power_state": 0,
                    "progress": 0,
                    "locked": False,
                    "security_groups": [],
                    "system_metadata": {},
                    "network_info": [],
                    "created_at": now,
                    "updated_at": now,
                    "deleted": False,
                }
            ],
        )
    return u


def _doc(u: str, flavor: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "instance_uuid": u,
        "project_id": "p",
        "user_id": "u",
        "num_instances": 1,
        "flavor": flavor or FLAVOR,
        "image": {"properties": {}},
        "is_bfv": False,
        "availability_zone": None,
        "force_hosts": [],
        "force_nodes": [],
        "requested_destination": None,
        "scheduler_hints": {},
        "instance_group": None,
    }


def _force_down(db: Any, hosts: list[int]) -> None:
    with db.session() as s:
        s.execute(update(_t(Service)).where(_t(Service).c.id.in_(hosts)).values(forced_down=True))


def _place(scheduler: SchedulerService, db: Any, flavor: dict[str, Any] | None = None) -> list[str]:
    u = _instance(db)
    dests = scheduler.select_destinations(_doc(u, flavor), [u], project_id="p", user_id="u")
    return [d.host for d in dests[u]]


def test_only_fitting_hosts_beyond_the_first_window_still_get_the_instance(db: Any) -> None:
    # every host but the last is down: whichever order placement uses, the first window of 4
    # (or the first widening) holds none of the usable hosts
    _force_down(db, list(range(1, HOSTS)))
    scheduler = _scheduler(db)
    assert _place(scheduler, db) == [host_name(HOSTS)]
    _force_down(db, [HOSTS])
    with db.session() as s:
        s.execute(update(_t(Service)).where(_t(Service).c.id.in_([3, 9])).values(forced_down=False))
    hosts = _place(scheduler, db)
    assert hosts[0] in (host_name(3), host_name(9)) and set(hosts) == {host_name(3), host_name(9)}


def test_requests_spread_over_the_emptiest_hosts_with_full_alternates(db: Any) -> None:
    scheduler = _scheduler(db)
    placed = [_place(scheduler, db) for _ in range(HOSTS)]
    assert len({p[0] for p in placed}) == HOSTS  # most free RAM first: every host gets one
    assert all(len(p) == 3 for p in placed)  # chosen + max_attempts - 1 alternates


def test_negative_ram_multiplier_stacks_onto_one_host(db: Any) -> None:
    scheduler = _scheduler(db, weigher_multipliers="RAMWeigher=-1.0,CPUWeigher=0,DiskWeigher=0")
    first = _place(scheduler, db)[0]
    assert all(_place(scheduler, db)[0] == first for _ in range(3))


def test_no_valid_host_counts_every_host_per_filter_and_placement(db: Any) -> None:
    _force_down(db, list(range(1, HOSTS)))
    with db.session() as s:  # the one live host is full
        last = s.execute(_t(ResourceProvider).select().where(_t(ResourceProvider).c.id == HOSTS)).one()
        allocations.claim(
            s,
            allocations.ConsumerRef(str(uuidlib.uuid4()), "p", "u"),
            {last.uuid: {"VCPU": 8, "MEMORY_MB": 4096, "DISK_GB": 100}},
        )
    scheduler = _scheduler(db)
    with pytest.raises(NoValidHost) as err:
        _place(scheduler, db)
    message = str(err.value.message)
    assert f"ComputeFilter: {HOSTS - 1} hosts" in message
    assert "placement: 1 host" in message


def test_multi_instance_request_larger_than_the_window(db: Any) -> None:
    scheduler = _scheduler(db)
    uuids = [_instance(db) for _ in range(6)]
    doc = _doc(uuids[0])
    doc["num_instances"] = 6
    dests = scheduler.select_destinations(doc, uuids, project_id="p", user_id="u")
    assert len(dests) == 6
    assert len({d[0].host for d in dests.values()}) == 6


def test_host_snapshots_set_every_field(db: Any) -> None:
    import dataclasses

    from novalite.placement import candidates
    from novalite.scheduler import hostdata
    from novalite.scheduler.snapshots import HostSnapshot

    with db.reader() as s:
        found = candidates.find_candidates(s, candidates.ResourceQuery(resources={"VCPU": 1, "MEMORY_MB": 1}))
        hosts = hostdata.host_snapshots(s, found, service_down_time=60)
    assert len(hosts) == HOSTS
    assert all(set(vars(h)) == {f.name for f in dataclasses.fields(HostSnapshot)} for h in hosts)
    assert all(h.service_up and h.memory_mb_total == 4096 and h.vcpus_total == 8 for h in hosts)
