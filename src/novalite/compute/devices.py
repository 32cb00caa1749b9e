"""A compute agent's side of volume and interface attach/detach on real guests (issue 17).

Attaching, the API makes the records (the volume attachment ``attaching``, the port) and asks
the host with ``DeviceAction`` (a call, ``ComputeClient.device_action``); here the driver plugs
the device (``virt.driver.DeviceDriver``). Answers: ``{"done": True}``; ``{"done": False}`` when
the driver has no device hooks (nothing to plug: the records are all there is); ``{"error":
reason}`` when the driver failed (the API undoes its records). Detaching is a cast
(``ComputeClient.device_cast``: the guest may take up to the driver's unplug timeout to release
the device, and a call would hold the agent's queue meanwhile): the driver unplugs, then the
agent deletes the attachment (volume ``available``) or the port, or on failure gives the volume
back ``in-use`` with its attachment; either way the ``compute_detach_*`` event says how it went.

:func:`block_devices` gives a build the instance's attached volumes with their files, so the
driver boots from the root volume and attaches the others at spawn.
"""

from __future__ import annotations

import logging
import traceback
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from novalite.compute import actions
from novalite.compute.build import _network_info
from novalite.compute.guest_spec import guest_spec
from novalite.compute.rpcapi import DeviceAction
from novalite.context import RequestContext
from novalite.db.base import Database
from novalite.db.models.compute import Instance
from novalite.db.models.volume import Volume, VolumeAttachment
from novalite.errors import NotFound
from novalite.messaging.messages import context_from_dict
from novalite.services import server_devices
from novalite.virt.driver import DriverError
from novalite.volume import attachments

if TYPE_CHECKING:
    from novalite.compute.manager import ComputeAgent

LOG = logging.getLogger(__name__)
ACTIONS = ("attach_volume", "detach_volume", "attach_interface", "detach_interface")
DETACHES = ("detach_volume", "detach_interface")  # casts: the agent writes their outcome


def device_action(agent: ComputeAgent, msg: DeviceAction) -> dict[str, Any]:
    if msg.action not in ACTIONS:
        return {"error": f"Unknown device action {msg.action!r}"}
    hook = getattr(agent.driver, msg.action, None)  # optional: see DeviceDriver
    if hook is None:
        if msg.action in DETACHES:  # nothing to unplug: the records are all there is
            agent.db.write(lambda s: _detached(s, agent.host, msg))
        return {"done": False}
    with agent.db.reader() as s:
        inst = s.scalars(select(Instance).where(Instance.uuid == msg.instance_uuid)).first()
        if inst is None or inst.deleted:
            return {"error": f"Instance {msg.instance_uuid} could not be found."}
        guest = guest_spec(
            inst,
            agent.host,
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
        reason = str(exc)
        if msg.action in DETACHES:
            tb = traceback.format_exc()
            agent.db.write(lambda s: _detach_failed(s, agent.host, msg, reason, tb))
        return {"error": reason}
    if msg.action in DETACHES:
        agent.db.write(lambda s: _detached(s, agent.host, msg))
    return {"done": True}


def _event(s: Session, host: str, msg: DeviceAction, *, ok: bool, reason: str = "", tb: str = "") -> None:
    ctx = context_from_dict(msg.context)
    action_id = actions.find_action(
        s,
        msg.instance_uuid,
        msg.action,
        user_id=ctx.user_id,
        project_id=ctx.project_id,
        request_id=ctx.request_id,
    )
    details = f"{msg.action} of instance {msg.instance_uuid} failed: {reason}"[:255] if not ok else None
    actions.record_event(
        s, action_id, f"compute_{msg.action}", ok=ok, host=host, traceback=tb or None, details=details
    )


def _detached(s: Session, host: str, msg: DeviceAction) -> None:
    """The guest let the device go: the volume's attachment goes (``available``), or the port is
    deleted (Nova made it) or unbound (the user's)."""
    inst = s.scalars(select(Instance).where(Instance.uuid == msg.instance_uuid)).first()
    if inst is None:
        return
    if msg.action == "detach_volume":
        rows = s.scalars(
            select(VolumeAttachment).where(
                VolumeAttachment.instance_uuid == inst.uuid, VolumeAttachment.volume_id == msg.volume_id
            )
        )
        for att in list(rows):
            attachments.detach_volume(s, RequestContext.system(), att.id)
        server_devices.forget_tag(inst, msg.volume_id)
    else:
        try:
            server_devices.release_interface(s, inst, msg.port_id)
        except NotFound:
            pass  # released already
    _event(s, host, msg, ok=True)


def _detach_failed(s: Session, host: str, msg: DeviceAction, reason: str, tb: str) -> None:
    """The guest kept the device: a volume is ``in-use`` again, still attached; the port stays."""
    if msg.action == "detach_volume":
        vol = s.get(Volume, msg.volume_id)
        if vol is not None and vol.status == "detaching":
            vol.status = "in-use"
    _event(s, host, msg, ok=False, reason=reason, tb=tb)


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
