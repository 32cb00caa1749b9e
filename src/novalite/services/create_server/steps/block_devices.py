"""Block device mapping syntax checks and the v2 form (§1.3 steps 8-9, §2.2 step 8).

Storage checks (volumes exist, attachments) belong to the volume service; here are the
format rules, the image->local root BDM rules, the boot sequence and the flavor-size rules.
"""

from __future__ import annotations

from typing import Any

from novalite.domain.flavor import FlavorSnapshot
from novalite.errors import BadRequest
from novalite.services.create_server.request import CreateServerRequest, to_bool

ROOT_DEVICE = "vda"
MAX_LOCAL_BLOCK_DEVICES = 3
DISK_BUSES = {"virtio", "scsi", "ide", "usb", "fdc", "sata", "xen", "lxc", "uml", "sd", "fd", "hd"}


def invalid_bdm(details: str, kind: str = "InvalidBDMFormat") -> BadRequest:
    return BadRequest(f"Block Device Mapping is Invalid: {details}", kind=kind)


def resolve_image_ref(req: CreateServerRequest) -> str:
    """§1.3 step 9: imageRef may only be empty when block devices are given."""
    if not req.image_ref and req.has_bdm:
        return ""
    if req.image_ref:
        return req.image_ref
    raise BadRequest("Missing imageRef attribute")


def convert_v2(req: CreateServerRequest) -> list[dict[str, Any]]:
    """``BlockDeviceDict.from_api`` for each v2 item: uuid -> <source>_id, image->local rules."""
    out = []
    for item in req.bdm_v2:
        bdm = dict(item)
        source = bdm.get("source_type")
        dest = bdm.get("destination_type")
        uuid = bdm.pop("uuid", None)
        if source == "blank" and uuid:
            raise invalid_bdm("Invalid device UUID.")
        if source and source != "blank":
            if not uuid and not bdm.get(f"{source}_id"):
                raise invalid_bdm("Missing device UUID.")
            bdm[f"{source}_id"] = uuid or bdm.get(f"{source}_id")
        boot_index = bdm.get("boot_index")
        bdm["boot_index"] = int(boot_index) if boot_index is not None else None
        if source == "image" and dest == "local" and not (req.image_ref and bdm["boot_index"] == 0):
            raise invalid_bdm("Mapping image to local is not supported.")
        if bdm.get("volume_type") and (dest == "local" or source == "volume"):
            detail = (
                "Specifying a volume_type with destination_type=local is not supported."
                if dest == "local"
                else "Specifying volume type to existing volume is not supported."
            )
            raise invalid_bdm(detail)
        if "delete_on_termination" in bdm:
            bdm["delete_on_termination"] = to_bool(bdm["delete_on_termination"])
        out.append(bdm)
    return out


def convert_legacy(req: CreateServerRequest, image_ref: str) -> list[dict[str, Any]]:
    """Legacy (or no) BDMs to v2; an image boot gets an image->local root disk at boot index 0."""
    out: list[dict[str, Any]] = []
    root_is_volume = False
    for item in req.legacy_bdm:
        device = str(item.get("device_name") or "").removeprefix("/dev/")
        is_root = device == ROOT_DEVICE
        bdm: dict[str, Any] = {
            "device_name": item.get("device_name"),
            "boot_index": 0 if is_root else None,
            "delete_on_termination": to_bool(item.get("delete_on_termination", False)),
        }
        if item.get("no_device"):
            bdm.update(no_device=True, source_type="blank", destination_type="local")
        elif item.get("snapshot_id"):
            bdm.update(source_type="snapshot", destination_type="volume", snapshot_id=item["snapshot_id"])
        elif item.get("volume_id"):
            bdm.update(source_type="volume", destination_type="volume", volume_id=item["volume_id"])
        else:
            virtual = str(item.get("virtual_name") or "")
            bdm.update(
                source_type="blank",
                destination_type="local",
                guest_format="swap" if virtual == "swap" else None,
            )
        if item.get("volume_size") is not None:
            bdm["volume_size"] = int(item["volume_size"])
        root_is_volume = root_is_volume or (is_root and bdm["destination_type"] == "volume")
        out.append(bdm)
    if image_ref and not root_is_volume:
        out.insert(
            0,
            {
                "source_type": "image",
                "destination_type": "local",
                "image_id": image_ref,
                "boot_index": 0,
                "delete_on_termination": True,
            },
        )
    return out


def check_boot_sequence(bdms: list[dict[str, Any]]) -> None:
    """Boot indexes >= 0 must be exactly 0, 1, 2, ... and there must be at least one."""
    indexes = sorted(
        b["boot_index"] for b in bdms if b.get("boot_index") is not None and b["boot_index"] >= 0
    )
    if not indexes or indexes != list(range(len(indexes))):
        raise invalid_bdm(
            "Boot sequence for the instance and image/block device mapping combination is not valid.",
            kind="InvalidBDMBootSequence",
        )


def check_multi_create(req: CreateServerRequest, bdms: list[dict[str, Any]]) -> None:
    if (req.min_count > 1 or req.max_count > 1) and any(b.get("source_type") == "volume" for b in bdms):
        raise BadRequest("Cannot attach one or more volumes to multiple instances", kind="InvalidRequest")


def is_boot_from_volume(bdms: list[dict[str, Any]]) -> bool:
    return any(b.get("boot_index") == 0 and b.get("destination_type") == "volume" for b in bdms)


def check_against_flavor(bdms: list[dict[str, Any]], flavor: FlavorSnapshot) -> None:
    """Per-instance BDM rules that need the flavor (§2.3 7.5, format part)."""
    for bdm in bdms:
        if bdm.get("disk_bus") and bdm["disk_bus"] not in DISK_BUSES:
            raise BadRequest("Block Device Mapping is Invalid.", kind="InvalidBDMDiskBus")
        if (
            bdm.get("destination_type") == "volume"
            and bdm.get("source_type") in ("image", "blank")
            and not bdm.get("volume_size")
        ):
            raise BadRequest(
                "Block Device Mapping is Invalid: You specified a volume without a size.", kind="InvalidBDM"
            )
    local = [
        b
        for b in bdms
        if b.get("destination_type") == "local" and b.get("source_type") == "blank" and not b.get("no_device")
    ]
    swaps = [b for b in local if b.get("guest_format") == "swap"]
    if len(swaps) > 1:
        raise invalid_bdm("More than one swap drive requested.")
    if swaps and int(swaps[0].get("volume_size") or 0) > int(flavor.swap or 0):  # both MiB
        raise BadRequest(
            "Swap drive requested is larger than instance type allows.", kind="InvalidBDMSwapSize"
        )
    ephemeral = sum(int(b.get("volume_size") or 0) for b in local if b.get("guest_format") != "swap")
    if ephemeral > int(flavor.ephemeral_gb or 0):
        raise BadRequest(
            "Ephemeral disks requested are larger than the instance type allows. If no size is "
            "given in one block device mapping, flavor ephemeral size will be used.",
            kind="InvalidBDMEphemeralSize",
        )
    all_local = [b for b in bdms if b.get("destination_type") == "local" and not b.get("no_device")]
    if len(all_local) > MAX_LOCAL_BLOCK_DEVICES:
        raise invalid_bdm(
            "You specified more local devices than the limit allows", kind="InvalidBDMLocalsLimit"
        )
