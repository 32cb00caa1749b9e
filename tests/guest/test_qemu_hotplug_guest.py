"""A disk the guest does not release stays attached (QemuDriver.detach_volume on a real guest).

A paused guest cannot acknowledge the ACPI eject: the detach fails after the unplug timeout,
the disk is still plugged and still in launch.json. Once the guest runs again it releases the
disk (QEMU's unplug request is still pending) and a second detach completes. Boots one guest
of the default image (TCG); every QEMU started is killed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from novalite.guest.builder import GuestImage
from novalite.virt.driver import DriverError
from tests.guest.conftest import require_qemu
from tests.guest.test_qemu_driver import READY, image_meta, instances, make_driver, spec, wait_console

__all__ = ["image_meta", "instances"]  # that module's fixtures, used here

VOLUME = "1b2c3d4e-5f60-4718-9a0b-c1d2e3f4a5b6"


def test_a_disk_the_guest_does_not_release_stays_attached(
    instances: Path, guest_image: GuestImage, image_meta: dict[str, Any]
) -> None:
    require_qemu()
    driver = make_driver(instances, guest_image)
    driver.unplug_timeout = 5.0
    guest = spec(image_meta)
    volume = instances.parent / "volume"
    with volume.open("wb") as f:
        f.truncate(64 * 1024 * 1024)
    driver.spawn(guest)
    wait_console(driver, guest, READY)
    driver.attach_volume(guest, VOLUME, str(volume))
    wait_console(driver, guest, r"novalite-guest: disk added vdb")
    launch = instances / guest.uuid / "launch.json"

    driver.pause(guest)
    with pytest.raises(DriverError, match="did not release volume"):
        driver.detach_volume(guest, VOLUME)
    assert "disk-vol-" in " ".join(json.loads(launch.read_text())["argv"])

    driver.unpause(guest)
    wait_console(driver, guest, r"novalite-guest: disk removed vdb")  # the pending unplug completes
    driver.detach_volume(guest, VOLUME)
    assert "disk-vol-" not in " ".join(json.loads(launch.read_text())["argv"])
    driver.destroy(guest)
    assert not (instances / guest.uuid).exists()
