"""CPU cost of one server in each part of the create pipeline, in one thread, with no HTTP,
no messaging and no other load: what a change to the pipeline's code costs or saves, without
the noise of a closed-loop run on a shared 2-core machine.

    .venv/bin/python bench/pipeline.py                     # 500 servers, 100 hosts, batches of 16
    .venv/bin/python bench/pipeline.py -n 1000 --hosts 1000

Parts, as ``novalite serve`` runs them (each over all N servers before the next part starts):

* api: request schema, request parsing, ``create_server``'s parse, check and store steps
  (the hand-off to the conductor is left out);
* schedule: ``ConductorManager.schedule_batch`` over batches of ``--batch`` requests (RequestSpec
  read, filters and weighers, claims); the build casts are collected instead of sent;
* build: ``ComputeAgent.build_and_run_instance`` for each, with the fake driver (no delay).

Every server must end ACTIVE, or the script fails. The figures are CPU microseconds per server
(``time.thread_time``). For counts that do not depend on the machine's speed at all, run it
under ``valgrind --tool=callgrind`` twice, with ``-n N`` and ``-n 0``: the difference in
instructions, divided by N, is the cost per server (bench/README.md has the figures).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ADMIN_PW  # noqa: E402


class _Recorder:
    """Stands in for the compute RPC client: keeps the conductor's build casts."""

    def __init__(self) -> None:
        self.builds: list[dict[str, Any]] = []
        self.transport = self  # the conductor publishes a batch's casts inside transport.batch()

    def batch(self) -> contextlib.nullcontext[None]:
        return contextlib.nullcontext()

    def build_and_run_instance(self, ctx: Any, **kw: Any) -> None:
        self.builds.append({"context": ctx, **kw})


def run(args: argparse.Namespace) -> None:
    from novalite.api.common import validate
    from novalite.api.microversion import V
    from novalite.app import build_runtime
    from novalite.bootstrap import bootstrap
    from novalite.compute import hosts as fake_hosts
    from novalite.compute.manager import ComputeAgent, node_uuids
    from novalite.compute.rpcapi import BuildAndRunInstance
    from novalite.compute_api.schemas import servers as schemas
    from novalite.conductor.manager import ConductorManager
    from novalite.conductor.rpcapi import ScheduleAndBuildInstances
    from novalite.config import Settings
    from novalite.context import RequestContext
    from novalite.db.base import upgrade
    from novalite.db.models.catalog import Quota
    from novalite.db.models.compute import Instance
    from novalite.messaging.messages import context_to_dict
    from novalite.runtime import settle_heap
    from novalite.scheduler.service import SchedulerService
    from novalite.services.create_server import pipeline
    from novalite.services.create_server.request import CreateServerRequest
    from novalite.virt.fake import FakeDriver

    logging.disable(logging.WARNING)
    settings = Settings(
        data_dir=Path(tempfile.mkdtemp(prefix="novalite-pipeline-")),
        admin_password=ADMIN_PW,
        demo_password=ADMIN_PW,
        write_clouds_yaml=False,
        fake_hosts=args.hosts,
    )
    upgrade(settings.effective_database_url)
    runtime = build_runtime(settings)
    bootstrap(runtime)
    db = runtime.db
    with db.session() as s:
        project, user, image = (
            s.execute(text(q)).scalar()
            for q in (
                "SELECT id FROM projects WHERE name = 'admin'",
                "SELECT id FROM users WHERE name = 'admin'",
                "SELECT id FROM images WHERE name = 'novalite-tiny'",
            )
        )
        for resource in ("instances", "cores", "ram"):
            s.add(Quota(project_id=project, user_id="", resource=resource, hard_limit=-1))
    ctx = RequestContext(
        user_id=str(user),
        project_id=str(project),
        roles=("admin", "member", "reader"),
        user_name="admin",
        project_name="admin",
        request_id="req-bench",
    )
    with db.reader() as s:
        hosts = fake_hosts.local_hosts(s)
    nodes = node_uuids(db, hosts)
    recorder = _Recorder()
    conductor = ConductorManager(
        db=db,
        scheduler=SchedulerService(db, settings),
        compute=recorder,  # type: ignore[arg-type]
        max_attempts=settings.max_attempts,
    )
    driver = FakeDriver(build_delay=0.0)
    agents = {
        h: ComputeAgent(
            host=h,
            node_uuid=nodes[h],
            db=db,
            driver=driver,
            conductor=None,  # type: ignore[arg-type]
            max_attempts=settings.max_attempts,
        )
        for h in hosts
    }
    settle_heap()
    version = V(2, 37)

    t0 = time.thread_time()
    created = []
    for i in range(args.n):
        body = {
            "server": {"name": f"bench-{i}", "flavorRef": args.flavor, "imageRef": image, "networks": "none"}
        }
        validate(schemas.create_schema(version), body, fast=True)
        req = CreateServerRequest.from_body(body, ctx, version)
        parsed = pipeline.parse(req)
        with db.reader() as s:
            checked = pipeline.check_in(s, parsed)
        stored = pipeline.store_group(db, f"quota:{ctx.project_id}", [checked])[0]
        if isinstance(stored, BaseException):
            raise stored
        created.append((checked, stored))
    t1 = time.thread_time()
    for start in range(0, len(created), args.batch):
        conductor.schedule_batch(
            [
                ScheduleAndBuildInstances(
                    context=context_to_dict(ctx),
                    instance_uuids=list(stored.instance_uuids),
                    build_args=pipeline.build_args(checked),
                )
                for checked, stored in created[start : start + args.batch]
            ]
        )
    t2 = time.thread_time()
    for b in recorder.builds:
        agents[b["host"]].build_and_run_instance(
            BuildAndRunInstance(
                context=context_to_dict(b["context"]),
                instance_uuid=b["instance_uuid"],
                host=b["host"],
                node=b["node"],
                build_args=b["build_args"],
                alternates=b["alternates"],
                attempt=b["attempt"],
                failures=b["failures"],
            )
        )
    t3 = time.thread_time()
    with db.reader() as s:
        active = s.scalar(select(func.count()).select_from(Instance).where(Instance.vm_state == "active"))
    db.dispose()
    if active != args.n:
        raise SystemExit(f"only {active} of {args.n} servers are ACTIVE")
    n = max(args.n, 1)
    print(f"servers: {args.n}  hosts: {args.hosts}  batch: {args.batch}  all ACTIVE")
    print(
        f"CPU us per server: api {(t1 - t0) * 1e6 / n:.0f}  schedule {(t2 - t1) * 1e6 / n:.0f}  "
        f"build {(t3 - t2) * 1e6 / n:.0f}  total {(t3 - t0) * 1e6 / n:.0f}"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", type=int, default=500, help="servers to create")
    p.add_argument("--hosts", type=int, default=100, help="simulated hypervisors")
    p.add_argument("--batch", type=int, default=16, help="requests the conductor schedules together")
    p.add_argument("--flavor", default="1")
    run(p.parse_args())


if __name__ == "__main__":
    main()
