"""Listing speed: with N servers (default 10,000) in the database, time GET /servers/detail pages of
1,000 and a filtered list. The rows are written straight into the server's database (as a long-lived
cloud would have them), then every figure is taken through the REST API.

    .venv/bin/python bench/list.py
    .venv/bin/python bench/list.py -n 2000 --rounds 3
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import percentile, project_id, start_server, token  # noqa: E402


def fill(database_url: str, n: int, project: str, user: str) -> None:
    from novalite.db.base import Database
    from novalite.db.models.compute import Instance, InstanceMetadata

    db = Database(database_url)
    flavor = {
        "flavorid": "1",
        "name": "m1.tiny",
        "memory_mb": 512,
        "vcpus": 1,
        "root_gb": 1,
        "ephemeral_gb": 0,
        "swap": 0,
        "extra_specs": {},
    }
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    batch = 2000
    for start in range(0, n, batch):
        rows, meta = [], []
        for i in range(start, min(n, start + batch)):
            u = str(uuid.uuid4())
            rows.append(
                Instance(
                    uuid=u,
                    project_id=project,
                    user_id=user,
                    display_name=f"listed-{i}",
                    hostname=f"listed-{i}",
                    reservation_id=f"r-{i:08d}"[:10],
                    image_ref="",
                    flavor_id="1",
                    flavor=flavor,
                    memory_mb=512,
                    vcpus=1,
                    root_gb=1,
                    vm_state="active",
                    power_state=1,
                    host=f"fake-host-{i % 100 + 1}",
                    node=f"fake-host-{i % 100 + 1}",
                    launched_at=now,
                    created_at=now - dt.timedelta(seconds=n - i),
                    system_metadata={},
                    security_groups=[],
                    network_info=[],
                )
            )
            meta.append(InstanceMetadata(instance_uuid=u, key="group", value=str(i % 10)))
        with db.session() as s:
            s.add_all(rows)
            s.flush()
            s.add_all(meta)
    db.dispose()


def timed_pages(client: httpx.Client, params: dict[str, str | int]) -> list[float]:
    times, marker = [], None
    while True:
        q = dict(params)
        if marker:
            q["marker"] = marker
        t0 = time.monotonic()
        r = client.get("/servers/detail", params=q)
        times.append(time.monotonic() - t0)
        r.raise_for_status()
        servers = r.json()["servers"]
        if len(servers) < int(params["limit"]):
            return times
        marker = servers[-1]["id"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", type=int, default=10000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--page", type=int, default=1000, help="servers per page (limit)")
    args = p.parse_args()
    server = start_server("--fake-hosts", "1")
    try:
        tok, compute = token(server.url)
        proj = project_id(server.url)
        assert server.data_dir is not None
        t0 = time.monotonic()
        r = httpx.get(
            server.url + "/identity/v3/auth/tokens", headers={"X-Auth-Token": tok, "X-Subject-Token": tok}
        )
        user = r.json()["token"]["user"]["id"]
        fill(f"sqlite:///{server.data_dir / 'novalite.db'}", args.n, proj, user)
        print(f"inserted {args.n} servers in {time.monotonic() - t0:.1f} s")
        headers = {"X-Auth-Token": tok, "OpenStack-API-Version": "compute 2.96"}
        with httpx.Client(base_url=compute, headers=headers, timeout=120) as client:
            pages: list[float] = []
            for _ in range(args.rounds):
                pages += timed_pages(client, {"limit": args.page})
            filtered: list[float] = []
            for _ in range(args.rounds):
                t1 = time.monotonic()
                r = client.get(
                    "/servers/detail", params={"name": "listed-12", "status": "ACTIVE", "limit": args.page}
                )
                filtered.append(time.monotonic() - t1)
                r.raise_for_status()
            matched = len(r.json()["servers"])
    finally:
        server.stop()
    print(
        f"GET /servers/detail?limit={args.page} over {args.n} servers: {len(pages)} pages, "
        f"ms per page p50 {percentile(pages, 50) * 1000:.1f}  max {max(pages) * 1000:.1f}"
    )
    print(
        f"filtered list (name regex + status, {matched} matches): ms p50 "
        f"{percentile(filtered, 50) * 1000:.1f}"
    )
    print(f"{server.memory_line()}  first answer after start: {server.first_answer_s:.2f} s")


if __name__ == "__main__":
    main()
