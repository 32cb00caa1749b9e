"""Volume and interface attach/detach, as the os-volume_attachments and os-interface routes run
them: on a simulated host only the records change (``server_devices``); on a host with real
guests (QEMU) its agent plugs the device too (``DeviceAction``, a call: ``compute.devices``) and
the records follow what the guest got.

- attach volume: the attachment is created ``attaching`` (volume ``attaching``) and committed,
  the host hot-plugs the volume's file; then ``in-use``, or on failure the attachment is deleted
  (volume ``available``) and the answer is 409 with the host's reason. A volume without a data
  file (``volume_storage=records``) is refused first (400).
- detach volume (202 at once, Nova's way): the volume is ``detaching`` and the host is sent the
  detach (a cast: the guest may take a while to release the disk); its agent then deletes the
  attachment (``available``), or when the guest keeps the disk puts the volume back ``in-use``,
  attachment kept, and records the ``compute_detach_volume`` event in error.
- attach interface: the port is created/bound and committed, the host plugs the NIC; on failure
  the port is released again (409).
- detach interface (202, a cast): the host unplugs the NIC, then its agent deletes the port (or
  unbinds the user's); when the guest keeps the NIC nothing changes but the event in error.

While the engine restarts or the broker is down the records are given back and the caller gets
503, as for power actions.
"""

from __future__ import annotations

import logging
import os

from novalite.compute import api as compute_api
from novalite.context import RequestContext
from novalite.db.base import Database
from novalite.db.models.volume import Volume
from novalite.errors import BadRequest, Conflict
from novalite.messaging.transport import CallTimeout, MessagingUnavailable, PeerUnavailable, RemoteError
from novalite.runtime import Runtime
from novalite.services import server_devices as devices
from novalite.services.server_actions import agent_of, record_action
from novalite.services.server_queries import get_instance
from novalite.volume import attachments

LOG = logging.getLogger(__name__)


def _ask(
    agent: compute_api.ComputeAPI, ctx: RequestContext, uuid: str, host: str, action: str, **kw: str
) -> str | None:
    """Run ``action`` on the host: None when done (or nothing to plug), else the reason it failed.
    ``PeerUnavailable``/``MessagingUnavailable`` propagate (the caller gives its records back)."""
    try:
        answer = agent.compute.device_action(ctx, instance_uuid=uuid, host=host, action=action, **kw)
    except (CallTimeout, RemoteError) as exc:
        return f"the compute host did not complete it: {exc}"
    if not isinstance(answer, dict):  # no agent of that host in the engine
        return f"no compute service answered for host {host}"
    if "error" in answer:
        return str(answer["error"])
    return None


# -- volumes --------------------------------------------------------------------------------------


def attach_volume(
    rt: Runtime,
    ctx: RequestContext,
    server_id: str,
    volume_id: str,
    *,
    device: str | None,
    tag: str | None,
    delete_on_termination: bool,
) -> devices.VolumeDevice:
    db = rt.db
    with db.session() as s:
        inst = get_instance(s, ctx, server_id)
        agent = agent_of(rt, inst)
        if agent is not None:
            devices.check_state(ctx, inst, "attach_volume", devices.VOLUME_STATES)
            vol = s.get(Volume, volume_id)
            if vol is not None and vol.project_id == inst.project_id and not _has_file(vol):
                raise BadRequest(
                    f"Invalid volume: volume {volume_id} has no data file on this cloud "
                    "(volume_storage=records): it cannot be attached to a real guest",
                    kind="InvalidVolume",
                )
        dev = devices.attach_volume(
            s,
            ctx,
            inst,
            volume_id,
            device=device,
            tag=tag,
            delete_on_termination=delete_on_termination,
            complete=agent is None,
        )
        if agent is None:
            record_action(s, ctx, inst, "attach_volume", event="compute_attach_volume")
            return dev
        uuid, host = inst.uuid, str(inst.host)
    try:
        failure = _ask(agent, ctx, uuid, host, "attach_volume", volume_id=volume_id)
    except (PeerUnavailable, MessagingUnavailable):
        _undo_attach(db, ctx, server_id, dev)
        raise
    if failure is not None:
        _undo_attach(db, ctx, server_id, dev)
        raise Conflict(
            f"Failed to attach volume {volume_id} to instance {uuid}: {failure}", kind="VolumeAttachFailed"
        )
    with db.session() as s:
        inst = get_instance(s, ctx, server_id)
        attachments.complete_attachment(s, RequestContext.system(), dev.attachment_id)
        record_action(s, ctx, inst, "attach_volume", event="compute_attach_volume")
    return dev


def _has_file(vol: Volume) -> bool:
    return bool(vol.location) and os.path.isfile(str(vol.location))


def _undo_attach(db: Database, ctx: RequestContext, server_id: str, dev: devices.VolumeDevice) -> None:
    with db.session() as s:
        inst = get_instance(s, ctx, server_id)
        attachments.detach_volume(s, RequestContext.system(), dev.attachment_id)
        devices.forget_tag(inst, dev.volume_id)


def detach_volume(rt: Runtime, ctx: RequestContext, server_id: str, volume_id: str) -> None:
    db = rt.db
    with db.session() as s:
        inst = get_instance(s, ctx, server_id)
        agent = agent_of(rt, inst)
        if agent is None:
            devices.detach_volume(s, ctx, inst, volume_id)
            record_action(s, ctx, inst, "detach_volume", event="compute_detach_volume")
            return
        devices.check_detachable(s, ctx, inst, volume_id)
        vol = s.get(Volume, volume_id)
        if vol is None or vol.status not in ("in-use", "attaching"):
            status = vol.status if vol is not None else "deleted"
            raise BadRequest(
                f"Invalid volume: volume {volume_id} must be in-use to be detached, but is {status}",
                kind="InvalidVolume",
            )
        before = vol.status
        vol.status = "detaching"
        record_action(s, ctx, inst, "detach_volume", event=None)  # the agent records its event
        uuid, host = inst.uuid, str(inst.host)
    try:
        agent.compute.device_cast(
            ctx, instance_uuid=uuid, host=host, action="detach_volume", volume_id=volume_id
        )
    except (PeerUnavailable, MessagingUnavailable):
        _give_back_volume(db, volume_id, before)
        raise


def _give_back_volume(db: Database, volume_id: str, status: str) -> None:
    with db.session() as s:
        vol = s.get(Volume, volume_id)
        if vol is not None and vol.status == "detaching":
            vol.status = status


# -- interfaces -----------------------------------------------------------------------------------


def attach_interface(
    rt: Runtime,
    ctx: RequestContext,
    server_id: str,
    *,
    port_id: str | None,
    net_id: str | None,
    fixed_ip: str | None,
    tag: str | None,
) -> devices.Interface:
    db = rt.db
    with db.session() as s:
        inst = get_instance(s, ctx, server_id)
        iface = devices.attach_interface(
            s, ctx, inst, port_id=port_id, net_id=net_id, fixed_ip=fixed_ip, tag=tag
        )
        agent = agent_of(rt, inst)
        if agent is None:
            record_action(s, ctx, inst, "attach_interface", event="compute_attach_interface")
            return iface
        uuid, host = inst.uuid, str(inst.host)
    try:
        failure = _ask(agent, ctx, uuid, host, "attach_interface", port_id=iface.port_id)
    except (PeerUnavailable, MessagingUnavailable):
        _release_port(db, ctx, server_id, iface.port_id)
        raise
    if failure is not None:
        _release_port(db, ctx, server_id, iface.port_id)
        raise Conflict(
            f"Failed to attach network adapter device to {uuid}: {failure}", kind="InterfaceAttachFailed"
        )
    with db.session() as s:
        inst = get_instance(s, ctx, server_id)
        record_action(s, ctx, inst, "attach_interface", event="compute_attach_interface")
    return iface


def _release_port(db: Database, ctx: RequestContext, server_id: str, port_id: str) -> None:
    with db.session() as s:
        inst = get_instance(s, ctx, server_id)
        devices.detach_interface(s, RequestContext.system(), inst, port_id)


def detach_interface(rt: Runtime, ctx: RequestContext, server_id: str, port_id: str) -> None:
    db = rt.db
    with db.session() as s:
        inst = get_instance(s, ctx, server_id)
        agent = agent_of(rt, inst)
        if agent is None:
            devices.detach_interface(s, ctx, inst, port_id)
            record_action(s, ctx, inst, "detach_interface", event="compute_detach_interface")
            return
        devices.check_state(ctx, inst, "detach_interface", devices.INTERFACE_STATES)
        iface = devices.get_interface(s, inst, port_id)
        record_action(s, ctx, inst, "detach_interface", event=None)  # the agent records its event
        uuid, host = inst.uuid, str(inst.host)
    agent.compute.device_cast(
        ctx, instance_uuid=uuid, host=host, action="detach_interface", port_id=port_id, mac=iface.mac_addr
    )
