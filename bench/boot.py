"""Boot throughput: create N servers through the REST API with concurrency C, wait until every one
is ACTIVE or ERROR, delete them all and wait until they are gone. Prints the figures.

    .venv/bin/python bench/boot.py                      # starts novalite serve --fake-hosts 100
    .venv/bin/python bench/boot.py -n 200 -c 16 --hosts 50
    .venv/bin/python bench/boot.py --rate 200           # POSTs arrive at 200/s instead of back to back
    .venv/bin/python bench/boot.py --database-url postgresql+psycopg://postgres@127.0.0.1/bench
    .venv/bin/python bench/boot.py --distributed -n 10000 -c 64
        (api x2 workers + 2 conductors + 4 computes x 250 fake hosts, PostgreSQL + RabbitMQ;
        see bench/distributed.py)
    .venv/bin/python bench/boot.py --endpoint http://HOST/identity --user U --password P --project P
        (time any Nova-compatible cloud; --flavor/--image pick what it has)

Against an endpoint, the run first checks that N servers of the flavor fit in the project's
quota (``GET /limits``) and stops before creating anything when they do not, saying how many
would. ``--lift-quota`` (an admin's token) sets the project's instances, cores and RAM quotas to
unlimited for the run and puts the old values back afterwards. Should a POST fail midway, the
servers created so far are deleted before the script exits: a run leaves no servers behind.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    ADMIN_PW,
    BenchError,
    PlainHTTP,
    authenticate,
    default_image,
    percentile,
    start_server,
)


@dataclass
class _Run:
    """One run's connections and what it has seen so far."""

    args: argparse.Namespace
    client: httpx.AsyncClient  # polls, lists, quota (httpx)
    pool: asyncio.Queue[PlainHTTP]  # the timed requests: C lean keep-alive connections
    prefix: str  # this run's servers are named <prefix>-<i>
    stop: asyncio.Event = field(default_factory=asyncio.Event)  # set: no further POST
    latencies: list[float] = field(default_factory=list)
    created: dict[str, tuple[float, float]] = field(default_factory=dict)  # id -> (sent, answered)
    done_at: dict[str, float] = field(default_factory=dict)  # id -> first poll not listing it in BUILD
    late: list[int] = field(default_factory=list)  # paced POSTs that waited for a free connection
    unanswered: list[int] = field(default_factory=list)  # POSTs sent whose answer never came
    deleted: bool = False  # the known servers are deleted (what is left is the sweep)


async def _create(run: _Run, i: int, due: float | None) -> None:
    """POST one server (named ``<prefix>-i``) on a free connection of the pool (C connections: at
    most C in flight); ``created[id] = (sent, answered)`` (monotonic seconds). With ``due`` (paced
    arrivals) it is not sent before that time; sent more than 5 ms after it because C POSTs were
    still in flight, it counts in ``late``. Once ``stop`` is set nothing more is sent; a POST that
    fails in any way sets it (and one sent without an answer goes into ``unanswered``)."""
    args = run.args
    body = {
        "server": {
            "name": f"{run.prefix}-{i}",
            "flavorRef": args.flavor,
            "imageRef": args.image,
            "networks": "none",
        }
    }
    if due is not None and due > time.monotonic():
        try:  # a stop wakes the wait
            await asyncio.wait_for(run.stop.wait(), due - time.monotonic())
        except TimeoutError:
            pass
    if run.stop.is_set():
        return
    conn = await run.pool.get()
    try:
        if run.stop.is_set():
            return
        t0 = time.monotonic()
        if due is not None and t0 - due > 0.005:
            run.late.append(i)
        try:
            status, data = await conn.request("POST", "/servers", body)
        except BaseException as exc:
            run.stop.set()
            run.unanswered.append(i)
            if isinstance(exc, Exception):
                raise BenchError(f"POST /servers got no answer: {type(exc).__name__}: {exc}") from exc
            raise
        answered = time.monotonic()
        run.latencies.append(answered - t0)
    finally:
        run.pool.put_nowait(conn)
    if status != 202:
        run.stop.set()
        raise BenchError(f"POST /servers answered {status}: {data.decode(errors='replace')}")
    run.created[json.loads(data)["server"]["id"]] = (t0, answered)


async def _listed(
    client: httpx.AsyncClient, path: str, params: dict[str, Any], what: str
) -> list[dict[str, Any]]:
    """Every server ``GET path`` lists, following the markers in pages of 1,000."""
    out: list[dict[str, Any]] = []
    marker = None
    while True:
        page = {**params, "limit": 1000, **({"marker": marker} if marker else {})}
        servers = _answer(await client.get(path, params=page), what)["servers"]
        out.extend(servers)
        if len(servers) < 1000:
            return out
        marker = servers[-1]["id"]


async def _watch(run: _Run) -> None:
    """Runs alongside the POSTs: a server whose POST was answered before a poll was sent and that
    the poll no longer lists in BUILD left BUILD (ACTIVE or ERROR) by the time of that poll.
    Polling only the BUILD list keeps the client's own load on the server small."""
    deadline = time.monotonic() + run.args.timeout
    while len(run.done_at) < run.args.n and time.monotonic() < deadline:
        sent = time.monotonic()
        known = [i for i, (_t0, answered) in run.created.items() if answered <= sent and i not in run.done_at]
        building = {
            s["id"]
            for s in await _listed(run.client, "/servers", {"status": "BUILD"}, "polling the BUILD list")
        }
        now = time.monotonic()
        for i in known:
            if i not in building:
                run.done_at[i] = now
        await asyncio.sleep(run.args.poll)


async def _delete_all(run: _Run, ids: list[str]) -> float:
    """DELETE every server of ``ids`` (over the lean connections; a failed DELETE is tried once
    more) and wait until none is listed. Returns the seconds it took."""
    t0 = time.monotonic()

    async def one(sid: str) -> None:
        conn = await run.pool.get()
        try:
            status, data = await conn.request("DELETE", f"/servers/{sid}")
        finally:
            run.pool.put_nowait(conn)
        if status not in (204, 404):
            raise BenchError(f"DELETE /servers/{sid} answered {status}: {data.decode(errors='replace')}")

    left = list(ids)
    for attempt in (1, 2):
        outcomes = await asyncio.gather(*(one(s) for s in left), return_exceptions=True)
        failed = [(sid, o) for sid, o in zip(left, outcomes, strict=True) if isinstance(o, BaseException)]
        if not failed:
            break
        if attempt == 2:
            raise BenchError(
                f"{len(failed)} servers could not be deleted ({failed[0][1]}): "
                + " ".join(sid for sid, _ in failed)
            )
        left = [sid for sid, _ in failed]
    wanted = set(ids)
    deadline = time.monotonic() + run.args.timeout
    while True:
        r = await run.client.get("/servers", params={"limit": 1000})
        listed = [s["id"] for s in _answer(r, "listing the servers")["servers"] if s["id"] in wanted]
        if not listed:
            return time.monotonic() - t0
        if time.monotonic() > deadline:
            raise BenchError(
                f"{len(listed)} deleted servers were still listed after {run.args.timeout:g} s: "
                + " ".join(listed)
            )
        await asyncio.sleep(0.05)


async def _sweep(run: _Run) -> int:
    """Delete the servers named ``<prefix>-*`` that are still listed: ones whose POST was sent but
    whose id never arrived (the run stopped or the connection broke first). Returns how many."""
    r = await run.client.get("/servers", params={"name": f"^{run.prefix}-", "limit": 1000})
    ids = [s["id"] for s in _answer(r, "listing the run's servers")["servers"]]
    if ids:
        await _delete_all(run, ids)
    return len(ids)


def _answer(r: httpx.Response, what: str) -> Any:
    """The JSON body of a 2xx answer; anything else is a BenchError naming ``what`` was asked."""
    if not r.is_success:
        raise BenchError(
            f"{what}: {r.request.method} {r.request.url} answered {r.status_code}: {r.text[:300]}"
        )
    return r.json()


_QUOTAS = ("instances", "cores", "ram")


async def _room(client: httpx.AsyncClient, flavor: dict[str, Any]) -> tuple[float, str]:
    """How many servers of ``flavor`` the project's quota still takes (``inf``: no limit), and
    the limits behind that figure."""
    absolute = _answer(await client.get("/limits"), "reading the project's limits")["limits"]["absolute"]
    room, said = float("inf"), []
    for what, limit_key, used_key, each in (
        ("instances", "maxTotalInstances", "totalInstancesUsed", 1),
        ("cores", "maxTotalCores", "totalCoresUsed", flavor["vcpus"]),
        ("RAM MB", "maxTotalRAMSize", "totalRAMUsed", flavor["ram"]),
    ):
        limit, used = absolute.get(limit_key, -1), absolute.get(used_key, 0)
        if limit is None or limit < 0 or each <= 0:
            continue
        room = min(room, max(0, limit - used) // each)
        said.append(f"{what}: {used} of {limit} used")
    return room, ", ".join(said)


async def _flavor(client: httpx.AsyncClient, flavor: str) -> dict[str, Any]:
    r = await client.get(f"/flavors/{flavor}")
    if r.status_code == 404:
        raise BenchError(f"flavor {flavor!r} not found; pass --flavor with an id the cloud has")
    return dict(_answer(r, "reading the flavor")["flavor"])


async def _make_room(
    client: httpx.AsyncClient,
    args: argparse.Namespace,
    project: str,
    own_server: bool,
    restore: dict[str, Any],
) -> None:
    """Check (or make) room for N servers in the project's quota. With ``--lift-quota``, the values
    to put back after the run go into ``restore`` before the quota is changed (so that a change
    whose answer never came is undone too); ``restore`` stays empty when nothing changed."""
    unlimited = {"quota_set": dict.fromkeys(_QUOTAS, -1)}
    if own_server:  # a throwaway cloud: lift the quota, nothing to put back
        _answer(await client.put(f"/os-quota-sets/{project}", json=unlimited), "lifting the quota")
        return
    room, limits = await _room(client, await _flavor(client, args.flavor))
    if room >= args.n:
        return
    if not args.lift_quota:
        raise BenchError(
            f"the project's quota has room for {int(room)} more servers of flavor {args.flavor!r} "
            f"({limits}), not {args.n}: pass -n {int(room)} or less, or --lift-quota (admin) to lift "
            "it for the run"
        )
    quota = _answer(
        await client.get(f"/os-quota-sets/{project}"), "--lift-quota: reading the project's quota"
    )
    restore.update({k: quota["quota_set"][k] for k in _QUOTAS})
    r = await client.put(f"/os-quota-sets/{project}", json=unlimited)
    if r.status_code != 200:
        restore.clear()  # refused: nothing to put back
        raise BenchError(
            f"--lift-quota: changing the project's quota answered {r.status_code} "
            f"(an admin's token is needed): {r.text[:300]}"
        )


async def _boot_phase(run: _Run) -> tuple[float, float]:
    """Every POST, and the watch until each server left BUILD. Returns (start, POSTs done) in
    monotonic seconds. When a POST or the watch fails, no further POST is sent, the ones in flight
    are answered, and the first error goes up (``run`` deletes what was created)."""
    rate = run.args.rate
    t0 = time.monotonic()
    watcher = asyncio.create_task(_watch(run))
    watcher.add_done_callback(
        lambda t: run.stop.set() if not t.cancelled() and t.exception() is not None else None
    )
    try:
        outcomes = await asyncio.gather(
            *(_create(run, i, t0 + i / rate if rate else None) for i in range(run.args.n)),
            return_exceptions=True,
        )
        post_done = time.monotonic()
        failed = [o for o in outcomes if isinstance(o, BaseException)]
        if failed:
            raise failed[0]
        await watcher
    finally:
        watcher.cancel()  # nothing when it is done; either way its outcome is collected here
        await asyncio.gather(watcher, return_exceptions=True)
    return t0, post_done


SWEEP_GRACE = 10.0  # seconds a POST sent without an answer may still take to appear in the list


async def _clean_up(run: _Run) -> str:
    """Delete every server the run made: the known ids, then any other listed under the run's
    name; with POSTs that never got an answer, the list is swept again for ``SWEEP_GRACE``
    seconds, since the cloud may still be creating those. Returns what happened, in words."""
    try:
        if not run.deleted and run.created:
            await _delete_all(run, list(run.created))
        swept = await _sweep(run)
        if run.unanswered:
            until = time.monotonic() + SWEEP_GRACE
            while time.monotonic() < until:
                await asyncio.sleep(1.0)
                swept += await _sweep(run)
    except BaseException as exc:
        hint = (
            f"deleting the run's servers did not finish ({type(exc).__name__}: {exc}); "
            f"they are named {run.prefix}-*: openstack server list --name '^{run.prefix}-'"
        )
        if not isinstance(exc, Exception):
            print(f"boot.py: {hint}", file=sys.stderr)
            raise
        return hint
    made = len(run.created) + swept
    if not made:
        return "no server had been created"
    return f"the {made} servers created before that were deleted again"


async def _put_back(client: httpx.AsyncClient, project: str, quota: dict[str, Any]) -> None:
    try:
        r = await client.put(f"/os-quota-sets/{project}", json={"quota_set": quota})
        failure = None if r.status_code == 200 else f"answered {r.status_code}: {r.text[:300]}"
    except httpx.HTTPError as exc:
        failure = str(exc)
    if failure is not None:
        print(
            f"boot.py: putting the project's quota back to {quota} failed ({failure}); "
            f"set it by hand: openstack quota set --instances {quota['instances']} --cores {quota['cores']} "
            f"--ram {quota['ram']} {project}",
            file=sys.stderr,
        )


async def run(args: argparse.Namespace) -> None:
    server = None
    rest: tuple[float, float] | None = None  # the server's (RSS, PSS) once every server is deleted
    settled: tuple[float, float] | None = None  # the same, --settle seconds later (nothing sent meanwhile)
    if args.endpoint:
        auth = authenticate(args.endpoint, args.user, args.password, args.project, args.domain)
    elif args.distributed:
        import distributed

        server = distributed.start(
            api_workers=args.api_workers,
            conductors=args.conductors,
            computes=args.computes,
            hosts_per_compute=args.hosts_per_compute,
            database_url=args.database_url,
            transport_url=args.transport_url,
        )
        auth = authenticate(f"{server.url}/identity", "admin", ADMIN_PW, "admin")
    else:
        server = start_server("--fake-hosts", str(args.hosts), database_url=args.database_url)
        auth = authenticate(f"{server.url}/identity", "admin", ADMIN_PW, "admin")
    compute = auth.endpoint("compute")
    headers = {"X-Auth-Token": auth.token, "OpenStack-API-Version": "compute 2.37"}
    limits = httpx.Limits(max_connections=args.concurrency + 4)
    restore: dict[str, Any] = {}
    try:
        if not args.image:
            args.image = default_image(auth.endpoint("image"), auth.token)
        async with httpx.AsyncClient(base_url=compute, headers=headers, timeout=120, limits=limits) as client:
            try:
                await _make_room(client, args, auth.project_id, server is not None, restore)
            except BaseException:
                if restore:
                    await _put_back(client, auth.project_id, restore)
                raise
            pool: asyncio.Queue[PlainHTTP] = asyncio.Queue()
            for _ in range(args.concurrency):
                pool.put_nowait(PlainHTTP(compute, headers))
            state = _Run(args, client, pool, prefix=f"bench-{secrets.token_hex(3)}")
            cpu0 = server.cpu_seconds() if server is not None else 0.0
            try:
                t0, posts_end = await _boot_phase(state)
                post_done = posts_end - t0
                final = {
                    s["id"]: s["status"]
                    for s in await _listed(client, "/servers/detail", {}, "listing the servers")
                    if s["id"] in state.created
                }
                total = max(state.done_at.values()) - t0 if state.done_at else float("nan")
                to_active = [state.done_at[i] - state.created[i][0] for i in state.done_at]
                errors = sum(1 for st in final.values() if st == "ERROR")
                stuck = len(state.created) - len(state.done_at)
                boot_cpu = (server.cpu_seconds() - cpu0) if server is not None else 0.0
                delete_s = await _delete_all(state, list(state.created))
                state.deleted = True
                await _sweep(state)
                # what a boot-and-delete churn leaves behind, before the server stops
                rest = server.memory_now() if server is not None else None
                if server is not None and args.settle > 0:
                    await asyncio.sleep(args.settle)
                    settled = server.memory_now()
            except (
                BaseException
            ) as exc:  # a failure (or Ctrl-C) after the first POST: delete what the run made
                note = await _clean_up(state)
                if isinstance(exc, BenchError):
                    raise BenchError(f"{exc} ({note})") from exc
                why = (
                    "interrupted"
                    if isinstance(exc, asyncio.CancelledError)
                    else f"{type(exc).__name__}: {exc}"
                )
                print(f"boot.py: {why}; {note}", file=sys.stderr)
                raise
            finally:
                while not pool.empty():
                    pool.get_nowait().close()
                if restore:
                    await _put_back(client, auth.project_id, restore)
    finally:
        if server is not None:
            server.stop()
    pacing = (
        f"arrivals paced at {args.rate:g}/s"
        if args.rate
        else "closed loop (a new POST as soon as one is answered)"
    )
    where = (
        f"endpoint: {args.endpoint}"
        if args.endpoint
        else f"hosts: {args.hosts}  db: {args.database_url or 'sqlite'}"
    )
    if args.distributed:
        where = getattr(server, "topology", "distributed")
    print(f"servers: {args.n}  concurrency: {args.concurrency}  {where}  {pacing}")
    print(
        f"boot throughput: {args.n / total:.1f} servers/s to ACTIVE|ERROR ({total:.2f} s; all POSTs done in "
        f"{post_done:.2f} s)"
    )
    print(
        f"POST /servers latency ms: p50 {percentile(state.latencies, 50) * 1000:.1f}  "
        f"p95 {percentile(state.latencies, 95) * 1000:.1f}  p99 {percentile(state.latencies, 99) * 1000:.1f}"
    )
    if args.rate:
        print(f"POSTs sent late (C already in flight at their arrival time): {len(state.late)}")
    print(
        f"time to ACTIVE ms: p50 {percentile(to_active, 50) * 1000:.1f}  p95 "
        f"{percentile(to_active, 95) * 1000:.1f}"
    )
    print(f"delete throughput: {args.n / delete_s:.1f} servers/s ({delete_s:.2f} s)")
    print(f"ERROR: {errors}  still building at timeout: {stuck}")
    if server is not None:
        print(
            f"server CPU while booting: {boot_cpu * 1000 / args.n:.1f} ms per server (user+sys, incl. the "
            "polls)"
        )
        print(f"{server.memory_line()}  first answer after start: {server.first_answer_s:.2f} s")
        if rest is not None:
            print(f"server memory after the deletes: RSS {rest[0]:.0f} MB, PSS {rest[1]:.0f} MB")
        if settled is not None:
            print(
                f"server memory {args.settle:g} s after the deletes: RSS {settled[0]:.0f} MB, "
                f"PSS {settled[1]:.0f} MB"
            )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", type=int, default=1000, help="servers to create")
    p.add_argument("-c", "--concurrency", type=int, default=16)
    p.add_argument("--hosts", type=int, default=100, help="simulated hypervisors")
    p.add_argument("--database-url", default=None)
    p.add_argument("--flavor", default="1")
    p.add_argument("--image", default=None, help="image id (default: the server's novalite-tiny)")
    p.add_argument("--timeout", type=float, default=600)
    p.add_argument(
        "--rate",
        type=float,
        default=None,
        help="open loop: send the POSTs at this many per second (still at most C in flight) "
        "instead of a new one as soon as one is answered",
    )
    p.add_argument("--poll", type=float, default=0.05, help="seconds between polls of the BUILD list")
    p.add_argument(
        "--settle",
        type=float,
        default=5.0,
        help="after the deletes, measure the server's memory again this many seconds later, with no "
        "request meanwhile (0: only right after the deletes)",
    )
    p.add_argument("--endpoint", default=None, help="identity URL of an already running cloud")
    p.add_argument("--user", default="admin")
    p.add_argument("--password", default=ADMIN_PW)
    p.add_argument("--project", default="admin")
    p.add_argument("--domain", default="Default", help="domain (name) of the user and the project")
    p.add_argument(
        "--lift-quota",
        action="store_true",
        help="with --endpoint: lift the project's instances, cores and RAM quotas for the run when "
        "N servers do not fit (an admin's token), and put them back afterwards",
    )
    dist = p.add_argument_group(
        "--distributed",
        "run api, conductors and computes as separate processes over PostgreSQL and RabbitMQ "
        "(a PostgreSQL cluster of the run's own and a fresh vhost on 127.0.0.1:5672 unless "
        "--database-url / --transport-url), e.g. bench/boot.py --distributed -n 10000 -c 64",
    )
    dist.add_argument("--distributed", action="store_true", help="the many-machines topology")
    dist.add_argument("--api-workers", type=int, default=2)
    dist.add_argument("--conductors", type=int, default=2)
    dist.add_argument("--computes", type=int, default=4, help="novalite compute processes")
    dist.add_argument("--hosts-per-compute", type=int, default=250, help="fake hosts of each")
    dist.add_argument("--transport-url", default=None)
    args = p.parse_args()
    if args.distributed and args.endpoint:
        p.error("--distributed starts its own cloud: it does not go with --endpoint")
    try:
        asyncio.run(run(args))
    except BenchError as exc:
        raise SystemExit(f"boot.py: {exc}") from None
    except (httpx.HTTPError, OSError, EOFError, ValueError) as exc:
        raise SystemExit(f"boot.py: {type(exc).__name__}: {exc}") from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
