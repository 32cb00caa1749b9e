"""A real guest reads its metadata from 169.254.169.254 (issue 17 item 4): ``novalite serve --driver
qemu --accelerator tcg --network-dataplane off`` (QEMU user-mode networking: the metadata NIC's
guestfwd relay) and the unmodified ``openstack`` CLI.

The default image boots with a key pair and no config drive: its init falls back to the metadata
service and prints ``uuid=.. hostname=.. source=metadata-service`` and the key's fingerprint; its
``#!/bin/sh`` user_data (itself read from the service) asks EC2 paths with busybox ``nc`` and
prints the answers. After a restart of the service, with the guest still running, a server
property set through the API shows in what the guest reads at its next boot (the relay in its
QEMU command line reaches the new service on the same socket).

Needs QEMU and the image tools (``scripts/install-qemu.sh``): skips loudly without them, fails
under NOVALITE_REQUIRE_SERVICES=1. Every QEMU started here is killed and every file removed.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from novalite.guest.builder import GuestBuildError, build_guest_image
from tests.conftest import RunningServer, start_server
from tests.e2e.test_qemu_servers import SYNC_INTERVAL, Cloud, _kill_guests, _qemu_pid, _wait
from tests.guest.conftest import _skip_or_fail, guest_cache_dir, require_qemu

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


@pytest.fixture(scope="module")
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
