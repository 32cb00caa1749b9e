"""QEMU hosts as separate processes (issue 18 item 1, issue 20 "How it is shown"): ``novalite api``,
``novalite conductor`` and ``novalite compute --driver qemu`` joined by PostgreSQL and RabbitMQ,
driven with the unmodified ``openstack`` CLI; the guests' serial consoles are read back.

* one ``novalite compute --driver qemu --network-dataplane off`` in this namespace boots a real
  guest of the default image (its image data read from the API's image store, ``--image-dir``), whose
  user_data prints a marker on its console; deleting the server ends its QEMU;
* two ``novalite compute --driver qemu --network-dataplane on``, each in a network namespace of its
  own (and a mount namespace with its own ``/run/netns``, so their DHCP namespaces do not collide),
  joined by a veth pair that carries VXLAN between their ``--my-ip`` addresses and each reaching the
  controller (a private PostgreSQL and RabbitMQ) over a veth of its own: one network, a server
  forced to each host; each guest's user_data pings the other's fixed IP and both print success.

Needs QEMU (scripts/install-qemu.sh), PostgreSQL and RabbitMQ on loopback: skips loudly without
them, fails under NOVALITE_REQUIRE_SERVICES=1. Every process, QEMU and file made here is removed.
"""

from __future__ import annotations

import glob
import os
import random
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from novalite.guest.builder import build_guest_image
from novalite.network.dataplane import names
from tests.conftest import ADMIN_PW, DEMO_PW, RunningServer, free_port
from tests.e2e.test_distributed import NOVALITE, Deployment
from tests.e2e.test_distributed import deployment as deployment  # noqa: F401  (the fixture)
from tests.e2e.test_distributed_hosts import ReachablePostgres, _ip, _require_root_and_ip
from tests.e2e.test_engine_faults import RABBIT_BIN, PrivateRabbit, _missing
from tests.guest.conftest import guest_cache_dir, require_guest_image, require_qemu

pytestmark = pytest.mark.e2e

BOOT_TIMEOUT = 240.0  # TCG on two busy cores; a bound, not a target


def _kill_guests(root: Path) -> None:
    """SIGKILL the QEMUs whose command line names this test's directory (and only those)."""
    for pid_dir in Path("/proc").iterdir():
        if not pid_dir.name.isdigit():
            continue
        try:
            cmdline = (pid_dir / "cmdline").read_bytes()
        except OSError:
            continue
        if b"qemu-system" in cmdline and str(root).encode() in cmdline:
            try:
                os.kill(int(pid_dir.name), signal.SIGKILL)
            except OSError:
                pass


def _guests_running(root: Path) -> list[int]:
    found = []
    for pid_dir in Path("/proc").iterdir():
        if pid_dir.name.isdigit():
            try:
                cmdline = (pid_dir / "cmdline").read_bytes()
            except OSError:
                continue
            if b"qemu-system" in cmdline and str(root).encode() in cmdline:
                found.append(int(pid_dir.name))
    return found


def _wait(what: str, check: Callable[[], Any], dep: Deployment, timeout: float = BOOT_TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout:.0f}s\n{dep.logs()}")
        time.sleep(2)


@pytest.fixture
def hosts_root() -> Iterator[Path]:
    """Short paths for the compute hosts' data dirs (QEMU's unix sockets live there)."""
    require_qemu()
    require_guest_image()
    root = Path(tempfile.mkdtemp(prefix="nqc-"))
    try:
        yield root
    finally:
        _kill_guests(root)
        shutil.rmtree(root, ignore_errors=True)


def _start_api(dep: Deployment) -> str:
    port = free_port()
    api = dep.start("api", "api", "--port", str(port))
    dep.start("conductor", "conductor")
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        assert api.poll() is None, dep.logs()
        try:
            return httpx.get(url + "/compute/", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    dep.wait("the API", answers, timeout=120)
    dep.cli = RunningServer(url=url, env=dep.env, process=api, log=dep.tmp / "api.log", data_dir=dep.tmp)
    return url


def _upload_guest_image(dep: Deployment) -> None:
    image = build_guest_image(guest_cache_dir()).path
    dep.openstack("image", "create", "--disk-format", "qcow2", "--container-format", "bare",
                  "--public", "--file", str(image), "novalite-guest")  # fmt: skip
    dep.openstack("flavor", "create", "--ram", "128", "--disk", "1", "--vcpus", "1", "g1.nano")


def _compute_args(dep: Deployment, name: str, data_dir: Path, *extra: str) -> list[str]:
    """``novalite compute --driver qemu`` for host ``name`` with its own data dir; the image data
    is read from the API's image store."""
    database_url = dep.common[dep.common.index("--database-url") + 1]
    transport_url = dep.common[dep.common.index("--transport-url") + 1]
    api_data = dep.common[dep.common.index("--data-dir") + 1]
    return [
        NOVALITE, "compute", "--host", name, "--driver", "qemu", "--accelerator", "tcg",
        "--data-dir", str(data_dir), "--database-url", database_url, "--transport-url", transport_url,
        "--image-dir", str(Path(api_data) / "images"), *extra,
    ]  # fmt: skip


def _console(dep: Deployment, server: str) -> str:
    assert dep.cli is not None
    return dep.cli.openstack("console", "log", "show", server, cloud="novalite-admin", check=False).stdout


def test_a_qemu_compute_process_boots_a_real_guest(deployment: Deployment, hosts_root: Path) -> None:  # noqa: F811
    dep = deployment
    _start_api(dep)
    log = (dep.tmp / "qhost.log").open("ab")
    dep.processes["qhost"] = subprocess.Popen(
        _compute_args(dep, "qhost", hosts_root / "qhost", "--network-dataplane", "off"),
        env=dep.env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    dep.wait("the QEMU compute up", lambda: dep.compute_states() == {"qhost": "up"}, timeout=120)
    [hypervisor] = dep.openstack("hypervisor", "list", "--long")
    assert hypervisor["Hypervisor Hostname"] == "qhost"
    assert hypervisor["Hypervisor Type"] == "QEMU"
    _upload_guest_image(dep)
    user_data = dep.tmp / "user-data.sh"
    user_data.write_text('#!/bin/sh\necho "marker-from-$(hostname)"\n')
    created = dep.openstack(
        "server", "create", "--image", "novalite-guest", "--flavor", "g1.nano", "--no-network",
        "--config-drive", "true", "--user-data", str(user_data), "--wait", "vm-one",
    )  # fmt: skip
    assert created["status"] == "ACTIVE"
    assert dep.openstack("server", "show", "vm-one")["OS-EXT-SRV-ATTR:host"] == "qhost"
    _wait("the guest's user_data marker", lambda: "marker-from-vm-one" in _console(dep, "vm-one"), dep)
    # the guest runs under the compute's data dir, not the API's
    assert (hosts_root / "qhost" / "instances" / created["id"]).is_dir()
    assert _guests_running(hosts_root)
    assert dep.cli is not None
    dep.cli.openstack("server", "delete", "--wait", "vm-one", cloud="novalite-admin")
    _wait("the guest's QEMU gone", lambda: not _guests_running(hosts_root), dep, timeout=120)
    for name, proc in dep.processes.items():
        assert proc.poll() is None, f"{name} exited\n{dep.logs()}"


# --- two QEMU hosts in their own namespaces, joined by VXLAN -------------------------------------

CIDR, IP_A, IP_B = "10.77.0.0/24", "10.77.0.11", "10.77.0.12"
PING = re.compile(r"peer-ping (\d+) (ok|failed)")


def _ping_user_data(peer: str) -> str:
    return (
        "#!/bin/sh\n"
        "(\n"
        "  n=0\n"
        "  while true; do\n"
        "    n=$((n+1))\n"
        f'    if ping -c 1 -W 1 {peer} >/dev/null 2>&1; then echo "peer-ping $n ok"; '
        'else echo "peer-ping $n failed"; fi\n'
        "    sleep 1\n"
        "  done\n"
        ") >/dev/console 2>&1 &\n"
    )


@dataclass
class TwoHosts:
    """hostA and hostB namespaces, their veths, and the controller's private PostgreSQL and RabbitMQ."""

    namespaces: dict[str, str]  # host name -> namespace
    tunnel_ips: dict[str, str]  # host name -> its --my-ip (on the A-B veth pair)
    pg: ReachablePostgres
    rabbit: PrivateRabbit

    def vhost(self, controller: str) -> tuple[str, str]:
        name = "novalite-" + uuid.uuid4().hex[:8]
        self.rabbit.ctl("add_vhost", name)
        self.rabbit.ctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        return f"amqp://guest:guest@{controller}:{self.rabbit.port}/{name}", name


@pytest.fixture
def two_hosts() -> Iterator[TwoHosts]:
    _require_root_and_ip()
    require_qemu()
    if not (RABBIT_BIN / "rabbitmq-server").exists():
        _missing("RabbitMQ (rabbitmq-server)")
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins:
        _missing("PostgreSQL (initdb)")
    if shutil.which("unshare") is None:
        _missing("unshare (util-linux)")
    tag = uuid.uuid4().hex[:6]
    third = random.randint(200, 250)  # 198.19.<third>.0/24: the benchmarking range
    base = f"198.19.{third}"
    controller = f"{base}.1"
    namespaces = {"hostA": f"nlqa-{tag}", "hostB": f"nlqb-{tag}"}
    home = Path(tempfile.mkdtemp(prefix="novalite-q2-"))
    os.chmod(home, 0o755)
    (home / "pg").mkdir()
    (home / "rabbit").mkdir()
    pg = ReachablePostgres(home / "pg", Path(bins[-1]).parent, controller, f"{base}.0/24")
    rabbit = PrivateRabbit(home / "rabbit")
    (home / "rabbit" / "rabbitmq.conf").write_text("loopback_users = none\n")
    links = [f"vqa{tag}h", f"vqb{tag}h", f"vqab{tag}"]
    try:
        for ns in namespaces.values():
            _ip("netns", "add", ns)
            _ip("-n", ns, "link", "set", "lo", "up")
        # each host reaches the controller over a /30 of its own: A .1/.2, B .5/.6
        for (host, ns), (h_ip, n_ip), link in zip(
            namespaces.items(), ((f"{base}.1", f"{base}.2"), (f"{base}.5", f"{base}.6")), links, strict=False
        ):
            _ip("link", "add", link, "type", "veth", "peer", "name", link[:-1] + "n")
            _ip("link", "set", link[:-1] + "n", "netns", ns)
            _ip("addr", "add", f"{h_ip}/30", "dev", link)
            _ip("link", "set", link, "up")
            _ip("-n", ns, "addr", "add", f"{n_ip}/30", "dev", link[:-1] + "n")
            _ip("-n", ns, "link", "set", link[:-1] + "n", "up")
            if host == "hostB":  # the controller's address is on A's pair: delivered locally
                _ip("-n", ns, "route", "add", f"{controller}/32", "via", h_ip)
        # the underlay between the two hosts: VXLAN runs here (.9 and .10)
        _ip("link", "add", "vqabA", "netns", namespaces["hostA"], "type", "veth", "peer", "name", "vqabB",
            "netns", namespaces["hostB"])  # fmt: skip
        tunnel_ips = {"hostA": f"{base}.9", "hostB": f"{base}.10"}
        for host, dev in (("hostA", "vqabA"), ("hostB", "vqabB")):
            _ip("-n", namespaces[host], "addr", "add", f"{tunnel_ips[host]}/30", "dev", dev)
            _ip("-n", namespaces[host], "link", "set", dev, "up")
        pg.init()
        rabbit.start()
        yield TwoHosts(namespaces=namespaces, tunnel_ips=tunnel_ips, pg=pg, rabbit=rabbit)
    finally:
        rabbit.stop()
        try:
            pg.pg_ctl("stop", "-m", "immediate")
        except subprocess.CalledProcessError:
            pass
        for link in links[:2]:
            _ip("link", "del", link, check=False)
        for ns in namespaces.values():
            _ip("netns", "del", ns, check=False)
        shutil.rmtree(home, ignore_errors=True)
    listed = _ip("netns", "list").stdout
    assert not any(ns in listed for ns in namespaces.values())


def _kill_by_path(root: Path) -> None:
    """Every process (QEMU, dnsmasq, metadata proxy) whose command line names ``root``."""
    for pid_dir in Path("/proc").iterdir():
        if not pid_dir.name.isdigit() or int(pid_dir.name) == os.getpid():
            continue
        try:
            cmdline = (pid_dir / "cmdline").read_bytes()
        except OSError:
            continue
        if str(root).encode() in cmdline:
            try:
                os.kill(int(pid_dir.name), signal.SIGKILL)
            except OSError:
                pass


def controller_deployment(two_hosts: TwoHosts, tmp_path: Path) -> Deployment:
    """The controller's side for QEMU hosts in their namespaces: a fresh database on the private
    PostgreSQL (schema upgraded), a fresh vhost on the private RabbitMQ, clouds.yaml in
    ``tmp_path``; the API is not started yet (``_start_api``)."""
    db_url = two_hosts.pg.create_database()
    transport_url, _ = two_hosts.vhost(two_hosts.pg.address)  # the private broker goes with the fixture
    clouds = tmp_path / "clouds.yaml"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "NOVALITE_"))}
    env.update(
        NOVALITE_ADMIN_PASSWORD=ADMIN_PW,
        NOVALITE_DEMO_PASSWORD=DEMO_PW,
        NOVALITE_CLOUDS_YAML_PATH=str(clouds),
        NOVALITE_REPORT_INTERVAL="1",
        OS_CLIENT_CONFIG_FILE=str(clouds),
        HOME=str(tmp_path),
        PYTHONUNBUFFERED="1",
    )
    common = ["--data-dir", str(tmp_path / "data"), "--database-url", db_url,
              "--transport-url", transport_url]  # fmt: skip
    subprocess.run(
        [NOVALITE, "db", "upgrade", *common[:4]], env=env, check=True, capture_output=True, timeout=120
    )
    return Deployment(tmp=tmp_path, env=env, common=common)


@pytest.mark.timeout(1500)  # two TCG boots on a loaded machine; a bound, not a target
def test_guests_on_two_qemu_hosts_ping_each_other_over_vxlan(two_hosts: TwoHosts, tmp_path: Path) -> None:
    require_guest_image()
    dep = controller_deployment(two_hosts, tmp_path)
    env = dep.env
    root = Path(tempfile.mkdtemp(prefix="nq2-"))  # the hosts' data dirs: short (QEMU's sockets)
    try:
        _start_api(dep)
        for host, ns in two_hosts.namespaces.items():
            args = _compute_args(dep, host, root / host, "--network-dataplane", "on",
                                 "--my-ip", two_hosts.tunnel_ips[host])  # fmt: skip
            log = (tmp_path / f"{host}.log").open("ab")
            # a mount namespace of its own with a private /run/netns: the hosts' qdhcp-<net>
            # namespaces have the same names
            dep.processes[host] = subprocess.Popen(
                ["ip", "netns", "exec", ns, "unshare", "--mount", "--propagation", "private", "sh", "-c",
                 'mkdir -p /run/netns && mount -t tmpfs nq2-netns /run/netns && exec "$@"', "sh", *args],
                env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        dep.wait(
            "both QEMU computes up",
            lambda: dep.compute_states() == {"hostA": "up", "hostB": "up"},
            timeout=180,
        )
        hypervisors = {h["Hypervisor Hostname"]: h for h in dep.openstack("hypervisor", "list", "--long")}
        assert {h: hypervisors[h]["Host IP"] for h in hypervisors} == two_hosts.tunnel_ips
        _upload_guest_image(dep)
        dep.openstack("network", "create", "vxnet")
        dep.openstack("subnet", "create", "--network", "vxnet", "--subnet-range", CIDR, "vxsub")
        dep.openstack("security", "group", "create", "icmp-in")
        dep.openstack("security", "group", "rule", "create", "--ingress", "--protocol", "icmp", "icmp-in")
        for name, ip in (("pa", IP_A), ("pb", IP_B)):
            dep.openstack("port", "create", "--network", "vxnet", "--security-group", "icmp-in",
                          "--fixed-ip", f"subnet=vxsub,ip-address={ip}", name)  # fmt: skip
        for name, port, peer, host in (("va", "pa", IP_B, "hostA"), ("vb", "pb", IP_A, "hostB")):
            user_data = tmp_path / f"{name}.sh"
            user_data.write_text(_ping_user_data(peer))
            dep.openstack(
                "server", "create", "--image", "novalite-guest", "--flavor", "g1.nano",
                "--nic", f"port-id={port}", "--user-data", str(user_data), "--config-drive", "true",
                "--availability-zone", f"nova:{host}", name,
            )  # fmt: skip
            # one TCG boot at a time on this loaded machine: ACTIVE, then its DHCP lease line
            _wait(f"{name} ACTIVE", lambda n=name: dep.openstack("server", "show", n)["status"] == "ACTIVE",
                  dep)  # fmt: skip
            assert dep.openstack("server", "show", name)["OS-EXT-SRV-ATTR:host"] == host
            ip = IP_A if name == "va" else IP_B
            _wait(f"{name}'s DHCP lease", lambda n=name, a=ip: f"net eth0 {a}/24" in _console(dep, n), dep)
        for name in ("va", "vb"):
            _wait(
                f"{name} pinging its peer on the other host",
                lambda n=name: any(r == "ok" for _, r in PING.findall(_console(dep, n))),
                dep,
            )
        # each host's bridge for the network, in the network's namespace on that host, has a VXLAN
        # device flooding to the other host (the namespace is named in the compute's own /run/netns:
        # entered through its mount namespace)
        bridge_ns = names.network_namespace(dep.openstack("network", "show", "vxnet")["id"])
        for host, peer in (("hostA", "hostB"), ("hostB", "hostA")):
            enter = ["nsenter", "-t", str(dep.processes[host].pid), "-m", "-n"]
            links = subprocess.run([*enter, "ip", "-n", bridge_ns, "-d", "link", "show", "type", "vxlan"],
                                   capture_output=True, text=True, check=True).stdout  # fmt: skip
            assert f"local {two_hosts.tunnel_ips[host]}" in links, links
            fdb = subprocess.run([*enter, "bridge", "-n", bridge_ns, "fdb", "show"],
                                 capture_output=True, text=True, check=True).stdout  # fmt: skip
            assert f"dst {two_hosts.tunnel_ips[peer]}" in fdb, fdb
            # and the host's own namespace holds no tenant bridge or VXLAN device
            own = subprocess.run([*enter, "ip", "-o", "-d", "link", "show"],
                                 capture_output=True, text=True, check=True).stdout  # fmt: skip
            assert names.BRIDGE_PREFIX not in own and "vxlan id" not in own, own
        # each host serves DHCP from a port of its own (own MAC and address), as Neutron's agents
        dhcp_ports = dep.openstack("port", "list", "--device-owner", "network:dhcp", "--long")
        assert len(dhcp_ports) == 2, dhcp_ports
        assert len({p["MAC Address"] for p in dhcp_ports}) == 2, dhcp_ports
        assert not [p for p in dhcp_ports if f"'{IP_A}'" in str(p) or f"'{IP_B}'" in str(p)], dhcp_ports
        # neither host's dnsmasq refused the other's guest (what made this test flaky)
        logs = sorted(root.glob("*/dhcp/*/dnsmasq.log"))
        assert len(logs) == 2 and not [log for log in logs if "DHCPNAK" in log.read_text()], [
            log.read_text() for log in logs
        ]
        assert dep.cli is not None
        dep.cli.openstack("server", "delete", "--wait", "va", "vb", cloud="novalite-admin")
        # ... and deletes it with its last port on the network
        left = ("port", "list", "--device-owner", "network:dhcp")
        _wait("the DHCP ports gone", lambda: not dep.openstack(*left), dep, timeout=60)
        for name, proc in dep.processes.items():
            assert proc.poll() is None, f"{name} exited\n{dep.logs()}"
    finally:
        dep.stop_all()
        _kill_by_path(root)
        for log in root.glob("*/dhcp/*/dnsmasq.log"):  # kept with the test's other logs
            shutil.copy(log, tmp_path / f"dnsmasq-{log.parents[2].name}.log")
        shutil.rmtree(root, ignore_errors=True)


def test_compute_driver_qemu_without_qemu_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty-path"
    empty.mkdir()
    proc = subprocess.run(
        [NOVALITE, "compute", "--host", "h1", "--driver", "qemu", "--data-dir", str(tmp_path / "data"),
         "--transport-url", "amqp://guest:guest@127.0.0.1:1//"],  # fmt: skip
        env={**os.environ, "PATH": str(empty)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert "qemu-system-x86_64 (Debian package qemu-system-x86)" in proc.stderr, proc.stderr
    assert "scripts/install-qemu.sh" in proc.stderr
    assert not (tmp_path / "data").exists()  # refused before anything was made
