"""A real guest reads its metadata from 169.254.169.254 (issue 17 item 4): ``novalite serve --driver
qemu --accelerator tcg --network-dataplane off`` (QEMU user-mode networking: the metadata NIC's
guestfwd relay) and the unmodified ``openstack`` CLI.

The default image boots with a key pair and no config drive: its init falls back to the metadata
service and prints ``uuid=.. hostname=.. source=metadata-service`` and the key's fingerprint; its
``#!/bin/sh`` user_data (itself read from the service) asks EC2 paths with busybox ``nc`` and
prints the answers. After a restart of the service, with the guest still running, a server
property set through the API shows in what the guest reads at its next boot (the relay in its
QEMU command line reaches the new service on the same socket).

A second service runs with ``--network-dataplane on``: a guest on a tenant network (no config
drive, no metadata NIC) gets a DHCP route to 169.254.169.254 via its network's DHCP namespace and
reads the same documents through the proxy there, identified by its port; deleting the network
removes the proxy with the namespace.

Needs QEMU and the image tools (``scripts/install-qemu.sh``): skips loudly without them, fails
under NOVALITE_REQUIRE_SERVICES=1 (the second also needs what tests/netns needs). Every QEMU
started here is killed and every file removed.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from novalite.guest.builder import GuestBuildError, build_guest_image
from novalite.network.dataplane import names
from tests.conftest import RunningServer, start_server, stop_server
from tests.e2e.test_qemu_networks import Cloud as NetCloud
from tests.e2e.test_qemu_servers import SYNC_INTERVAL, Cloud, _kill_guests, _qemu_pid, _wait
from tests.guest.conftest import _skip_or_fail, guest_cache_dir, require_qemu
from tests.netns.conftest import host_snapshot, require_netns

pytestmark = pytest.mark.e2e

USER_DATA = r"""#!/bin/sh
get() {
    printf 'GET %s HTTP/1.0\r\nHost: 169.254.169.254\r\n\r\n' "$1" |
        nc -w 10 169.254.169.254 80 | awk 'b {print; next} /^\r?$/ {b=1}'
}
echo "ec2-instance-id=$(get /latest/meta-data/instance-id)"
echo "ec2-hostname=$(get /latest/meta-data/hostname)"
echo "ec2-key=$(get /latest/meta-data/public-keys/0/openssh-key | cut -d' ' -f2)"
echo "meta-phase=$(get /openstack/latest/meta_data.json | grep -o '"phase": "[a-z]*"' | cut -d'"' -f4)"
"""


class UserModeCloud(Cloud):
    """The same service as tests/e2e/test_qemu_servers.py, with the network data plane off: guests
    are on QEMU user-mode networking and reach the metadata service through their relay."""

    def start(self) -> RunningServer:
        self.server = start_server(
            self.root,
            "--driver",
            "qemu",
            "--accelerator",
            "tcg",
            "--network-dataplane",
            "off",
            env_extra={
                "NOVALITE_GUEST_CACHE": str(guest_cache_dir()),
                "NOVALITE_SYNC_POWER_STATE_INTERVAL": SYNC_INTERVAL,
                "NOVALITE_SHUTDOWN_TIMEOUT": "30",
            },
        )
        return self.server


@pytest.fixture  # gone before the data plane test starts its own service: one QEMU service at a time
def cloud() -> Iterator[Cloud]:
    require_qemu()
    try:
        build_guest_image(guest_cache_dir())
    except GuestBuildError as exc:
        _skip_or_fail(f"cannot build the guest image: {exc}")
    root = Path(tempfile.mkdtemp(prefix="nvm-"))  # short: QEMU's socket paths
    c = UserModeCloud(root)
    try:
        c.start()
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
        c.stop()
        _kill_guests(root)
        shutil.rmtree(root, ignore_errors=True)


def _console_has(cloud: Cloud, uuid: str, *needles: str) -> str:
    def seen() -> str | None:
        text = cloud.console(uuid)
        return text if all(n in text for n in needles) else None

    found: str = _wait(
        f"{needles} on the console of {uuid}", seen, detail=lambda: cloud.console(uuid)[-3000:]
    )
    return found


def test_guest_reads_metadata_service_and_ec2_paths(cloud: Cloud) -> None:
    cloud.cli("keypair", "create", "mk")  # prints the private key
    key = cloud.cli("keypair", "show", "--public-key", "mk").stdout.split()[1]
    fingerprint = "SHA256:" + base64.b64encode(
        hashlib.sha256(base64.b64decode(key)).digest()
    ).decode().rstrip("=")
    user_data = cloud.root / "user-data.sh"
    user_data.write_text(USER_DATA)
    created = cloud.json(
        "server", "create", "--image", "novalite-guest", "--flavor", "g1.nano", "--key-name", "mk",
        "--user-data", str(user_data), "--no-network", "--wait", "md1",
    )  # fmt: skip
    assert created["status"] == "ACTIVE"
    uuid = created["id"]
    shown = cloud.json("server", "show", uuid, cloud="novalite-admin")
    name = shown.get("OS-EXT-SRV-ATTR:instance_name") or shown.get("instance_name")
    assert isinstance(name, str) and name.startswith("instance-"), shown
    ec2_id = "i-" + name.removeprefix("instance-")

    console = _console_has(cloud, uuid, f"novalite-guest ready {uuid}", "ec2-key=")
    assert f"uuid={uuid} hostname=md1 source=metadata-service" in console
    assert f"fingerprint={fingerprint}" in console
    assert f"ec2-instance-id={ec2_id}" in console
    assert "ec2-hostname=md1.novalocal" in console
    assert f"ec2-key={key}" in console
    # the guest has no config drive: everything came through its channel
    assert not (cloud.instances / uuid / "disk.config").exists()

    # the service restarts, the guest keeps running; what it reads next comes from the database now
    pid = _qemu_pid(cloud, uuid)
    assert pid is not None
    cloud.stop()
    cloud.start()
    assert _qemu_pid(cloud, uuid) == pid
    cloud.cli("server", "set", "--property", "phase=two", uuid)
    cloud.cli("server", "reboot", "--hard", "--wait", uuid)
    _console_has(cloud, uuid, "meta-phase=two")
    assert cloud.console(uuid).count(f"uuid={uuid} hostname=md1 source=metadata-service") >= 2
    cloud.cli("server", "delete", "--wait", uuid)
    assert not (cloud.instances / uuid).exists()


@pytest.fixture(scope="module")
def net_cloud() -> Iterator[NetCloud]:
    """``--network-dataplane on`` (the fixture of tests/e2e/test_qemu_networks.py, module-scoped here)."""
    require_qemu()
    require_netns()
    try:
        build_guest_image(guest_cache_dir())
    except GuestBuildError as exc:
        _skip_or_fail(f"cannot build the guest image: {exc}")
    root = Path(tempfile.mkdtemp(prefix="nvp-"))
    server = start_server(
        root,
        "--driver",
        "qemu",
        "--accelerator",
        "tcg",
        "--network-dataplane",
        "on",
        env_extra={"NOVALITE_GUEST_CACHE": str(guest_cache_dir())},
    )
    try:
        c = NetCloud(root, server)
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
        _remove_networks(root / "data")
        shutil.rmtree(root, ignore_errors=True)


def _remove_networks(data_dir: Path) -> None:
    """After a failure: this service's networks (dnsmasq, proxy, namespace, taps, bridge) only;
    a whole-host teardown would take other tests' networks too."""
    from novalite.network.dataplane import dhcp, l2

    for net_id in dhcp.running_networks(data_dir):
        dhcp.stop(net_id, data_dir)
        for member in l2.members(net_id):
            if names.is_tap_name(member):
                l2.remove_link(member)
        l2.remove_network(net_id, force=True)


def test_guest_on_a_tenant_network_reads_metadata_through_the_namespace_proxy(net_cloud: NetCloud) -> None:
    cloud = net_cloud
    cloud.cli("keypair", "create", "pk")
    key = cloud.cli("keypair", "show", "--public-key", "pk").stdout.split()[1]
    net_id = cloud.json("network", "create", "mdn")["id"]
    cloud.cli("subnet", "create", "--network", "mdn", "--subnet-range", "10.77.41.0/24", "mds")
    port_id = cloud.json(
        "port", "create", "--network", "mdn", "--fixed-ip", "subnet=mds,ip-address=10.77.41.21", "mdp"
    )["id"]
    user_data = cloud.root / "user-data.sh"
    user_data.write_text(USER_DATA + 'echo "ec2-local-ipv4=$(get /latest/meta-data/local-ipv4)"\n')
    created = cloud.json(
        "server", "create", "--image", "novalite-guest", "--flavor", "g1.nano", "--key-name", "pk",
        "--nic", "port-id=mdp", "--user-data", str(user_data), "--wait", "mdv",
    )  # fmt: skip
    assert created["status"] == "ACTIVE"
    uuid = created["id"]

    def seen() -> str | None:
        text = cloud.console(uuid)
        return text if "ec2-local-ipv4=" in text else None

    console = _wait("the guest's metadata answers on its console", seen)
    assert "net eth0 10.77.41.21/24" in console
    assert f"uuid={uuid} hostname=mdv source=metadata-service" in console
    assert f"ec2-key={key}" in console
    assert "ec2-hostname=mdv.novalocal" in console
    assert "ec2-local-ipv4=10.77.41.21" in console

    cloud.cli("server", "delete", "--wait", "mdv")
    cloud.cli("port", "delete", "mdp")
    cloud.cli("subnet", "delete", "mds")
    cloud.cli("network", "delete", "mdn")

    def left() -> list[str]:  # this network's parts only: other tests may run beside this one
        snap = host_snapshot()
        procs = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=False).stdout
        mine = (names.dhcp_namespace(net_id), names.bridge_name(net_id), names.tap_name(port_id))
        found = [n for n in (*snap["netns"], *snap["links"]) if n in mine]
        return found + [line for line in procs.splitlines() if net_id in line]

    _wait(
        "the network's namespace, bridge, tap, dnsmasq and proxy to go",
        lambda: not left(),
        detail=lambda: str(left()),
    )
