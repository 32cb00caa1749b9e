"""Attaching and detaching a running server's devices: network interfaces (ports) and volumes.

The compute agent has no attach/detach entry points and the fake driver has nothing to plug,
so each operation is one unit of work over the caller's session, through the embedded
services' functions (``novalite.network.service``, ``novalite.volume.attachments``):

- interfaces: a new port on a network (``net_id``, optional fixed IP) or the user's own port
  (``port_id``) is bound to the server's host; detaching deletes a port Nova created and only
  unbinds the user's port. The user's ports are remembered in ``Instance.requested_networks``
  (as the create path stores them), which is what the delete path keeps, not deletes.
- volumes: a Cinder attachment (reserved -> attached, volume ``in-use``) at a device name;
  detaching deletes the attachment (the volume is ``available`` again).

Device tags (2.49+) are kept in the instance's system metadata under ``TAGS_KEY``
(device id -> tag). Errors are Nova's: 404 for unknown networks/ports/volumes, 409 for a port
in use or a taken device path, 400 for an unusable volume or the root volume, 403 for the port
quota, 409 ``InstanceInvalidState``/``InstanceIsLocked`` from the state checks.
"""

from __future__ import annotations

import uuid as uuidlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from novalite.context import RequestContext
from novalite.db.base import utcnow
from novalite.db.models.compute import Instance
from novalite.db.models.network import Port
from novalite.db.models.volume import VolumeAttachment
from novalite.domain.states import VmState
from novalite.errors import BadRequest, Conflict, Forbidden, NotFound, NovaliteError
from novalite.network import service as network
from novalite.volume import attachments
from novalite.volume import service as volumes

TAGS_KEY = "novalite_device_tags"
OWNER = "compute:nova"
INTERFACE_STATES = (VmState.ACTIVE, VmState.PAUSED, VmState.STOPPED)
VOLUME_STATES = (
    VmState.ACTIVE,
    VmState.PAUSED,
    VmState.STOPPED,
    VmState.RESIZED,
    VmState.SOFT_DELETED,
    VmState.SHELVED,
    VmState.SHELVED_OFFLOADED,
)
DEVICE_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_BDM_NAMESPACE = uuidlib.UUID("6d1f1c43-3a0e-4b0e-9b8e-6f7c2b0a9d11")


@dataclass(frozen=True)
class Interface:
    port_id: str
    net_id: str
    mac_addr: str
    port_state: str
    fixed_ips: tuple[tuple[str, str], ...]  # (ip_address, subnet_id)
    tag: str | None


@dataclass(frozen=True)
class VolumeDevice:
    attachment_id: str
    bdm_uuid: str
    volume_id: str
    server_id: str
    device: str | None
    tag: str | None
    delete_on_termination: bool


# -- state checks ---------------------------------------------------------------------------------


def check_state(ctx: RequestContext, inst: Instance, action: str, states: tuple[str, ...]) -> None:
    """Nova's lock check, then ``check_instance_state`` (vm_state in ``states``, no task)."""
    if inst.locked and not ctx.is_admin:
        raise Conflict(f"Instance {inst.uuid} is locked", kind="InstanceIsLocked")
    if inst.vm_state not in states:
        raise Conflict(
            f"Cannot '{action}' instance {inst.uuid} while it is in vm_state {inst.vm_state}",
            kind="InstanceInvalidState",
        )
    if inst.task_state is not None:
        raise Conflict(
            f"Cannot '{action}' instance {inst.uuid} while it is in task_state {inst.task_state}",
            kind="InstanceInvalidState",
        )


def _tags(inst: Instance) -> dict[str, str]:
    return dict((inst.system_metadata or {}).get(TAGS_KEY) or {})


def _set_tag(inst: Instance, device_id: str, tag: str | None) -> None:
    tags = _tags(inst)
    if tag is None:
        tags.pop(device_id, None)
    else:
        tags[device_id] = tag
    inst.system_metadata = {**(inst.system_metadata or {}), TAGS_KEY: tags}


# -- interfaces -----------------------------------------------------------------------------------


def _interface(info: network.PortInfo, tags: dict[str, str]) -> Interface:
    return Interface(
        port_id=info.id,
        net_id=info.network_id,
        mac_addr=info.mac_address,
        port_state=info.status,
        fixed_ips=tuple((ip.ip_address, ip.subnet_id) for ip in info.fixed_ips),
        tag=tags.get(info.id),
    )


def _server_ports(s: Session, inst: Instance) -> list[network.PortInfo]:
    q = select(Port.id).where(Port.device_id == inst.uuid).order_by(Port.created_at, Port.id)
    found = (network.get_port(s, port_id) for port_id in s.scalars(q))
    return [info for info in found if info is not None]


def list_interfaces(s: Session, inst: Instance) -> list[Interface]:
    """The server's ports, oldest first."""
    tags = _tags(inst)
    return [_interface(info, tags) for info in _server_ports(s, inst)]


def get_interface(s: Session, inst: Instance, port_id: str) -> Interface:
    """One port of the server; 404 when the port is missing or on another device."""
    info = network.get_port(s, port_id) if len(port_id) <= 36 else None
    if info is None:
        raise NotFound(f"Port id {port_id} could not be found.", kind="PortNotFound")
    if info.device_id != inst.uuid:
        raise NotFound(f"Instance {inst.uuid} does not have a port with id {port_id}", kind="PortNotFound")
    return _interface(info, _tags(inst))


def _user_ports(inst: Instance) -> list[dict[str, Any]]:
    requested = inst.requested_networks
    return [r for r in requested if isinstance(r, dict)] if isinstance(requested, list) else []


def _remember_user_port(inst: Instance, port_id: str, *, keep: bool) -> None:
    entries = [r for r in _user_ports(inst) if r.get("port_id") != port_id]
    if keep:
        entries.append({"port_id": port_id})
    inst.requested_networks = entries


def _pick_network(s: Session, inst: Instance) -> str:
    available = network.list_available_networks(s, inst.project_id)
    if len(available) > 1:
        raise Conflict(
            "More than one possible network found. Specify network ID(s) to select which one(s) to "
            "connect to.",
            kind="NetworkAmbiguous",
        )
    if not available:
        raise BadRequest(
            f"No specific network was requested and none are available for project '{inst.project_id}'.",
            kind="InterfaceAttachFailedNoNetwork",
        )
    return available[0].id


def _bind_user_port(s: Session, inst: Instance, port_id: str) -> network.PortInfo:
    info = network.get_port(s, port_id)
    if info is None or info.project_id != inst.project_id:
        raise NotFound(f"Port id {port_id} could not be found.", kind="PortNotFound")
    if info.device_id:
        raise Conflict(f"Port {port_id} is still in use.", kind="PortInUse")
    if not info.fixed_ips:
        raise BadRequest(
            f"Port {port_id} requires a FixedIP in order to be used.", kind="PortRequiresFixedIP"
        )
    bound = network.bind_port(s, port_id, host=inst.host or "", device_id=inst.uuid, device_owner=OWNER)
    _remember_user_port(inst, port_id, keep=True)
    return bound


def _new_port(s: Session, inst: Instance, net_id: str, fixed_ip: str | None) -> network.PortInfo:
    if network.get_network(s, inst.project_id, net_id) is None:
        raise NotFound(f"Network {net_id} could not be found.", kind="NetworkNotFound")
    try:
        with s.begin_nested():
            return network.allocate_port(
                s,
                project_id=inst.project_id,
                network_id=net_id,
                device_id=inst.uuid,
                device_owner=OWNER,
                host=inst.host or "",
                fixed_ip=fixed_ip,
            )
    except NovaliteError as exc:  # Neutron's answer, in Nova's words
        if exc.kind == "OverQuota":
            raise Forbidden("Maximum number of ports exceeded", kind="PortLimitExceeded") from None
        if exc.kind == "IpAddressAlreadyAllocated":
            raise Conflict(
                f"Fixed IP address {fixed_ip} is already in use on instance.", kind="FixedIpAlreadyInUse"
            ) from None
        if exc.kind == "IpAddressGenerationFailure":
            raise BadRequest(
                f"No fixed IP addresses available for network: {net_id}", kind="NoMoreFixedIps"
            ) from None
        raise BadRequest(exc.message, kind=exc.kind) from None


def attach_interface(
    s: Session,
    ctx: RequestContext,
    inst: Instance,
    *,
    port_id: str | None = None,
    net_id: str | None = None,
    fixed_ip: str | None = None,
    tag: str | None = None,
) -> Interface:
    """Bind ``port_id`` or create a port on ``net_id`` (or the only available network)."""
    check_state(ctx, inst, "attach_interface", INTERFACE_STATES)
    if port_id:
        info = _bind_user_port(s, inst, port_id)
    else:
        info = _new_port(s, inst, net_id or _pick_network(s, inst), fixed_ip)
    if tag is not None:
        _set_tag(inst, info.id, tag)
    _refresh_network_info(s, inst)
    return _interface(info, _tags(inst))


def detach_interface(s: Session, ctx: RequestContext, inst: Instance, port_id: str) -> None:
    """Delete a port Nova created for the server; unbind the user's own port."""
    check_state(ctx, inst, "detach_interface", INTERFACE_STATES)
    release_interface(s, inst, port_id)


def release_interface(s: Session, inst: Instance, port_id: str) -> None:
    """The records of a detach (no state check): delete a port Nova created, unbind the user's."""
    port = s.get(Port, port_id) if len(port_id) <= 36 else None
    if port is None or port.device_id != inst.uuid:
        raise NotFound(f"Port id {port_id} could not be found.", kind="PortNotFound")
    users = {str(r.get("port_id")) for r in _user_ports(inst) if r.get("port_id")}
    if port_id in users:
        port.device_id, port.device_owner, port.binding_host_id, port.status = "", "", "", "DOWN"
        port.revision_number += 1
        _remember_user_port(inst, port_id, keep=False)
    else:
        network.unmap_floating_ips(s, [port.id])
        s.delete(port)
    s.flush()
    _set_tag(inst, port_id, None)
    _refresh_network_info(s, inst)


def _refresh_network_info(s: Session, inst: Instance) -> None:
    inst.network_info = [
        {
            "port_id": port.id,
            "network_id": port.network_id,
            "network_name": port.network_name,
            "mac_address": port.mac_address,
            "fixed_ips": [{"ip_address": ip.ip_address, "version": ip.version} for ip in port.fixed_ips],
        }
        for port in _server_ports(s, inst)
    ]
    inst.updated_at = utcnow()


# -- volumes --------------------------------------------------------------------------------------


def bdm_uuid(attachment_id: str) -> str:
    """A stable block-device-mapping id for an attachment (2.89's ``bdm_uuid``)."""
    return str(uuidlib.uuid5(_BDM_NAMESPACE, attachment_id))


def _owner(inst: Instance) -> RequestContext:
    return RequestContext(user_id=inst.user_id, project_id=inst.project_id, roles=("member",))


def _attachments(s: Session, inst: Instance) -> list[VolumeAttachment]:
    q = select(VolumeAttachment).where(
        VolumeAttachment.instance_uuid == inst.uuid, VolumeAttachment.detached_at.is_(None)
    )
    return list(s.scalars(q.order_by(VolumeAttachment.created_at, VolumeAttachment.id)))


def _device_view(inst: Instance, att: VolumeAttachment) -> VolumeDevice:
    return VolumeDevice(
        attachment_id=att.id,
        bdm_uuid=bdm_uuid(att.id),
        volume_id=att.volume_id,
        server_id=inst.uuid,
        device=att.mountpoint,
        tag=_tags(inst).get(att.volume_id),
        delete_on_termination=bool(att.delete_on_termination),
    )


def list_volumes(s: Session, inst: Instance) -> list[VolumeDevice]:
    return [_device_view(inst, att) for att in _attachments(s, inst)]


def _find(s: Session, inst: Instance, volume_id: str) -> VolumeAttachment:
    for att in _attachments(s, inst):
        if att.volume_id == volume_id:
            return att
    raise NotFound(f"volume_id not found: {volume_id}", kind="VolumeBDMNotFound")


def get_volume(s: Session, inst: Instance, volume_id: str) -> VolumeDevice:
    """The attachment of ``volume_id`` to the server; 404 ``volume_id not found``."""
    return _device_view(inst, _find(s, inst, volume_id))


def root_device(inst: Instance) -> str:
    return inst.root_device_name or "/dev/vda"


def is_root(inst: Instance, att: VolumeAttachment) -> bool:
    """The boot volume of a server booted from volume (no image, attached at the root device)."""
    return not inst.image_ref and att.mountpoint == root_device(inst)


def _next_device(inst: Instance, current: list[VolumeAttachment], requested: str | None) -> str:
    used = {a.mountpoint for a in current if a.mountpoint}
    if inst.image_ref:
        used.add(root_device(inst))
    if requested:
        device = requested if requested.startswith("/dev/") else f"/dev/{requested}"
        if device in used:
            raise Conflict(f"The supplied device path ({device}) is in use.", kind="DevicePathInUse")
        return device
    for letter in DEVICE_LETTERS[1:]:
        if f"/dev/vd{letter}" not in used:
            return f"/dev/vd{letter}"
    raise BadRequest("No free disk device names for prefix 'vd'", kind="InvalidDevicePath")


def _attach_at(
    s: Session,
    inst: Instance,
    owner: RequestContext,
    volume_id: str,
    device: str | None,
    delete_on_termination: bool,
    *,
    complete: bool = True,
) -> VolumeAttachment:
    """Reserve ``volume_id`` for the server and attach it at ``device``: the new attachment row
    (``complete`` False: left ``attaching`` while a real host plugs it in)."""
    attachment_id = attachments.reserve_volume(s, owner, volume_id, inst.uuid)
    if complete:
        attachments.attach_volume(s, owner, attachment_id, host=inst.host or "", mountpoint=device)
    else:
        connector = {"host": inst.host or "", "mountpoint": device}
        attachments.update_attachment(s, owner, attachment_id, connector)
    att = s.get(VolumeAttachment, attachment_id)
    assert att is not None
    att.delete_on_termination = delete_on_termination
    return att


def attach_volume(
    s: Session,
    ctx: RequestContext,
    inst: Instance,
    volume_id: str,
    *,
    device: str | None = None,
    tag: str | None = None,
    delete_on_termination: bool = False,
    complete: bool = True,
) -> VolumeDevice:
    """Reserve and attach ``volume_id`` (the server's project's) at ``device`` (next free vdX);
    ``complete`` False leaves it ``attaching`` (``services.device_hotplug`` completes it)."""
    check_state(ctx, inst, "attach_volume", VOLUME_STATES)
    owner = _owner(inst)
    if volumes.get_volume(s, owner, volume_id) is None:
        # as Nova, the volume is looked up as the caller: an admin attaches any project's volume
        if not ctx.is_admin or volumes.get_volume(s, ctx, volume_id) is None:
            raise NotFound(f"Volume {volume_id} could not be found.", kind="VolumeNotFound")
        owner = ctx
    current = _attachments(s, inst)
    if any(a.volume_id == volume_id for a in current):
        raise BadRequest(f"Invalid volume: volume {volume_id} already attached", kind="InvalidVolume")
    where = _next_device(inst, current, device)
    att = _attach_at(s, inst, owner, volume_id, where, delete_on_termination, complete=complete)
    if tag is not None:
        _set_tag(inst, volume_id, tag)
    s.flush()
    return _device_view(inst, att)


def check_detachable(s: Session, ctx: RequestContext, inst: Instance, volume_id: str) -> VolumeAttachment:
    """The checks of a detach: the server's state, the attachment (404), not the root volume (400)."""
    check_state(ctx, inst, "detach_volume", VOLUME_STATES)
    att = _find(s, inst, volume_id)
    if is_root(inst, att):
        raise BadRequest("Cannot detach a root device volume", kind="InvalidVolume")
    return att


def forget_tag(inst: Instance, device_id: str) -> None:
    """Drop the device tag of a volume or port that is no longer attached."""
    _set_tag(inst, device_id, None)


def detach_volume(s: Session, ctx: RequestContext, inst: Instance, volume_id: str) -> None:
    """Detach ``volume_id``; the root volume of a boot-from-volume server is refused (400)."""
    att = check_detachable(s, ctx, inst, volume_id)
    attachments.detach_volume(s, RequestContext.system(), att.id)
    _set_tag(inst, volume_id, None)
    s.flush()


def update_volume(
    s: Session, ctx: RequestContext, inst: Instance, volume_id: str, *, delete_on_termination: bool | None
) -> None:
    """2.85: change ``delete_on_termination`` of an attached volume."""
    check_state(ctx, inst, "update_volume", VOLUME_STATES)
    att = _find(s, inst, volume_id)
    if delete_on_termination is not None:
        att.delete_on_termination = delete_on_termination
    s.flush()


def swap_volume(s: Session, ctx: RequestContext, inst: Instance, old_id: str, new_id: str) -> None:
    """Replace attached ``old_id`` with available ``new_id`` at the same device (admin only)."""
    check_state(ctx, inst, "swap_volume", (VmState.ACTIVE, VmState.PAUSED, VmState.RESIZED))
    att = _find(s, inst, old_id)
    owner = _owner(inst)
    new = volumes.get_volume(s, owner, new_id)
    if new is None:
        raise BadRequest(f"Volume {new_id} could not be found.", kind="VolumeNotFound")
    if new.status != "available":
        raise BadRequest(
            f"Invalid volume: volume {new_id} status must be available, but is {new.status}",
            kind="InvalidVolume",
        )
    device, delete = att.mountpoint, bool(att.delete_on_termination)
    attachments.detach_volume(s, RequestContext.system(), att.id)
    _attach_at(s, inst, owner, new_id, device, delete)
    tag = _tags(inst).get(old_id)
    _set_tag(inst, old_id, None)
    if tag is not None:
        _set_tag(inst, new_id, tag)
    s.flush()
