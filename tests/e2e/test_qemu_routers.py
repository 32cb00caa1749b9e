"""Routers and floating IPs for real guests (issue 20): ``novalite serve --driver qemu --accelerator
tcg --network-dataplane on`` and the unmodified ``openstack`` CLI.

Two guests of the default image on two networks: ``va`` (network A) pings ``vb`` (network B) in a
loop from its user_data and prints ``peer-ping <n> ok|failed`` on its console. The pings fail while
the router is only on A, and pass once the router joins B. The router's gateway is on ``public``;
``va`` gets a floating IP, and a client namespace this test puts on the external network's bridge
runs ``ssh -i KEY root@<floating ip> hostname``: refused (timed out) without a security group rule
for port 22, answered with ``va`` once the rule is added, cut again once the floating IP is removed.
Deleting everything leaves none of this test's namespaces, links or dnsmasq behind.

Needs root, QEMU, dnsmasq, nft, pyroute2 and ``ssh`` (openssh-client): skips loudly without them,
fails under NOVALITE_REQUIRE_SERVICES=1. The only addresses added are inside namespaces this test
creates; every QEMU started here is killed and every namespace removed, also on failure.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from novalite.guest.builder import GuestBuildError, build_guest_image
from novalite.network.dataplane import names, reconcile
from tests.conftest import start_server, stop_server
from tests.e2e.test_qemu_networks import Cloud, _after, _user_data, _wait
from tests.e2e.test_qemu_servers import _kill_guests
from tests.guest.conftest import guest_cache_dir, require_qemu
from tests.netns.conftest import _skip_or_fail, host_snapshot, require_netns

pytestmark = pytest.mark.e2e

CIDR_A, CIDR_B = "10.77.42.0/24", "10.77.43.0/24"
IP_A, IP_B = "10.77.42.11", "10.77.43.11"


@pytest.fixture(scope="module")
def cloud() -> Iterator[Cloud]:
    require_qemu()
    require_netns()
    try:
        build_guest_image(guest_cache_dir())
    except GuestBuildError as exc:
        _skip_or_fail(f"cannot build the guest image: {exc}")
    root = Path(tempfile.mkdtemp(prefix="nvr-"))
    server = start_server(
        root, "--driver", "qemu", "--accelerator", "tcg", "--network-dataplane", "on",
        env_extra={"NOVALITE_GUEST_CACHE": str(guest_cache_dir())},
    )  # fmt: skip
    try:
        c = Cloud(root, server)
        c.cli(
            "flavor",
            "create",
            "--ram",
            "128",
            "--disk",
            "1",
            "--vcpus",
            "1",
            "g1.nano",
            cloud="novalite-admin",
        )
        yield c
    finally:
        if server.process.poll() is None:
            stop_server(server)
        _kill_guests(root)
        reconcile.teardown(root / "data")  # whatever a failed test left: namespaces, bridges, dnsmasq
        shutil.rmtree(root, ignore_errors=True)


class Client:
    """A namespace on the external network's bridge: the outside world, as seen by a router."""

    def __init__(self) -> None:
        self.ns = f"nlrc-{uuid.uuid4().hex[:8]}"
        self.veth = "nlrc" + self.ns[-8:]

    def plug(self, network_id: str, address: str) -> None:
        """A veth from the client's namespace onto the external network's bridge, in the
        network's own namespace (network/dataplane/l2.py)."""
        run = ["ip", "netns", "exec", self.ns]
        bridge_ns, bridge = names.network_namespace(network_id), names.bridge_name(network_id)
        for cmd in (
            ["ip", "netns", "add", self.ns],
            [
                "ip",
                "-n",
                bridge_ns,
                "link",
                "add",
                self.veth,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                self.ns,
            ],
            ["ip", "-n", bridge_ns, "link", "set", self.veth, "master", bridge, "up"],
            [*run, "ip", "link", "set", "lo", "up"],
            [*run, "ip", "addr", "add", address, "dev", "eth0"],
            [*run, "ip", "link", "set", "eth0", "up"],
        ):
            subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=30)

    def ssh(self, key: Path, address: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ip", "netns", "exec", self.ns, "ssh", "-i", str(key), "-o", "BatchMode=yes",
             "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
             "-o", "ConnectTimeout=5", "-o", "LogLevel=ERROR", f"root@{address}", "hostname"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip

    def diagnose(self, key: Path, address: str, router_id: str) -> str:
        """What a failed SSH check shows: ssh -v, a ping, the router's addresses and nat table."""
        router_ns = names.router_namespace(router_id)
        out = []
        for cmd in (
            ["ip", "netns", "exec", self.ns, "ssh", "-v", "-i", str(key), "-o", "BatchMode=yes",
             "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
             "-o", "ConnectTimeout=5", f"root@{address}", "hostname"],
            ["ip", "netns", "exec", self.ns, "ping", "-c", "2", "-W", "1", address],
            ["ip", "netns", "exec", router_ns, "ip", "addr"],
            ["ip", "netns", "exec", router_ns, "ip", "route"],
            ["ip", "netns", "exec", router_ns, "nft", "list", "ruleset"],
            ["nft", "list", "table", "bridge", "novalite"],
        ):  # fmt: skip
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
            out.append(f"$ {' '.join(cmd)}\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
        return "\n".join(out)

    def close(self) -> None:
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True, check=False)  # veth with it


@pytest.fixture
def client() -> Iterator[Client]:
    if shutil.which("ssh") is None:
        _skip_or_fail("ssh (openssh-client) missing; run scripts/install-network.sh")
    c = Client()
    try:
        yield c
    finally:
        c.close()


def _state_of(cloud: Cloud, router_id: str) -> str:
    """For a failure message: the guests' consoles, the router's namespace and the host's links."""
    out = [f"--- {n} console:\n{cloud.console(n)[-2500:]}" for n in ("va", "vb")]
    ns = names.router_namespace(router_id)
    for cmd in (["ip", "netns", "exec", ns, "ip", "-o", "addr"], ["ip", "-o", "link", "show"],
                ["ip", "netns", "list"], ["nft", "list", "table", "bridge", "novalite"]):  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
        out.append(f"$ {' '.join(cmd)}\n{done.stdout[-4000:]}{done.stderr[-2000:]}")
    return "\n".join(out)


def _ours(snapshot: dict[str, list[str]], ids: list[str], root: Path) -> dict[str, list[str]]:
    """The part of a host snapshot this test's deployment could have made (other tests may run)."""
    shorts = {i[: names.ID_CHARS] for i in ids}
    return {
        "netns": [n for n in snapshot["netns"] if any(s in n for s in shorts)],
        "links": [n for n in snapshot["links"] if any(s in n for s in shorts)],
        "dnsmasq": [p for p in snapshot["dnsmasq"] if str(root) in p],
        "nft": [t for t in snapshot["nft"] if "novalite" in t],
    }


@pytest.mark.timeout(900)  # TCG guests on a shared 2-core host
def test_router_floating_ip_and_ssh_into_a_guest(cloud: Cloud, client: Client) -> None:
    before = host_snapshot()
    key = cloud.root / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    cloud.cli("keypair", "create", "--public-key", f"{key}.pub", "rk1")
    cloud.cli("security", "group", "create", "ssh-test")  # egress only: nothing comes in
    for net, sub, cidr in (("rna", "rsa", CIDR_A), ("rnb", "rsb", CIDR_B)):
        cloud.cli("network", "create", net)
        cloud.cli("subnet", "create", "--network", net, "--subnet-range", cidr, sub)
    cloud.cli("port", "create", "--network", "rna", "--fixed-ip", f"subnet=rsa,ip-address={IP_A}",
              "--security-group", "default", "--security-group", "ssh-test", "rpa")  # fmt: skip
    cloud.cli("port", "create", "--network", "rnb", "--fixed-ip", f"subnet=rsb,ip-address={IP_B}", "rpb")
    router = cloud.json("router", "create", "rr1")
    cloud.cli("router", "add", "subnet", "rr1", "rsa")
    cloud.cli("router", "set", "--external-gateway", "public", "rr1")
    for name, port, peer in (("va", "rpa", IP_B), ("vb", "rpb", IP_A)):
        user_data = cloud.root / f"{name}.sh"
        user_data.write_text(_user_data(peer))
        cloud.cli(
            "server", "create", "--image", "novalite-guest", "--flavor", "g1.nano", "--key-name", "rk1",
            "--nic", f"port-id={port}", "--user-data", str(user_data), "--config-drive", "true", name,
        )  # fmt: skip
    for name in ("va", "vb"):
        _wait(f"{name} ACTIVE", lambda n=name: cloud.json("server", "show", n)["status"] == "ACTIVE")

    # the router is on A only: va cannot reach vb on B
    failed = _wait("va's pings to fail", _after(cloud, "va", 0, "failed"))
    # the router joins B: the two networks reach each other through it
    cloud.cli("router", "add", "subnet", "rr1", "rsb")
    try:
        _wait("va's pings to pass through the router", _after(cloud, "va", failed, "ok"), timeout=120)
    except AssertionError:
        raise AssertionError(_state_of(cloud, router["id"])) from None

    # a client on the external network, at the external subnet's gateway address
    public = cloud.json("network", "show", "public")
    subnet = cloud.json("subnet", "show", public["subnets"][0])
    prefix = subnet["cidr"].split("/")[1]
    bridge, bridge_ns = names.bridge_name(public["id"]), names.network_namespace(public["id"])
    in_bridge_ns = ["ip", "-n", bridge_ns, "link", "show", bridge]
    made = lambda: subprocess.run(in_bridge_ns, capture_output=True, check=False).returncode == 0  # noqa: E731
    _wait("the external bridge", made, timeout=60)
    assert bridge not in host_snapshot()["host_links"]  # not in the host's namespace
    client.plug(public["id"], f"{subnet['gateway_ip']}/{prefix}")

    fip = cloud.json("floating", "ip", "create", "public")["floating_ip_address"]
    cloud.cli("server", "add", "floating", "ip", "va", fip)
    _wait("va's SSH server", lambda: "novalite-guest: ssh port 22" in cloud.console("va"), timeout=60)

    # no rule for port 22 in va's groups: the connection is not answered
    refused = client.ssh(key, fip)
    assert refused.returncode != 0 and "va" not in refused.stdout.split(), refused

    # the rule opens it (polled: the watcher applies it within about a second)
    cloud.cli("security", "group", "rule", "create", "--ingress", "--protocol", "tcp",
              "--dst-port", "22", "ssh-test")  # fmt: skip
    try:
        _wait("ssh to the floating IP", lambda: client.ssh(key, fip).stdout.strip() == "va", timeout=90)
    except AssertionError:
        raise AssertionError(client.diagnose(key, fip, router["id"]) + cloud.console("va")[-3000:]) from None

    # the floating IP removed: the outside no longer reaches va
    cloud.cli("server", "remove", "floating", "ip", "va", fip)
    _wait("ssh to be cut", lambda: client.ssh(key, fip).returncode != 0, timeout=60)

    # delete everything: nothing of this deployment is left on the host
    ids = [router["id"], public["id"]]
    ids += [cloud.json("network", "show", n)["id"] for n in ("rna", "rnb")]
    ids += [cloud.json("port", "show", p)["id"] for p in ("rpa", "rpb")]
    ids += [p["ID"] for p in cloud.json("port", "list", "--router", "rr1")]
    client.close()
    cloud.cli("floating", "ip", "delete", fip)
    cloud.cli("server", "delete", "--wait", "va", "vb")
    cloud.cli("port", "delete", "rpa", "rpb")
    cloud.cli("router", "unset", "--external-gateway", "rr1")
    cloud.cli("router", "remove", "subnet", "rr1", "rsa")
    cloud.cli("router", "remove", "subnet", "rr1", "rsb")
    cloud.cli("router", "delete", "rr1")
    cloud.cli("subnet", "delete", "rsa", "rsb")
    cloud.cli("network", "delete", "rna", "rnb")
    cloud.cli("security", "group", "delete", "ssh-test")
    expected = _ours(before, ids, cloud.root)
    gone = lambda: _ours(host_snapshot(), ids, cloud.root) == expected  # noqa: E731
    _wait("the data plane to be gone", gone, timeout=30)
    assert not any(v for k, v in expected.items() if k != "nft")
