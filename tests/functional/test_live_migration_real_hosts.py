"""The agents' live-migration flow between two hosts whose driver moves running guests
(``compute.live_migration``), through HTTP. The two hosts here are simulated hosts whose agents
are given a stand-in driver with the QEMU driver's live-migration methods (it records the calls
and keeps the guest in the fake driver): the real QEMU steps are shown by
tests/guest/test_qemu_live_migration.py. What a user sees is real: the server's host, status,
migration record, placement usage and fault.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Mapping
from typing import Any

from novalite.compute.manager import ComputeAgent
from novalite.virt.driver import DriverError, GuestSpec, LiveMigrationCancelled
from novalite.virt.fake import FakeDriver
from tests.conftest import Api
from tests.functional.test_move_operations import (
    SERVERS,
    TINY,
    action,
    boot,
    host_of,
    migrations,
    server,
    two_hosts,
    usages,
)

__all__ = ["two_hosts"]
LIVE = {"os-migrateLive": {"block_migration": "auto", "host": None}}


class LiveMigratingHost:
    """One host's driver: the fake driver for everything else, the live-migration steps recorded."""

    def __init__(self, host: str, fake: FakeDriver, log: list[tuple[str, str]], fail: set[str]) -> None:
        self.host, self.fake, self.log, self.fail = host, fake, log, fail
        self.asked: list[str] = []
        self.released = threading.Event()  # with "hold" in fail: the copy runs until asked

    def __getattr__(self, name: str) -> Any:
        return getattr(self.fake, name)

    def _step(self, name: str, guest: GuestSpec) -> None:
        assert guest.host == self.host, (name, guest.host, self.host)
        self.log.append((name, self.host))
        if name in self.fail:
            raise DriverError(f"{name} failed on {self.host}")

    def live_migration_source(self, guest: GuestSpec) -> dict[str, Any]:
        self._step("source", guest)
        return {"argv": ["qemu"], "instance_dir": f"/{self.host}/{guest.uuid}"}

    def prepare_live_migration(self, guest: GuestSpec, source: Mapping[str, Any]) -> dict[str, Any]:
        self._step("prepare", guest)
        assert source["instance_dir"].endswith(guest.uuid)
        return {"instance_uuid": guest.uuid, "nbd_socket": "n", "migrate_uri": "unix:m", "drives": []}

    def live_migrate(self, guest: GuestSpec, target: Mapping[str, Any]) -> None:
        assert target["instance_uuid"] == guest.uuid
        self._step("migrate", guest)
        if "hold" in self.fail:
            assert self.released.wait(120), "no force_complete/abort came"
            if "abort" in self.asked:
                raise LiveMigrationCancelled("aborted")

    def control_live_migration(self, guest: GuestSpec, what: str) -> bool:
        self.log.append((what, self.host))
        self.asked.append(what)
        self.released.set()
        return True

    def finish_live_migration(self, guest: GuestSpec) -> None:
        self._step("finish", guest)

    def abort_live_migration(self, guest: GuestSpec) -> None:
        self._step("abort", guest)

    def rollback_live_migration(self, guest: GuestSpec) -> None:
        self._step("rollback", guest)

    def destroy(self, guest: GuestSpec) -> None:
        self._step("destroy", guest)  # the guest lives on in the shared fake driver


def live_hosts(stack: Api, fail: set[str]) -> list[tuple[str, str]]:
    """Give this stack's agents the stand-in driver; the calls are appended to the list returned."""
    log: list[tuple[str, str]] = []
    db = stack.runtime.db  # type: ignore[attr-defined]
    agents = [o for o in gc.get_objects() if isinstance(o, ComputeAgent) and o.db is db]
    assert len(agents) == 2
    for agent in agents:
        agent.driver = LiveMigratingHost(agent.host, agent.driver, log, fail)  # type: ignore[assignment]
    return log


def test_live_migration_runs_prepare_migrate_finish_on_the_right_hosts(two_hosts: Api) -> None:
    stack = two_hosts
    sid = boot(stack)
    src = host_of(stack, sid)
    log = live_hosts(stack, fail=set())

    assert action(stack, sid, LIVE, as_="admin", version="2.25").status_code == 202
    stack.wait_for(
        f"{SERVERS}/{sid}",
        lambda r: (
            r.json()["server"]["OS-EXT-SRV-ATTR:host"] != src and r.json()["server"]["status"] == "ACTIVE"
        ),
        as_="admin",
    )
    dst = host_of(stack, sid)
    assert log == [
        ("source", src),
        ("prepare", dst),
        ("migrate", src),
        ("finish", dst),
        ("destroy", src),
    ]
    s = server(stack, sid)
    assert s["OS-EXT-STS:task_state"] is None and s["OS-EXT-STS:power_state"] == 1
    [m] = migrations(stack, instance_uuid=sid, migration_type="live-migration")
    assert (m["status"], m["source_compute"], m["dest_compute"]) == ("completed", src, dst)
    assert usages(stack) == {src: {}, dst: TINY}


def test_a_failed_copy_leaves_the_server_on_its_host(two_hosts: Api) -> None:
    stack = two_hosts
    sid = boot(stack)
    src = host_of(stack, sid)
    log = live_hosts(stack, fail={"migrate"})

    assert action(stack, sid, LIVE, as_="admin", version="2.25").status_code == 202
    stack.wait_for(
        f"/compute/v2.1/os-migrations?instance_uuid={sid}",
        lambda r: any(m["status"] == "failed" for m in r.json()["migrations"]),
        as_="admin",
    )
    dst = next(h for h in usages(stack) if h != src)
    assert log == [("source", src), ("prepare", dst), ("migrate", src), ("abort", dst)]
    s = server(stack, sid)
    assert (s["status"], s["OS-EXT-SRV-ATTR:host"], s["OS-EXT-STS:task_state"]) == ("ACTIVE", src, None)
    assert usages(stack) == {src: TINY, dst: {}}
    r = stack.get(f"{SERVERS}/{sid}/os-instance-actions", as_="admin")
    assert any(a["action"] == "live-migration" for a in r.json()["instanceActions"])


def _held_migration(stack: Api, sid: str, log: list[tuple[str, str]]) -> dict[str, Any]:
    """The server's live migration in progress, once the stand-in holds its copy (the status
    goes ``running`` -> ``preparing`` -> ``running``: the copy's start is the sure sign)."""
    deadline = time.monotonic() + 60
    while not any(step == "migrate" for step, _ in log):
        assert time.monotonic() < deadline, f"the copy did not start: {log}"
        time.sleep(0.05)
    path = f"{SERVERS}/{sid}/migrations"
    [m] = stack.get(path, as_="admin", version="2.23").json()["migrations"]
    assert m["status"] == "running"
    return dict(m)


def test_abort_cancels_a_running_live_migration(two_hosts: Api) -> None:
    stack = two_hosts
    sid = boot(stack)
    src = host_of(stack, sid)
    log = live_hosts(stack, fail={"hold"})
    assert action(stack, sid, LIVE, as_="admin", version="2.25").status_code == 202
    m = _held_migration(stack, sid, log)
    assert server(stack, sid)["OS-EXT-STS:task_state"] == "migrating"

    r = stack.delete(f"{SERVERS}/{sid}/migrations/{m['id']}", as_="admin", version="2.24")
    assert r.status_code == 202, r.text
    stack.wait_for(
        f"/compute/v2.1/os-migrations?instance_uuid={sid}",
        lambda r: any(x["status"] == "cancelled" for x in r.json()["migrations"]),
        as_="admin",
    )
    dst = next(h for h in usages(stack) if h != src)
    assert (m["source_compute"], m["dest_compute"]) == (src, dst)  # known while it runs
    assert log == [("source", src), ("prepare", dst), ("migrate", src), ("abort", src), ("abort", dst)]
    s = server(stack, sid)
    assert (s["status"], s["OS-EXT-SRV-ATTR:host"], s["OS-EXT-STS:task_state"]) == ("ACTIVE", src, None)
    assert usages(stack) == {src: TINY, dst: {}}
    r = stack.get(f"{SERVERS}/{sid}/os-instance-actions", as_="admin")
    assert "live_migration_cancel" in {a["action"] for a in r.json()["instanceActions"]}


def test_force_complete_of_a_running_live_migration(two_hosts: Api) -> None:
    stack = two_hosts
    sid = boot(stack)
    src = host_of(stack, sid)
    log = live_hosts(stack, fail={"hold"})
    assert action(stack, sid, LIVE, as_="admin", version="2.25").status_code == 202
    m = _held_migration(stack, sid, log)

    r = stack.post(
        f"{SERVERS}/{sid}/migrations/{m['id']}/action",
        json={"force_complete": None},
        as_="admin",
        version="2.22",
    )
    assert r.status_code == 202, r.text
    stack.wait_for(
        f"{SERVERS}/{sid}", lambda r: r.json()["server"]["OS-EXT-SRV-ATTR:host"] != src, as_="admin"
    )
    dst = host_of(stack, sid)
    assert ("force_complete", src) in log and log[-2:] == [("finish", dst), ("destroy", src)]
    [done] = migrations(stack, instance_uuid=sid, migration_type="live-migration")
    assert done["status"] == "completed"
    assert usages(stack) == {src: {}, dst: TINY}


def test_live_migration_notifications_pre_post_and_abort(stack_factory: Any) -> None:
    """instance.live_migration_pre.* from the destination, live_migration_post.* when the move is
    recorded, live_migration_abort.* from the source when an abort reaches a running copy."""
    from tests.functional.test_notifications import Bus

    stack = stack_factory(fake_hosts=2, notifications="versioned")
    bus = Bus(stack)
    sid = boot(stack)
    src = host_of(stack, sid)
    log = live_hosts(stack, fail={"hold"})
    assert action(stack, sid, LIVE, as_="admin", version="2.25").status_code == 202
    m = _held_migration(stack, sid, log)
    r = stack.delete(f"{SERVERS}/{sid}/migrations/{m['id']}", as_="admin", version="2.24")
    assert r.status_code == 202, r.text
    bus.wait_for("instance.live_migration_abort.end")
    dst = m["dest_compute"]
    pre = [x for x in bus.drain() if x["event_type"].startswith("instance.live_migration_pre.")]
    assert [x["event_type"] for x in pre] == [
        "instance.live_migration_pre.start",
        "instance.live_migration_pre.end",
    ]
    assert all(x["publisher_id"] == f"nova-compute:{dst}" for x in pre)
    aborts = [x for x in bus.seen if x["event_type"].startswith("instance.live_migration_abort.")]
    assert [x["publisher_id"] for x in aborts] == [f"nova-compute:{src}"] * 2
    stack.wait_for(
        f"{SERVERS}/{sid}", lambda r: r.json()["server"]["OS-EXT-STS:task_state"] is None, as_="admin"
    )

    live_hosts(stack, fail=set())
    assert action(stack, sid, LIVE, as_="admin", version="2.25").status_code == 202
    bus.wait_for("instance.live_migration_post.end")
    types = bus.types(sid)
    assert types.count("instance.live_migration_pre.end") == 2
    assert "instance.live_migration_post.start" in types
