"""The default guest image boots in real QEMU (TCG) like a cloud image and acts on its metadata.

The image is built once into ``$NOVALITE_GUEST_CACHE`` (default ``~/.cache/novalite/guest``,
see conftest.py) and every guest runs on a throw-away qcow2 overlay.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from novalite.guest.builder import GuestBuildError, build_guest_image
from novalite.virt.configdrive import ConfigDriveData, config_drive_files, write_config_drive
from tests.guest.conftest import QemuGuests, guest_cache_dir

USER_DATA = b'#!/bin/sh\necho "user-data-marker host=$(hostname)"\n'


def public_key(comment: str = "") -> tuple[str, str]:
    """A fresh OpenSSH ed25519 public key line and its SHA256 fingerprint (as ssh-keygen -l)."""
    raw = (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    blob = base64.b64decode(raw.split()[1])
    fingerprint = "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return (f"{raw} {comment}" if comment else raw) + "\n", fingerprint


def drive_data(hostname: str) -> tuple[ConfigDriveData, str]:
    key, _ = public_key("alice@laptop")
    bare_key, bare_fingerprint = public_key()
    data = ConfigDriveData(
        uuid=str(uuid.uuid4()),
        hostname=f"{hostname}.novalocal",
        name=hostname,
        public_keys={"alice": key, "bare": bare_key},
        user_data=USER_DATA,
        project_id="demo",
        availability_zone="nova",
    )
    return data, bare_fingerprint


def test_image_is_small_and_cached(guest_image):
    assert guest_image.path.stat().st_size < 40 * 1024 * 1024
    info = json.loads(
        subprocess.run(
            ["qemu-img", "info", "--output", "json", str(guest_image.path)],
            capture_output=True,
            check=True,
            text=True,
        ).stdout
    )
    assert info["format"] == "qcow2" and "backing-filename" not in info
    again = build_guest_image(guest_cache_dir())
    assert again.built is False and again.path == guest_image.path
    cli = subprocess.run(
        [sys.executable, "-m", "novalite.guest.builder", "--output", str(guest_cache_dir())],
        capture_output=True,
        check=True,
        text=True,
    )
    assert cli.stdout.startswith(f"{guest_image.path} up to date (kernel {guest_image.kernel_version}")


def test_missing_tools_are_named_with_their_packages(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(GuestBuildError) as err:
        build_guest_image(tmp_path / "out")
    assert "qemu-utils" in str(err.value) and "mtools" in str(err.value)
    assert "scripts/install-qemu.sh" in str(err.value)


def test_boots_from_disk_reads_config_drive_and_powers_off(qemu_guests: QemuGuests):
    data, bare_fingerprint = drive_data("web-1")
    drive = write_config_drive(data, qemu_guests.path("disk.config"))
    guest = qemu_guests.start(
        "-drive", f"file={qemu_guests.overlay()},if=virtio,format=qcow2",
        "-drive", f"file={drive},media=cdrom,format=raw,readonly=on",
    )  # fmt: skip
    guest.wait_for(rf"novalite-guest ready {data.uuid}")
    console = guest.console_text()
    assert "SYSLINUX" in console  # booted by the BIOS from the disk, not with -kernel
    assert f"novalite-guest: uuid={data.uuid} hostname=web-1 source=config-drive" in console
    assert "novalite-guest: key=alice@laptop type=ssh-ed25519" in console
    assert f"novalite-guest: key={bare_fingerprint} " in console
    assert "user-data-marker host=web-1" in console

    guest.qmp("system_powerdown")
    assert guest.wait_exit() == 0, (
        "the guest did not power off on the ACPI power button:\n" + guest.diagnostics()
    )
    assert "novalite-guest: power button, powering off" in guest.console_text()


RESPONDER = r"""
import os, sys
root, log = sys.argv[1], sys.argv[2]
request = sys.stdin.buffer.readline().decode("latin-1").split()
while sys.stdin.buffer.readline() not in (b"\r\n", b"\n", b""):
    pass
path = request[1] if len(request) > 1 else "/"
full = os.path.realpath(os.path.join(root, path.lstrip("/")))
if full.startswith(os.path.realpath(root) + os.sep) and os.path.isfile(full):
    status, body = "200 OK", open(full, "rb").read()
else:
    status, body = "404 Not Found", b"not found\n"
with open(log, "a") as f:
    f.write(f"{path} {status}\n")
head = f"HTTP/1.0 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
sys.stdout.buffer.write(head.encode() + body)
sys.stdout.buffer.flush()
"""


def test_reads_metadata_service_without_config_drive(qemu_guests: QemuGuests):
    """No config drive: the guest gets DHCP and reads http://169.254.169.254/openstack/.

    QEMU user networking with restrict=on (nothing reachable but the forward). eth0 is the
    server's port, leased its fixed IP; QEMU allows a guestfwd to 169.254.169.254 only on a
    169.254.0.0/16 network, so eth1 is a second restricted NIC that carries only the
    metadata service: its connections to 169.254.169.254:80 go to a small responder
    serving the same documents a config drive would hold.
    """
    data, _ = drive_data("meta-1")
    docroot = qemu_guests.path("metadata")
    for name, content in config_drive_files(data).items():
        target = docroot / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    responder = qemu_guests.path("responder.py")
    responder.write_text(RESPONDER)
    log = qemu_guests.path("requests.log")
    forward = f"tcp:169.254.169.254:80-cmd:{sys.executable} {responder} {docroot} {log}"
    assert "," not in forward
    guest = qemu_guests.start(
        "-drive", f"file={qemu_guests.overlay()},if=virtio,format=qcow2",
        "-netdev", "user,id=port,restrict=on,net=10.20.30.0/24,dhcpstart=10.20.30.7",
        "-device", "virtio-net-pci,netdev=port",
        "-netdev", f"user,id=md,restrict=on,net=169.254.0.0/16,guestfwd={forward}",
        "-device", "virtio-net-pci,netdev=md",
    )  # fmt: skip
    guest.wait_for(rf"novalite-guest ready {data.uuid}")
    console = guest.console_text()
    assert "novalite-guest: net eth0 10.20.30.7/24" in console
    assert "novalite-guest: net eth1 169.254." in console
    assert f"novalite-guest: uuid={data.uuid} hostname=meta-1 source=metadata-service" in console
    assert "novalite-guest: key=alice@laptop" in console
    assert "user-data-marker host=meta-1" in console
    assert "/openstack/latest/meta_data.json 200 OK" in Path(log).read_text()
