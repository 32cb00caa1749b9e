"""``createImage`` of a server booted from volume (Nova's ``snapshot_volume_backed``).

Each volume attached to the server gets a volume snapshot (forced: the volumes are in use); the
image holds no data (active, size 0) and describes how to boot from those snapshots: the
``block_device_mapping`` property (a JSON list of Nova's block device mapping v2 entries with
``source_type`` snapshot), ``bdm_v2`` and ``root_device_name``, plus the boot volume's image
metadata (``min_ram``, ``disk_format`` ...). Deleting the volumes later needs ``cascade``, as in
Cinder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from novalite import notifications
from novalite.context import RequestContext
from novalite.db.models.volume import Volume, VolumeAttachment
from novalite.domain.actions import SNAPSHOT
from novalite.image import service as images
from novalite.runtime import Runtime
from novalite.services import volume_proxies
from novalite.services.server_actions import check_not_locked, check_state, record_action
from novalite.services.server_devices import root_device
from novalite.services.server_queries import get_instance

SNAPSHOT_TASK = "image_snapshot"


@dataclass(frozen=True)
class _Disk:
    volume_id: str
    device: str | None
    size: int
    delete_on_termination: bool
    boot: bool


def is_volume_backed(rt: Runtime, ctx: RequestContext, server_id: str) -> bool:
    with rt.db.reader() as s:
        return not get_instance(s, ctx, server_id).image_ref


def _disks(rt: Runtime, ctx: RequestContext, server_id: str) -> tuple[str, str, list[_Disk], dict[str, str]]:
    """Check the server; (uuid, root device, its volumes, the boot volume's image metadata)."""
    with rt.db.reader() as s:
        inst = get_instance(s, ctx, server_id)
        check_not_locked(ctx, inst)
        check_state(inst, SNAPSHOT)
        root = root_device(inst)
        rows = s.execute(
            select(VolumeAttachment, Volume)
            .join(Volume, Volume.id == VolumeAttachment.volume_id)
            .where(VolumeAttachment.instance_uuid == inst.uuid, VolumeAttachment.detached_at.is_(None))
            .order_by(VolumeAttachment.created_at, VolumeAttachment.id)
        ).all()
        disks = [
            _Disk(
                att.volume_id,
                att.mountpoint,
                int(vol.size),
                bool(att.delete_on_termination),
                att.mountpoint == root,
            )
            for att, vol in rows
        ]
        meta = next((dict(vol.image_metadata or {}) for att, vol in rows if att.mountpoint == root), {})
        return inst.uuid, root, disks, meta


def _mapping(disk: _Disk, snapshot_id: str) -> dict[str, Any]:
    return {
        "boot_index": 0 if disk.boot else None,
        "connection_info": None,
        "delete_on_termination": disk.delete_on_termination,
        "destination_type": "volume",
        "device_name": disk.device,
        "device_type": "disk",
        "disk_bus": "virtio",
        "guest_format": None,
        "image_id": None,
        "no_device": None,
        "snapshot_id": snapshot_id,
        "source_type": "snapshot",
        "tag": None,
        "volume_id": None,
        "volume_size": disk.size,
        "volume_type": None,
    }


def snapshot(
    rt: Runtime, ctx: RequestContext, server_id: str, req: dict[str, Any], owner: RequestContext
) -> str:
    """Snapshot every volume of the server and create the data-less image (``owner``: the
    caller acting for its project, the image's owner); returns the image id."""
    uuid, root, disks, meta = _disks(rt, ctx, server_id)
    mappings = []
    for disk in disks:
        fields: dict[str, Any] = {"name": f"snapshot for {req['name']}", "description": None, "metadata": {}}
        view, finish = volume_proxies.create_snapshot(rt, ctx, disk.volume_id, force=True, fields=fields)
        finish()
        mappings.append(_mapping(disk, str(view["id"])))
    props: dict[str, Any] = {
        k: str(v)
        for k, v in meta.items()
        if k not in ("image_id", "image_name", "size", "checksum", "min_ram", "min_disk", "disk_format")
        and k not in ("container_format",)
    }
    with rt.db.session() as s:
        image = images.create_image(
            s,
            owner,
            {
                "name": req["name"],
                "visibility": "private",
                "disk_format": meta.get("disk_format") or "raw",
                "container_format": meta.get("container_format") or "bare",
                "min_ram": int(meta.get("min_ram") or 0),
                "min_disk": int(meta.get("min_disk") or 0),
                **props,
                "block_device_mapping": json.dumps(mappings),
                "bdm_v2": "True",
                "root_device_name": root,
                **{k: str(v) for k, v in (req.get("metadata") or {}).items()},
            },
        )
        image_id = str(image.id)
        inst = get_instance(s, ctx, server_id)
        record_action(s, ctx, inst, "createImage", event="compute_snapshot_instance")
    notifications.snapshot_in(rt.db, "start", uuid, image_id, task_state=SNAPSHOT_TASK)
    images.upload_bytes(rt, owner, image_id, b"")  # no data: active, size 0
    notifications.snapshot_in(rt.db, "end", uuid, image_id)
    return image_id
