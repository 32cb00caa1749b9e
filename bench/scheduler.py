"""Scheduler scale: build 1,000 / 10,000 / 100,000 simulated hosts in a fresh database and time
scheduling plus claim for N instances through the real code path the conductor uses
(``SchedulerService.select_destinations``: placement candidates query, host snapshots, filters,
weighers, compare-and-swap claim in one transaction). Mixed flavors; a share of the instances
belong to anti-affinity server groups (those requests read every host, as in Nova).

    .venv/bin/python bench/scheduler.py                         # 1000,10000,100000 hosts, 1000 instances
    .venv/bin/python bench/scheduler.py --sizes 10000 -n 2000 --group-share 0.2
    .venv/bin/python bench/scheduler.py --database-url postgresql+psycopg://postgres@127.0.0.1/bench

Hosts are written with executemany (no ORM objects), so 100,000 hosts take seconds.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import Table, bindparam, insert, update

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import percentile  # noqa: E402

# (flavorid, name, vcpus, memory_mb, root_gb)
FLAVORS = [
    ("1", "m1.tiny", 1, 512, 1),
    ("2", "m1.small", 1, 2048, 20),
    ("3", "m1.medium", 2, 4096, 40),
    ("4", "m1.large", 4, 8192, 80),
]
PROJECT, USER = "bench-project", "bench-user"
GROUP_SIZE = 10  # members per anti-affinity group


def _table(model: Any) -> Table:
    return model.__table__  # type: ignore[no-any-return]


def fresh_database(url: str | None) -> Any:
    """A Database with every model's table created (a temp SQLite file unless ``url``)."""
    import novalite.db.models  # noqa: F401  (registers every model)
    from novalite.db.base import Base, Database

    if url is None:
        url = f"sqlite:///{Path(tempfile.mkdtemp(prefix='novalite-sched-')) / 'bench.db'}"
    db = Database(url)
    Base.metadata.drop_all(db.engine)
    Base.metadata.create_all(db.engine)
    return db


def insert_hosts(db: Any, count: int, settings: Any) -> None:
    """``count`` hosts: Service + ComputeNode + ResourceProvider + 3 inventories each, executemany."""
    from novalite.compute.hosts import CPU_INFO, SUPPORTED_INSTANCES, host_name
    from novalite.db.base import utcnow
    from novalite.db.models.placement import ComputeNode, Inventory, ResourceProvider, Service

    now = utcnow()
    chunk = 20000
    with db.session() as s:
        conn = s.connection()
        for start in range(1, count + 1, chunk):
            ids = range(start, min(count, start + chunk - 1) + 1)
            uuids = {i: str(uuid.uuid4()) for i in ids}
            conn.execute(
                insert(_table(Service)),
                [
                    {
                        "id": i,
                        "uuid": str(uuid.uuid4()),
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
            conn.execute(
                insert(_table(ComputeNode)),
                [
                    {
                        "id": i,
                        "uuid": uuids[i],
                        "service_id": i,
                        "host": host_name(i),
                        "hypervisor_hostname": host_name(i),
                        "hypervisor_type": "QEMU",
                        "hypervisor_version": 8002000,
                        "vcpus": settings.fake_host_vcpus,
                        "memory_mb": settings.fake_host_ram_mb,
                        "local_gb": settings.fake_host_disk_gb,
                        "cpu_info": CPU_INFO,
                        "supported_instances": SUPPORTED_INSTANCES,
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
                insert(_table(ResourceProvider)),
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
            spec = [
                ("VCPU", settings.fake_host_vcpus, settings.cpu_allocation_ratio),
                ("MEMORY_MB", settings.fake_host_ram_mb, settings.ram_allocation_ratio),
                ("DISK_GB", settings.fake_host_disk_gb, settings.disk_allocation_ratio),
            ]
            conn.execute(
                insert(_table(Inventory)),
                [
                    {
                        "resource_provider_id": i,
                        "resource_class": rc,
                        "total": total,
                        "reserved": 0,
                        "min_unit": 1,
                        "max_unit": total,
                        "step_size": 1,
                        "allocation_ratio": ratio,
                        "used": 0,
                    }
                    for i in ids
                    for rc, total, ratio in spec
                ],
            )
    if db.is_sqlite:
        with db.engine.connect() as c:
            c.exec_driver_sql("ANALYZE")


def insert_instances(
    db: Any, n: int, group_share: float, rng: random.Random
) -> list[tuple[str, dict[str, Any]]]:
    """N building instances with their RequestSpec documents; ``group_share`` of them in anti-affinity
    groups of GROUP_SIZE members (groups and memberships written as the create pipeline does)."""
    from novalite.db.base import utcnow
    from novalite.db.models.compute import Instance
    from novalite.db.models.server_groups import InstanceGroup, InstanceGroupMember

    now = utcnow()
    grouped = int(n * group_share)
    group_ids = [str(uuid.uuid4()) for _ in range((grouped + GROUP_SIZE - 1) // GROUP_SIZE)]
    rows, members, out = [], [], []
    for i in range(n):
        fid, name, vcpus, ram, root = rng.choice(FLAVORS)
        u = str(uuid.uuid4())
        group = group_ids[i // GROUP_SIZE] if i < grouped else None
        flavor = {
            "flavorid": fid,
            "name": name,
            "memory_mb": ram,
            "vcpus": vcpus,
            "root_gb": root,
            "ephemeral_gb": 0,
            "swap": 0,
            "extra_specs": {},
        }
        rows.append(
            {
                "uuid": u,
                "project_id": PROJECT,
                "user_id": USER,
                "display_name": f"sched-{i}",
                "hostname": f"sched-{i}",
                "reservation_id": f"r-{i:08d}",
                "launch_index": 0,
                "image_ref": "",
                "kernel_id": "",
                "ramdisk_id": "",
                "flavor_id": fid,
                "flavor": flavor,
                "memory_mb": ram,
                "vcpus": vcpus,
                "root_gb": root,
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
        )
        if group:
            members.append((group, u))
        doc = {
            "instance_uuid": u,
            "project_id": PROJECT,
            "user_id": USER,
            "num_instances": 1,
            "flavor": flavor,
            "image": {"properties": {}},
            "is_bfv": False,
            "availability_zone": None,
            "force_hosts": [],
            "force_nodes": [],
            "requested_destination": None,
            "scheduler_hints": {"group": group} if group else {},
            "instance_group": group,
        }
        out.append((u, doc))
    with db.session() as s:
        conn = s.connection()
        conn.execute(insert(_table(Instance)), rows)
        if group_ids:
            conn.execute(
                insert(_table(InstanceGroup)),
                [
                    {
                        "id": k + 1,
                        "uuid": g,
                        "name": f"aa-{k}",
                        "project_id": PROJECT,
                        "user_id": USER,
                        "policy": "anti-affinity",
                        "rules": {},
                        "created_at": now,
                        "deleted": False,
                    }
                    for k, g in enumerate(group_ids)
                ],
            )
            index = {g: k + 1 for k, g in enumerate(group_ids)}
            conn.execute(
                insert(_table(InstanceGroupMember)),
                [
                    {"group_id": index[g], "instance_uuid": u, "user_id": USER, "created_at": now}
                    for g, u in members
                ],
            )
    return out


def run_size(hosts: int, args: argparse.Namespace) -> None:
    from novalite.config import Settings
    from novalite.db.models.compute import Instance
    from novalite.scheduler.service import SchedulerService

    # the hosts' heartbeats are written once, at insert: keep them "up" for the whole run
    settings = Settings(
        service_down_time=10**7,
        max_placement_results=args.max_placement_results,
        scheduler_candidate_window=args.candidate_window,
    )
    db = fresh_database(args.database_url)
    t0 = time.monotonic()
    insert_hosts(db, hosts, settings)
    built = time.monotonic() - t0
    work = insert_instances(db, args.n, args.group_share, random.Random(args.seed))
    scheduler = SchedulerService(db, settings)
    plain: list[float] = []
    grouped: list[float] = []
    errors = 0
    set_host = (
        update(_table(Instance))
        .where(_table(Instance).c.uuid == bindparam("u"))
        .values(host=bindparam("h"), node=bindparam("n"), task_state=None)
    )
    started = time.monotonic()
    timed = 0.0
    cpu = 0.0
    for u, doc in work:
        c1 = time.process_time()
        t1 = time.perf_counter()
        try:
            dests = scheduler.select_destinations(doc, [u], project_id=PROJECT, user_id=USER)
        except Exception:  # NoValidHost: counted, the benchmark goes on
            dests = {}
            errors += 1
        spent = time.perf_counter() - t1
        cpu += time.process_time() - c1
        timed += spent
        (grouped if doc["instance_group"] else plain).append(spent)
        if u in dests:  # what the compute agent does on accept: the group sees the member's host
            with db.session() as s:
                s.execute(set_host, {"u": u, "h": dests[u][0].host, "n": dests[u][0].node})
    wall = time.monotonic() - started
    everything = plain + grouped
    print(
        f"hosts: {hosts}  (inserted in {built:.1f} s)  instances: {args.n}  "
        f"max_placement_results: {settings.max_placement_results}  "
        f"candidate window: {settings.scheduler_candidate_window}  "
        f"anti-affinity members: {len(grouped)}  NoValidHost: {errors}"
    )
    print(
        f"scheduling+claim at {hosts} hosts: {timed / len(everything) * 1000:.2f} ms per instance  "
        f"{len(everything) / timed:.1f} instances/s  (p50 {percentile(everything, 50) * 1000:.2f} ms, "
        f"p95 {percentile(everything, 95) * 1000:.2f} ms; wall {wall:.1f} s; "
        f"CPU {cpu / len(everything) * 1000:.2f} ms per instance)"
    )
    if plain and grouped:
        print(
            f"  plain requests: {sum(plain) / len(plain) * 1000:.2f} ms per instance; "
            f"anti-affinity members: {sum(grouped) / len(grouped) * 1000:.2f} ms per instance"
        )
    db.dispose()


def main() -> None:
    from novalite.config import Settings

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="1000,10000,100000", help="comma-separated host counts")
    p.add_argument("-n", type=int, default=1000, help="instances to schedule per size")
    p.add_argument(
        "--group-share", type=float, default=0.1, help="share of instances in anti-affinity groups"
    )
    p.add_argument("--database-url", default=None, help="default: a temp SQLite file per size")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--max-placement-results",
        type=int,
        default=Settings.max_placement_results,
        help="candidates placement returns per plain request (Settings.max_placement_results)",
    )
    p.add_argument(
        "--candidate-window",
        type=int,
        default=Settings.scheduler_candidate_window,
        help="candidates read first (Settings.scheduler_candidate_window)",
    )
    args = p.parse_args()
    for size in (int(x) for x in args.sizes.split(",") if x.strip()):
        run_size(size, args)


if __name__ == "__main__":
    main()
