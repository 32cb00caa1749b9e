"""Boot throughput: create N servers through the REST API with concurrency C, wait until every one
is ACTIVE or ERROR, delete them all and wait until they are gone. Prints the figures.

    .venv/bin/python bench/boot.py                      # starts novalite serve --fake-hosts 100
    .venv/bin/python bench/boot.py -n 200 -c 16 --hosts 50
    .venv/bin/python bench/boot.py --rate 200           # POSTs arrive at 200/s instead of back to back
    .venv/bin/python bench/boot.py --database-url postgresql+psycopg://postgres@127.0.0.1/bench
    .venv/bin/python bench/boot.py --endpoint http://HOST/identity --user U --password P --project P
        (time any Nova-compatible cloud; --flavor/--image pick what it has)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ADMIN_PW, PlainHTTP, default_image, percentile, project_id, start_server, token  # noqa: E402


async def _create(pool: asyncio.Queue[PlainHTTP], i: int, flavor: str, image: str,
                  latencies: list[float], created: dict[str, tuple[float, float]],
                  due: float | None = None, late: list[int] | None = None) -> None:
    """POST one server on a free connection of ``pool`` (C connections: at most C in flight);
    ``created[id] = (sent, answered)`` (monotonic seconds). With ``due`` (paced arrivals) it is not
    sent before that time; sent more than 5 ms after it because C POSTs were still in flight, it
    counts in ``late``."""
    body = {"server": {"name": f"bench-{i}", "flavorRef": flavor, "imageRef": image, "networks": "none"}}
    if due is not None:
        await asyncio.sleep(max(0.0, due - time.monotonic()))
    conn = await pool.get()
    try:
        t0 = time.monotonic()
        if due is not None and late is not None and t0 - due > 0.005:
            late.append(i)
        status, data = await conn.request("POST", "/servers", body)
        answered = time.monotonic()
        latencies.append(answered - t0)
    finally:
        pool.put_nowait(conn)
    if status != 202:
        raise SystemExit(f"POST /servers answered {status}: {data.decode(errors='replace')}")
    created[json.loads(data)["server"]["id"]] = (t0, answered)


async def _building(client: httpx.AsyncClient) -> set[str]:
    """Ids of every server still in BUILD (paged)."""
    ids: set[str] = set()
    marker = None
    while True:
        params: dict[str, Any] = {"status": "BUILD", "limit": 1000}
        if marker:
            params["marker"] = marker
        r = await client.get("/servers", params=params)
        r.raise_for_status()
        servers = r.json()["servers"]
        ids.update(s["id"] for s in servers)
        if len(servers) < 1000:
            return ids
        marker = servers[-1]["id"]


async def _watch(client: httpx.AsyncClient, expected: int, created: dict[str, tuple[float, float]],
                 done_at: dict[str, float], timeout: float, interval: float) -> None:
    """Runs alongside the POSTs: a server whose POST was answered before a poll was sent and that
    the poll no longer lists in BUILD left BUILD (ACTIVE or ERROR) by the time of that poll.
    Polling only the BUILD list keeps the client's own load on the server small."""
    deadline = time.monotonic() + timeout
    while len(done_at) < expected and time.monotonic() < deadline:
        sent = time.monotonic()
        known = [i for i, (_t0, answered) in created.items() if answered <= sent and i not in done_at]
        building = await _building(client)
        now = time.monotonic()
        for i in known:
            if i not in building:
                done_at[i] = now
        await asyncio.sleep(interval)


async def _final_states(client: httpx.AsyncClient, ids: set[str]) -> dict[str, str]:
    final: dict[str, str] = {}
    marker = None
    while True:
        params: dict[str, Any] = {"limit": 1000}
        if marker:
            params["marker"] = marker
        servers = (await client.get("/servers/detail", params=params)).json()["servers"]
        final.update({s["id"]: s["status"] for s in servers if s["id"] in ids})
        if len(servers) < 1000:
            return final
        marker = servers[-1]["id"]


async def _delete_all(client: httpx.AsyncClient, pool: asyncio.Queue[PlainHTTP], ids: list[str],
                      timeout: float) -> float:
    t0 = time.monotonic()

    async def one(sid: str) -> None:
        conn = await pool.get()
        try:
            status, data = await conn.request("DELETE", f"/servers/{sid}")
        finally:
            pool.put_nowait(conn)
        if status not in (204, 404):
            raise SystemExit(f"DELETE answered {status}: {data.decode(errors='replace')}")

    await asyncio.gather(*(one(s) for s in ids))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = await client.get("/servers", params={"limit": 1000})
        if not [s for s in r.json()["servers"] if s["id"] in set(ids)]:
            break
        await asyncio.sleep(0.05)
    return time.monotonic() - t0


async def run(args: argparse.Namespace) -> None:
    server = None
    if args.endpoint:
        identity = args.endpoint.rstrip("/").removesuffix("/identity")
        tok, compute = token(identity, args.user, args.password, args.project)
    else:
        server = start_server("--fake-hosts", str(args.hosts), database_url=args.database_url)
        tok, compute = token(server.url)
    headers = {"X-Auth-Token": tok, "OpenStack-API-Version": "compute 2.37"}
    if not args.image:
        args.image = default_image(compute, tok)
    limits = httpx.Limits(max_connections=args.concurrency + 4)
    try:
        async with httpx.AsyncClient(base_url=compute, headers=headers, timeout=120, limits=limits) as client:
            if not args.endpoint:
                # lift the admin project's quota so N servers fit
                quota = {"quota_set": {"instances": -1, "cores": -1, "ram": -1}}
                (await client.put(f"/os-quota-sets/{project_id(server.url)}", json=quota)).raise_for_status()  # type: ignore[union-attr]
            # the timed requests go through C lean keep-alive connections (common.PlainHTTP)
            pool: asyncio.Queue[PlainHTTP] = asyncio.Queue()
            for _ in range(args.concurrency):
                pool.put_nowait(PlainHTTP(compute, headers))
            latencies: list[float] = []
            created: dict[str, tuple[float, float]] = {}
            done_at: dict[str, float] = {}
            cpu0 = server.cpu_seconds() if server is not None else 0.0
            late: list[int] = []
            t0 = time.monotonic()
            watcher = asyncio.create_task(_watch(client, args.n, created, done_at, args.timeout, args.poll))
            await asyncio.gather(*(_create(pool, i, args.flavor, args.image, latencies, created,
                                           due=t0 + i / args.rate if args.rate else None, late=late)
                                   for i in range(args.n)))
            post_done = time.monotonic() - t0
            await watcher
            final = await _final_states(client, set(created))
            total = max(done_at.values()) - t0 if done_at else float("nan")
            to_active = [done_at[i] - created[i][0] for i in done_at]
            errors = sum(1 for st in final.values() if st == "ERROR")
            stuck = len(created) - len(done_at)
            boot_cpu = (server.cpu_seconds() - cpu0) if server is not None else 0.0
            delete_s = await _delete_all(client, pool, list(created), args.timeout)
            while not pool.empty():
                pool.get_nowait().close()
    finally:
        if server is not None:
            server.stop()
    pacing = f"arrivals paced at {args.rate:g}/s" if args.rate else "closed loop (a new POST as soon as one is answered)"
    print(f"servers: {args.n}  concurrency: {args.concurrency}  hosts: {args.hosts if not args.endpoint else '-'}  "
          f"db: {args.database_url or 'sqlite'}  {pacing}")
    print(f"boot throughput: {args.n / total:.1f} servers/s to ACTIVE|ERROR ({total:.2f} s; all POSTs done in {post_done:.2f} s)")
    print(f"POST /servers latency ms: p50 {percentile(latencies, 50) * 1000:.1f}  p95 {percentile(latencies, 95) * 1000:.1f}  "
          f"p99 {percentile(latencies, 99) * 1000:.1f}")
    if args.rate:
        print(f"POSTs sent late (C already in flight at their arrival time): {len(late)}")
    print(f"time to ACTIVE ms: p50 {percentile(to_active, 50) * 1000:.1f}  p95 {percentile(to_active, 95) * 1000:.1f}")
    print(f"delete throughput: {args.n / delete_s:.1f} servers/s ({delete_s:.2f} s)")
    print(f"ERROR: {errors}  still building at timeout: {stuck}")
    if server is not None:
        print(f"server CPU while booting: {boot_cpu * 1000 / args.n:.1f} ms per server (user+sys, incl. the polls)")
        print(f"{server.memory_line()}  first answer after start: {server.first_answer_s:.2f} s")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", type=int, default=1000, help="servers to create")
    p.add_argument("-c", "--concurrency", type=int, default=16)
    p.add_argument("--hosts", type=int, default=100, help="simulated hypervisors")
    p.add_argument("--database-url", default=None)
    p.add_argument("--flavor", default="1")
    p.add_argument("--image", default=None, help="image id (default: the server's novalite-tiny)")
    p.add_argument("--timeout", type=float, default=600)
    p.add_argument("--rate", type=float, default=None,
                   help="open loop: send the POSTs at this many per second (still at most C in flight) "
                        "instead of a new one as soon as one is answered")
    p.add_argument("--poll", type=float, default=0.05, help="seconds between polls of the BUILD list")
    p.add_argument("--endpoint", default=None, help="identity URL of an already running cloud")
    p.add_argument("--user", default="admin")
    p.add_argument("--password", default=ADMIN_PW)
    p.add_argument("--project", default="admin")
    args = p.parse_args()
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
