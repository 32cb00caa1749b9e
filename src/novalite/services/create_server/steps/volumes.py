"""Block devices against the volume and image services (§2.2 step 2, §2.3 7.5 storage part).

Existing volumes must be visible and free, snapshots cannot be found (this cloud keeps none),
image BDMs other than the server's own image must exist, and a volume-backed server's boot
volume must be bootable. Attaching happens later, on the compute host.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from novalite.context import RequestContext
from novalite.errors import BadRequest
from novalite.image.service import get_image
from novalite.volume import service as volumes


def _invalid(details: str, kind: str) -> BadRequest:
    return BadRequest(f"Block Device Mapping is Invalid: {details}", kind=kind)


def _check_volume(s: Session, ctx: RequestContext, bdm: dict[str, Any]) -> None:
    volume_id = str(bdm.get("volume_id") or "")
    vol = volumes.get_volume(s, ctx, volume_id)
    if vol is None:
        raise _invalid(f"failed to get volume {volume_id}.", "InvalidBDMVolume")
    if vol.status != "available" and not vol.multiattach:
        raise BadRequest(
            f"Invalid volume: volume {volume_id} status must be available, but the current status "
            f"is {vol.status}.",
            kind="InvalidVolume",
        )
    if bdm.get("boot_index") == 0 and not vol.bootable:
        raise BadRequest(f"Block Device {volume_id} is not bootable.", kind="InvalidBDMVolumeNotBootable")
    bdm.setdefault("volume_size", vol.size)  # the size the build needs, when the request left it out


def _check_image(s: Session, ctx: RequestContext, image_ref: str, bdm: dict[str, Any]) -> None:
    image_id = str(bdm.get("image_id") or "")
    if image_id and image_id == image_ref:
        return
    image = get_image(s, ctx, image_id)
    if image is None:
        raise _invalid(f"failed to get image {image_id}.", "InvalidBDMImage")
    size, min_disk = int(bdm.get("volume_size") or 0), int(image.min_disk or 0)
    if bdm.get("boot_index") == 0 and bdm.get("destination_type") == "volume" and 0 < size < min_disk:
        raise BadRequest(
            f"Volume is smaller than the minimum size specified in image metadata. Volume size is "
            f"{size * 1024**3} bytes, minimum size is {min_disk * 1024**3} bytes.",
            kind="VolumeSmallerThanMinDisk",
        )  # §2.2 10.8


def check_block_device_sources(
    s: Session, ctx: RequestContext, image_ref: str, bdms: list[dict[str, Any]]
) -> None:
    """Each BDM's source exists and may be used by ctx's project (``image_ref``: the server's own
    image, checked already)."""
    for bdm in bdms:
        source = bdm.get("source_type")
        if source == "volume":
            _check_volume(s, ctx, bdm)
        elif source == "snapshot":
            snap = volumes.get_snapshot(s, ctx, str(bdm.get("snapshot_id") or ""))
            if snap is None:
                raise _invalid(f"failed to get snapshot {bdm.get('snapshot_id')}.", "InvalidBDMSnapshot")
            bdm.setdefault("volume_size", snap.size)
        elif source == "image":
            _check_image(s, ctx, image_ref, bdm)
