"""Live migration of a running QEMU guest between two machines (issue 19 item 2): two
``novalite compute --driver qemu --my-ip ...`` processes, each in a network namespace of its own
and with its own data directory (nothing shared but the controller), joined by a veth pair that
carries the migration: the destination's NBD server and its incoming QEMU listen on TCP at its
``--my-ip``. Driven with the unmodified ``openstack`` CLI.

A server boots on hostA and prints ``tick N`` on its console every second; after ``openstack
server migrate --live-migration --host hostB`` it runs on hostB, its counter goes on in hostB's
console log with no second boot, the migration is ``completed``, QEMU runs under hostB's
directory only and placement counts the server on hostB only. Deleting it leaves nothing.

The fixtures and helpers are test_qemu_two_hosts.py's (private PostgreSQL and RabbitMQ, the
namespaces). Needs root, ip, QEMU, PostgreSQL and RabbitMQ: skips loudly without them, fails
under NOVALITE_REQUIRE_SERVICES=1. Every process, namespace and file made here is removed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_distributed import Deployment
from tests.e2e.test_qemu_two_hosts import (
    BOOT_TIMEOUT,
    TwoHosts,
    _compute_args,
    _console,
    _guests_running,
    _kill_by_path,
    _start_api,
    _upload_guest_image,
    _wait,
    controller_deployment,
)
from tests.e2e.test_qemu_two_hosts import two_hosts as two_hosts  # noqa: F401  (the fixture)
from tests.guest.conftest import require_guest_image

pytestmark = pytest.mark.e2e

READY = "novalite-guest ready"  # the guest image prints it once per boot
TICK = re.compile(r"^tick (\d+)", re.M)
COUNTER = (
    '#!/bin/sh\n( n=0; while true; do n=$((n+1)); echo "tick $n"; sleep 1; done ) >/dev/console 2>&1 &\n'
)


def _ticks(text: str) -> list[int]:
    return [int(n) for n in TICK.findall(text.replace("\r\n", "\n"))]


@pytest.fixture
def namespaced(
    two_hosts: TwoHosts,  # noqa: F811
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[tuple[Deployment, Path]]:
    """The API and conductor here; hostA and hostB, ``--network-dataplane off`` (user-mode
    networking) and ``--my-ip`` on the A-B pair, each in its namespace with its own data dir.
    ``request.param`` (indirect parametrization): environment the two computes get besides."""
    require_guest_image()
    dep = controller_deployment(two_hosts, tmp_path)
    env = dep.env
    root = Path(tempfile.mkdtemp(prefix="nlh-"))  # the hosts' data dirs: short (QEMU's sockets)
    try:
        _start_api(dep)
        for host, ns in two_hosts.namespaces.items():
            args = _compute_args(dep, host, root / host, "--network-dataplane", "off",
                                 "--my-ip", two_hosts.tunnel_ips[host])  # fmt: skip
            log = (tmp_path / f"{host}.log").open("ab")
            dep.processes[host] = subprocess.Popen(
                ["ip", "netns", "exec", ns, *args],
                env=env | dict(getattr(request, "param", {})),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        dep.wait(
            "both QEMU computes up",
            lambda: dep.compute_states() == {"hostA": "up", "hostB": "up"},
            timeout=180,
        )
        yield dep, root
    finally:
        dep.stop_all()
        _kill_by_path(root)
        shutil.rmtree(root, ignore_errors=True)


def _counted_past(text: str, n: int) -> str:
    """``text`` once its counter is past ``n``, else empty."""
    return text if any(t > n for t in _ticks(text)) else ""


def _usage(dep: Deployment) -> dict[str, int]:
    """Host name -> the VCPU placement counts on its resource provider."""
    found = {}
    for rp in dep.openstack("resource", "provider", "list"):
        rows = dep.openstack("resource", "provider", "usage", "show", rp["uuid"])
        found[rp["name"]] = next((int(r["usage"]) for r in rows if r["resource_class"] == "VCPU"), 0)
    return found


def _settled_on(dep: Deployment, name: str, host: str) -> bool:
    shown: dict[str, Any] = dep.openstack("server", "show", name)
    assert shown["status"] != "ERROR", shown
    return (
        shown["status"] == "ACTIVE"
        and shown["OS-EXT-SRV-ATTR:host"] == host
        and not shown.get("OS-EXT-STS:task_state")
    )


@pytest.mark.timeout(1500)  # a TCG boot and a migration on a loaded machine; a bound, not a target
def test_a_running_guest_moves_to_another_machine_without_reboot(
    namespaced: tuple[Deployment, Path],
    two_hosts: TwoHosts,  # noqa: F811
) -> None:
    dep, root = namespaced
    assert dep.cli is not None
    hypervisors = dep.openstack("hypervisor", "list", "--long")
    assert {h["Hypervisor Hostname"]: h["Host IP"] for h in hypervisors} == two_hosts.tunnel_ips
    _upload_guest_image(dep)
    user_data = dep.tmp / "counter.sh"
    user_data.write_text(COUNTER)
    created = dep.openstack(
        "server", "create", "--image", "novalite-guest", "--flavor", "g1.nano", "--no-network",
        "--config-drive", "true", "--user-data", str(user_data), "--availability-zone", "nova:hostA",
        "--wait", "mover",
    )  # fmt: skip
    server_id = created["id"]
    assert dep.openstack("server", "show", "mover")["OS-EXT-SRV-ATTR:host"] == "hostA"
    _wait("the counter on hostA", lambda: len(_ticks(_console(dep, "mover"))) >= 3, dep)
    assert _usage(dep) == {"hostA": 1, "hostB": 0}
    before = _ticks(_console(dep, "mover"))[-1]

    dep.cli.openstack(
        "--os-compute-api-version", "2.30", "server", "migrate", "--live-migration", "--host", "hostB",
        "mover", cloud="novalite-admin",
    )  # fmt: skip
    _wait("the server ACTIVE on hostB", lambda: _settled_on(dep, "mover", "hostB"), dep, timeout=600)

    [migration] = dep.openstack("--os-compute-api-version", "2.59", "server", "migration", "list",
                                "--server", server_id)  # fmt: skip
    assert (migration["Status"], migration["Type"]) == ("completed", "live-migration"), migration
    assert (migration["Source Compute"], migration["Dest Compute"]) == ("hostA", "hostB")
    # the destination listened on TCP at its --my-ip (the source reached it over the A-B pair)
    assert f"tcp:{two_hosts.tunnel_ips['hostB']}:" in (dep.tmp / "hostB.log").read_text()
    assert _guests_running(root / "hostB") and not _guests_running(root / "hostA")
    assert not (root / "hostA" / "instances" / server_id).exists()
    # the guest did not boot again: its counter goes on in hostB's console log
    text = _wait(
        "the counter going on on hostB",
        lambda: _counted_past(_console(dep, "mover"), before + 3),
        dep,
        timeout=BOOT_TIMEOUT,
    )
    after = _ticks(text)
    assert after[0] > before and READY not in text, text[-2000:]
    assert after == list(range(after[0], after[0] + len(after))), after
    assert _usage(dep) == {"hostA": 0, "hostB": 1}

    dep.cli.openstack("server", "delete", "--wait", "mover", cloud="novalite-admin")
    deadline = time.monotonic() + 120
    while _guests_running(root) and time.monotonic() < deadline:
        time.sleep(1)
    assert not _guests_running(root)
    assert not any((root / h / "instances" / server_id).exists() for h in ("hostA", "hostB"))
    assert _usage(dep) == {"hostA": 0, "hostB": 0}
    for name, proc in dep.processes.items():
        assert proc.poll() is None, f"{name} exited\n{dep.logs()}"


BUSY = COUNTER + (
    "( while true; do dd if=/dev/urandom of=/dev/null bs=4M count=64 2>/dev/null; done ) &\n"
)  # rewrites 4 MiB of memory without pause: at 1 MiB/s the copy does not converge


@pytest.mark.timeout(1500)
@pytest.mark.parametrize("namespaced", [{"NOVALITE_LIVE_MIGRATION_BANDWIDTH": "1"}], indirect=True)
def test_force_complete_of_a_live_migration_that_cannot_converge(
    namespaced: tuple[Deployment, Path],
) -> None:
    """``openstack server migration force complete`` (2.22) while the memory copy of a busy guest
    runs: the source pauses the guest, the copy converges, the guest counts on on hostB."""
    dep, root = namespaced
    assert dep.cli is not None
    _upload_guest_image(dep)
    user_data = dep.tmp / "busy.sh"
    user_data.write_text(BUSY)
    server_id = dep.openstack(
        "server", "create", "--image", "novalite-guest", "--flavor", "g1.nano", "--no-network",
        "--config-drive", "true", "--user-data", str(user_data), "--availability-zone", "nova:hostA",
        "--wait", "busy",
    )["id"]  # fmt: skip
    _wait("the counter on hostA", lambda: len(_ticks(_console(dep, "busy"))) >= 3, dep)
    before = _ticks(_console(dep, "busy"))[-1]
    dep.cli.openstack(
        "--os-compute-api-version", "2.30", "server", "migrate", "--live-migration", "--host", "hostB",
        "busy", cloud="novalite-admin",
    )  # fmt: skip

    def running() -> dict[str, Any] | None:
        rows = dep.openstack("--os-compute-api-version", "2.59", "server", "migration", "list",
                             "--server", server_id)  # fmt: skip
        return next((r for r in rows if r["Status"] == "running"), None)

    migration = _wait("the live migration running", running, dep, timeout=300)
    time.sleep(20)  # the copy runs, and cannot converge
    assert dep.openstack("server", "show", "busy")["OS-EXT-SRV-ATTR:host"] == "hostA"
    dep.cli.openstack(
        "--os-compute-api-version", "2.22", "server", "migration", "force", "complete", "busy",
        str(migration["Id"]), cloud="novalite-admin",
    )  # fmt: skip
    _wait("the server ACTIVE on hostB", lambda: _settled_on(dep, "busy", "hostB"), dep, timeout=600)
    [done] = dep.openstack("--os-compute-api-version", "2.59", "server", "migration", "list",
                           "--server", server_id)  # fmt: skip
    assert done["Status"] == "completed", done
    actions = dep.openstack("server", "event", "list", "busy")
    assert "live_migration_force_complete" in {a["Action"] for a in actions}, actions
    assert _guests_running(root / "hostB") and not _guests_running(root / "hostA")
    text = _wait(
        "the counter going on on hostB", lambda: _counted_past(_console(dep, "busy"), before + 3), dep
    )
    assert READY not in text and _ticks(text)[0] > before, text[-2000:]
    dep.cli.openstack("server", "delete", "--wait", "busy", cloud="novalite-admin")
    deadline = time.monotonic() + 120
    while _guests_running(root) and time.monotonic() < deadline:
        time.sleep(1)
    assert not _guests_running(root)
