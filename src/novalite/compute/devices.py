"""A compute agent's side of volume and interface attach/detach on real guests (issue 17).

The API keeps the records (the volume attachment, the volume's status, the port) and asks the
host with ``DeviceAction`` (a call, ``ComputeClient.device_action``); here the driver plugs or
unplugs the device (``virt.driver.DeviceDriver``). Answers: ``{"done": True}``; ``{"done":
False}`` when the driver has no device hooks (nothing to plug: the records are all there is);
``{"error": reason}`` when the driver failed (the API undoes or keeps its records accordingly).

:func:`block_devices` gives a build the instance's attached volumes with their files, so the
driver boots from the root volume and attaches the others at spawn.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from novalite.compute.build import _network_info
from novalite.compute.rpcapi import DeviceAction
from novalite.db.base import Database
from novalite.db.models.compute import Instance
from novalite.db.models.volume import Volume, VolumeAttachment
from novalite.virt.driver import DriverError, GuestSpec

if TYPE_CHECKING:
    from novalite.compute.manager import ComputeAgent

LOG = logging.getLogger(__name__)
ACTIONS = ("attach_volume", "detach_volume", "attach_interface", "detach_interface")


def device_action(agent: ComputeAgent, msg: DeviceAction) -> dict[str, Any]:
    if msg.action not in ACTIONS:
        return {"error": f"Unknown device action {msg.action!r}"}
    hook = getattr(agent.driver, msg.action, None)  # optional: see DeviceDriver
    if hook is None:
        return {"done": False}
    with agent.db.reader() as s:
        inst = s.scalars(select(Instance).where(Instance.uuid == msg.instance_uuid)).first()
        if inst is None or inst.deleted:
            return {"error": f"Instance {msg.instance_uuid} could not be found."}
        guest = GuestSpec(
            uuid=inst.uuid,
            name=f"instance-{inst.id:08x}",
            host=agent.host,
            node=inst.node or agent.host,
            flavor=dict(inst.flavor or {}),
        )
        if msg.action == "attach_volume":
            vol = s.get(Volume, msg.volume_id)
            args: tuple[Any, ...] = (msg.volume_id, vol.location if vol is not None else None)
        elif msg.action == "detach_volume":
            args = (msg.volume_id,)
        elif msg.action == "attach_interface":
            port = next((p for p in _network_info(s, inst.uuid) if p.get("port_id") == msg.port_id), None)
            if port is None:
                return {"error": f"Port {msg.port_id} is not bound to instance {inst.uuid}"}
            args = (port,)
        else:
            args = (msg.mac,)
    try:
        hook(guest, *args)
    except DriverError as exc:
        LOG.warning("%s on %s (%s) failed: %s", msg.action, msg.instance_uuid, agent.host, exc)
        return {"error": str(exc)}
    return {"done": True}


def block_devices(db: Database, instance_uuid: str) -> tuple[dict[str, Any], ...]:
    """The instance's attached volumes for its driver: volume_id, path (the volume's file),
    device_name, boot_index (0 for the root volume of a server booted from volume, else None);
    the root first, then by device name."""
    with db.reader() as s:
        return attached_volumes(s, instance_uuid)


def attached_volumes(s: Session, instance_uuid: str) -> tuple[dict[str, Any], ...]:
    inst = s.execute(select(Instance.root_device_name).where(Instance.uuid == instance_uuid)).first()
    if inst is None:
        return ()
    root = inst.root_device_name or "/dev/vda"
    rows = s.execute(
        select(VolumeAttachment.volume_id, VolumeAttachment.mountpoint, Volume.location)
        .join(Volume, Volume.id == VolumeAttachment.volume_id)
        .where(VolumeAttachment.instance_uuid == instance_uuid, VolumeAttachment.detached_at.is_(None))
    ).all()
    out = [
        {
            "volume_id": row.volume_id,
            "path": row.location,
            "device_name": row.mountpoint,
            "boot_index": 0 if row.mountpoint == root else None,  # an image's root is never a volume's
        }
        for row in rows
    ]
    out.sort(key=lambda d: (d["boot_index"] != 0, str(d["device_name"] or "")))
    return tuple(out)
