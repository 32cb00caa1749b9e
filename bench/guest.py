"""Real guests: boot N guests of the default image (``novalite-guest``) on a ``novalite serve --driver
qemu`` this script starts in a temporary data directory, at most C booting at once, and print

* POST->ACTIVE and POST->guest-ready p50/p95 (ready = the guest's ``novalite-guest ready <uuid>``
  line in its ``console.log``), and how long after the first POST all N were ready;
* per guest, from its QEMU process's /proc: CPU seconds used until it was ready, and RSS (at
  ready and the peak sampled every 0.5 s while the run lasts);
* delete: DELETE of every server until the API lists none and every QEMU process has exited.

    .venv/bin/python bench/guest.py                  # 10 guests, all 10 at once
    .venv/bin/python bench/guest.py -n 1             # one guest: the single-boot latency
    .venv/bin/python bench/guest.py -n 20 -c 4 --ram 256 --accelerator tcg

Everything it made goes away at the end (servers, QEMU processes, the data directory), also on
failure or Ctrl-C. Needs QEMU (scripts/install-qemu.sh). Targets (issue 17, 2-core TCG machines):
one guest POST->ready p50 <= 4 s; 10 at once all ready <= 30 s; <= 200 MB RSS per 128 MB guest.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ADMIN_PW, BenchError, Server, authenticate, percentile, start_server  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
FLAVOR = "bench.guest"


@dataclass
class Guest:
    index: int
    posted: float = 0.0  # monotonic time the POST was sent
    uuid: str = ""
    active: float | None = None  # POST -> ACTIVE (s)
    ready: float | None = None  # POST -> ready line (s)
    ready_at: float = 0.0  # monotonic time the ready line was seen
    cpu_s: float | None = None  # QEMU's CPU seconds until ready
    rss_mb: float | None = None  # QEMU's RSS at ready
    peak_rss_mb: float = 0.0


@dataclass
class Run:
    args: argparse.Namespace
    server: Server
    client: httpx.AsyncClient
    instances: Path
    guests: list[Guest] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)


def _qemu_pid(instances: Path, uuid: str) -> int | None:
    try:
        pid = int((instances / uuid / "qemu.pid").read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return pid if f"guest={uuid}".encode() in cmdline else None


def _cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


async def _boot(run: Run, g: Guest, slots: asyncio.Semaphore) -> None:
    """POST one server (when a slot is free), wait for ACTIVE, then for its ready line."""
    args = run.args
    async with slots:
        body = {
            "server": {
                "name": f"bench-guest-{g.index}",
                "flavorRef": args.flavor_id,
                "imageRef": args.image_id,
                "networks": "none",
                "config_drive": True,  # the guest learns its uuid from it (no metadata service here)
            }
        }
        g.posted = time.monotonic()
        r = await run.client.post("/servers", json=body)
        if r.status_code != 202:
            raise BenchError(f"POST /servers answered {r.status_code}: {r.text[:300]}")
        g.uuid = r.json()["server"]["id"]
        deadline = g.posted + args.timeout
        while g.active is None:
            r = await run.client.get(f"/servers/{g.uuid}")
            status = r.json()["server"]["status"] if r.status_code == 200 else "?"
            if status == "ACTIVE":
                g.active = time.monotonic() - g.posted
            elif status == "ERROR":
                fault = r.json()["server"].get("fault", {}).get("message", "")
                raise BenchError(f"server {g.uuid} went to ERROR: {fault}")
            elif time.monotonic() > deadline:
                raise BenchError(f"server {g.uuid} not ACTIVE within {args.timeout:.0f} s ({status})")
            else:
                await asyncio.sleep(0.1)
        console = run.instances / g.uuid / "console.log"
        line = f"novalite-guest ready {g.uuid}".encode()
        while True:
            try:
                if line in console.read_bytes():
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise BenchError(f"guest {g.uuid} printed no ready line within {args.timeout:.0f} s")
            await asyncio.sleep(0.05)
        g.ready_at = time.monotonic()
        g.ready = g.ready_at - g.posted
        pid = _qemu_pid(run.instances, g.uuid)
        if pid is not None:
            g.cpu_s, g.rss_mb = _cpu_seconds(pid), _rss_mb(pid)
            g.peak_rss_mb = max(g.peak_rss_mb, g.rss_mb or 0.0)


async def _sample_rss(run: Run) -> None:
    while not run.done.is_set():
        for g in run.guests:
            pid = _qemu_pid(run.instances, g.uuid) if g.uuid else None
            rss = _rss_mb(pid) if pid is not None else None
            if rss is not None:
                g.peak_rss_mb = max(g.peak_rss_mb, rss)
        try:
            await asyncio.wait_for(run.done.wait(), 0.5)
        except TimeoutError:
            pass


async def _delete_all(run: Run) -> tuple[float, list[float]]:
    """DELETE every server of the run; (seconds until none is listed and no QEMU is left, and
    each server's DELETE -> gone from the API)."""
    started = time.monotonic()
    ids = [g.uuid for g in run.guests if g.uuid]
    sent: dict[str, float] = {}
    for uuid in ids:
        sent[uuid] = time.monotonic()
        await run.client.delete(f"/servers/{uuid}")
    gone: dict[str, float] = {}
    deadline = started + run.args.timeout
    while True:
        listed = {s["id"] for s in (await run.client.get("/servers")).json()["servers"]}
        now = time.monotonic()
        for uuid in ids:
            if uuid not in listed and uuid not in gone:
                gone[uuid] = now - sent[uuid]
        if len(gone) == len(ids) and not any(_qemu_pid(run.instances, u) for u in ids):
            return now - started, list(gone.values())
        if now > deadline:
            raise BenchError(f"servers still there {run.args.timeout:.0f} s after DELETE")
        await asyncio.sleep(0.1)


async def _bench(run: Run) -> None:
    args = run.args
    run.guests = [Guest(i) for i in range(args.n)]
    slots = asyncio.Semaphore(args.c)
    sampler = asyncio.ensure_future(_sample_rss(run))
    cpu_before = run.server.cpu_seconds()
    try:
        await asyncio.gather(*(_boot(run, g, slots) for g in run.guests))
    finally:
        run.done.set()
        await sampler
    first_post = min(g.posted for g in run.guests)
    all_ready = max(g.ready_at for g in run.guests) - first_post
    service_cpu = run.server.cpu_seconds() - cpu_before
    delete_s, per_server = await _delete_all(run)

    def stats(values: list[float]) -> str:
        return f"p50 {percentile(values, 50):6.2f} s   p95 {percentile(values, 95):6.2f} s"

    active = [g.active for g in run.guests if g.active is not None]
    ready = [g.ready for g in run.guests if g.ready is not None]
    cpu = [g.cpu_s for g in run.guests if g.cpu_s is not None]
    rss = [g.rss_mb for g in run.guests if g.rss_mb is not None]
    peak = [g.peak_rss_mb for g in run.guests if g.peak_rss_mb]
    print(
        f"guests: {args.n} of novalite-guest, at most {min(args.c, args.n)} booting at once, "
        f"{args.ram} MB / 1 vCPU, accelerator {args.accelerator}"
    )
    print(f"POST -> ACTIVE:       {stats(active)}")
    print(f"POST -> guest ready:  {stats(ready)}")
    print(f"all {args.n} ready:         {all_ready:6.2f} s after the first POST")
    print(
        f"QEMU CPU to ready:    mean {sum(cpu) / len(cpu):6.2f} s   max {max(cpu):6.2f} s per guest"
        if cpu
        else "QEMU CPU to ready:    n/a"
    )
    print(
        f"QEMU RSS per guest:   mean {sum(rss) / len(rss):6.0f} MB at ready   peak {max(peak or rss):6.0f} MB"
        if rss
        else "QEMU RSS per guest:   n/a"
    )
    print(f"service CPU:          {service_cpu:6.2f} s for the {args.n} boots")
    print(f"delete:               all gone in {delete_s:6.2f} s   (per server {stats(per_server)})")


async def _setup(server: Server, args: argparse.Namespace) -> Run:
    auth = authenticate(f"{server.url}/identity", "admin", ADMIN_PW, "admin")
    client = httpx.AsyncClient(
        base_url=auth.endpoint("compute"),
        headers={"X-Auth-Token": auth.token, "OpenStack-API-Version": "compute 2.37"},
        timeout=60,
    )
    unlimited = {"instances": -1, "cores": -1, "ram": -1}
    r = await client.put(f"/os-quota-sets/{auth.project_id}", json={"quota_set": unlimited})
    r.raise_for_status()
    flavor = {"flavor": {"name": FLAVOR, "ram": args.ram, "vcpus": 1, "disk": 1}}
    r = await client.post("/flavors", json=flavor)
    r.raise_for_status()
    args.flavor_id = r.json()["flavor"]["id"]
    r = await client.get(
        f"{auth.endpoint('image')}/v2/images", params={"name": "novalite-guest"}
    )  # the default image, uploaded by serve --driver qemu
    images = r.json().get("images", []) if r.is_success else []
    if not images:
        raise BenchError("the service has no novalite-guest image")
    args.image_id = images[0]["id"]
    assert server.data_dir is not None
    return Run(args=args, server=server, client=client, instances=server.data_dir / "instances")


def _cleanup(server: Server) -> None:
    """Stop the service, kill any QEMU left under its data directory, remove the directory."""
    server.stop()
    data = server.data_dir
    if data is None:
        return
    for pid_file in data.glob("instances/*/qemu.pid"):
        pid = _qemu_pid(data / "instances", pid_file.parent.name)
        if pid is not None:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    shutil.rmtree(data, ignore_errors=True)
    print(f"cleaned up: {data} {'still exists' if data.exists() else 'removed'}")


async def _main_async(args: argparse.Namespace, server: Server) -> None:
    run = await _setup(server, args)
    try:
        await _bench(run)
    except BaseException:
        try:
            await asyncio.wait_for(_delete_all(run), 60)
        except (BenchError, TimeoutError, httpx.HTTPError):
            pass
        raise
    finally:
        await run.client.aclose()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", type=int, default=10, help="guests to boot (10)")
    parser.add_argument("-c", type=int, default=10, help="at most this many booting at once (10)")
    parser.add_argument("--ram", type=int, default=128, help="the flavor's memory in MB (128)")
    parser.add_argument("--accelerator", default="auto", choices=("auto", "kvm", "tcg"))
    parser.add_argument(
        "--cpu-allocation-ratio", type=float, default=16.0, help="the host's VCPU overcommit for the run (16)"
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="per guest, POST -> ready (600 s)")
    args = parser.parse_args()
    if args.n < 1 or args.c < 1:
        parser.error("-n and -c must be at least 1")
    if shutil.which("qemu-system-x86_64") is None:
        print("error: qemu-system-x86_64 is not installed (scripts/install-qemu.sh)", file=sys.stderr)
        return 1
    try:  # built (or found in its cache) first: serve would build it inside its start-up wait
        from novalite.guest.builder import GuestBuildError, build_guest_image, default_cache_dir

        build_guest_image(default_cache_dir())
    except GuestBuildError as exc:
        print(f"error: cannot build the guest image: {exc}", file=sys.stderr)
        return 1
    # 10 one-vCPU guests on a 2-core host need more than the default 4.0 (Nova's default was 16.0)
    os.environ.setdefault("NOVALITE_CPU_ALLOCATION_RATIO", str(args.cpu_allocation_ratio))
    server = start_server("--driver", "qemu", "--accelerator", args.accelerator)
    try:
        asyncio.run(_main_async(args, server))
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        _cleanup(server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
