"""QemuDriver's device actions on a guest that is not running, and volumes made from images:

* a stopped guest's attach/detach only changes ``launch.json`` (the device appears at its next
  start, or is gone from it);
* a guest booting from a volume without a data file (``volume_storage=records``) is refused
  before anything is made;
* a volume made from a qcow2 image holds the raw disk (a guest boots from it); a qcow2 naming a
  backing file is copied as it is, never followed.

No guest boots here (the e2e test tests/e2e/test_qemu_devices.py boots them). Needs qemu-img and
qemu-system-x86_64: skips loudly without them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from novalite.virt.driver import BuildAbort, GuestSpec
from novalite.virt.qemu import QemuDriver
from novalite.volume.storage import FileStorage
from tests.guest.conftest import require_qemu

UUID = "0f0c3a9e-1b2c-4d5e-8f90-123456789abc"
VOLUME = "1b2c3d4e-5f60-4718-9a0b-c1d2e3f4a5b6"
PORT = {
    "port_id": "5f0c3a9e-1b2c-4d5e-8f90-123456789abc",
    "mac_address": "fa:16:3e:12:34:56",
    "fixed_ips": [{"ip_address": "10.0.0.5", "cidr": "10.0.0.0/24"}],
    "gateway": "10.0.0.1",
}


@pytest.fixture
def root() -> Iterator[Path]:
    require_qemu()
    path = Path(tempfile.mkdtemp(prefix="nvo-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _driver(root: Path) -> QemuDriver:
    def no_images(image_id: str) -> Iterator[bytes]:
        raise AssertionError(f"no image should be fetched ({image_id})")

    return QemuDriver(root / "instances", fetch=no_images, accelerator="tcg")


def _guest(**kw: object) -> GuestSpec:
    return GuestSpec(uuid=UUID, name="vm", host="h", node="h", flavor={"memory_mb": 128}, **kw)  # type: ignore[arg-type]


def _argv(root: Path) -> list[str]:
    argv: list[str] = json.loads((root / "instances" / UUID / "launch.json").read_text())["argv"]
    return argv


def test_a_stopped_guest_gets_its_devices_at_next_start(root: Path) -> None:
    driver = _driver(root)
    d = root / "instances" / UUID
    d.mkdir(parents=True)
    base = ["qemu-system-x86_64", "-name", f"guest={UUID}"]
    (d / "launch.json").write_text(json.dumps({"argv": base}))
    volume = root / "volume-1"
    volume.write_bytes(b"\0" * 4096)

    driver.attach_volume(_guest(), VOLUME, str(volume))
    driver.attach_volume(_guest(), VOLUME, str(volume))  # once only
    argv = _argv(root)
    blockdevs = [json.loads(argv[i + 1]) for i, a in enumerate(argv) if a == "-blockdev"]
    assert [b["file"]["filename"] for b in blockdevs] == [str(volume)]
    driver.attach_interface(_guest(), PORT)
    argv = _argv(root)
    assert any(a.startswith("virtio-net-pci,") and "mac=fa:16:3e:12:34:56" in a for a in argv)
    assert any(a.startswith("user,") and "dhcpstart=10.0.0.5" in a for a in argv)

    driver.detach_volume(_guest(), VOLUME)
    driver.detach_interface(_guest(), "fa:16:3e:12:34:56")
    assert _argv(root) == base
    with pytest.raises(BuildAbort, match="no data file"):
        driver.attach_volume(_guest(), VOLUME, None)
    assert _argv(root) == base


def test_booting_from_a_volume_without_data_is_refused_and_leaves_nothing(root: Path) -> None:
    driver = _driver(root)
    devices = ({"volume_id": VOLUME, "path": None, "device_name": "/dev/vda", "boot_index": 0},)
    with pytest.raises(BuildAbort, match="no data file"):
        driver.spawn(_guest(block_devices=devices))
    assert not (root / "instances" / UUID).exists()


def _qcow2(path: Path, *extra: str) -> None:
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", *extra, str(path), "1M"], check=True)


def test_a_volume_from_a_qcow2_image_is_its_raw_disk(root: Path) -> None:
    image = root / "image.qcow2"
    _qcow2(image)
    subprocess.run(["qemu-io", "-c", "write -P 0x5a 0 512", str(image)], check=True, capture_output=True)
    storage = FileStorage(root / "volumes")
    location = storage.create_from_image(VOLUME, 1, str(image))
    assert location is not None
    data = Path(location).read_bytes()
    assert data[:512] == b"\x5a" * 512 and len(data) == 1024**3  # raw, grown to the volume's size

    secret = root / "host-file"
    secret.write_bytes(b"secret" * 100)
    sneaky = root / "sneaky.qcow2"
    _qcow2(sneaky, "-b", str(secret), "-F", "raw")
    location = storage.create_from_image(OTHER := "2b2c3d4e-5f60-4718-9a0b-c1d2e3f4a5b6", 1, str(sneaky))
    assert location is not None and b"secret" not in Path(location).read_bytes()  # copied, not followed
    assert Path(location).read_bytes()[:4] == b"QFI\xfb" and OTHER in location
