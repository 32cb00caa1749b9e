"""shelve, shelveOffload, unshelve (§4 of the move operations).

* shelve: a snapshot image ``<name>-shelved`` (image-backed servers), the server powered off
  and SHELVED on its host, keeping its allocation; offloaded at once when
  ``shelved_offload_time`` is 0 (and always when volume-backed), later by the conductor's
  periodic task when it is N > 0, never by itself when it is negative.
* offload: SHELVED_OFFLOADED, host/node/zone cleared, every allocation freed, ports unbound.
* unshelve: from SHELVED the server starts where it is; from SHELVED_OFFLOADED the conductor
  schedules it anew (2.77 zone, 2.91 host or unpinned zone). The snapshot image is deleted once
  the server is running again. Quota: a shelved server still counts (Nova's legacy counting).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from novalite.compute import actions as action_log
from novalite.context import RequestContext
from novalite.db.base import utcnow
from novalite.db.models.compute import Instance, RequestSpec
from novalite.db.models.network import Port
from novalite.db.models.placement import ComputeNode
from novalite.domain import actions
from novalite.domain.flavor import FlavorSnapshot
from novalite.domain.request_spec import RequestSpecDoc
from novalite.domain.states import PowerState, TaskState, VmState
from novalite.errors import BadRequest, Conflict, NotFound
from novalite.image import service as images
from novalite.messaging.transport import MessagingUnavailable, PeerUnavailable
from novalite.placement import allocations
from novalite.runtime import Runtime
from novalite.services import server_moves, zones
from novalite.services.server_actions import check_not_locked, check_state, record_action
from novalite.services.server_queries import get_instance

LOG = logging.getLogger(__name__)
_SHELVE_KEYS = ("shelved_at", "shelved_image_id", "shelved_host")


def _owner_ctx(inst: Instance, ctx: RequestContext | None = None) -> RequestContext:
    return RequestContext(
        user_id=ctx.user_id if ctx else inst.user_id, project_id=inst.project_id, roles=("member",)
    )


def _snapshot_image(s: Session, ctx: RequestContext, inst: Instance) -> tuple[str, str | None]:
    """The queued image ``<name>-shelved`` (§4.2): private, of ``image_type`` snapshot."""
    base = images.get_image(s, ctx, inst.image_ref)
    props = {
        k[len("image_") :]: str(v)
        for k, v in (inst.system_metadata or {}).items()
        if k.startswith("image_") and k not in ("image_min_ram", "image_min_disk")
    }
    props = {k: v for k, v in props.items() if k not in ("cache_in_nova", "bittorrent")}
    image = images.create_image(
        s,
        _owner_ctx(inst, ctx),
        {
            **props,
            "name": f"{inst.display_name}-shelved",
            "visibility": "private",
            "disk_format": (base.disk_format if base else None) or "raw",
            "container_format": (base.container_format if base else None) or "bare",
            "min_ram": base.min_ram if base else 0,
            "min_disk": max(base.min_disk if base else 0, inst.root_gb),
            "instance_uuid": inst.uuid,
            "user_id": ctx.user_id,
            "image_type": "snapshot",
            "base_image_ref": inst.image_ref,
        },
    )
    return image.id, base.path if base is not None else None


def shelve(rt: Runtime, ctx: RequestContext, server_id: str) -> None:
    image_id: str | None = None
    with rt.db.session() as s:
        inst = get_instance(s, ctx, server_id)
        check_not_locked(ctx, inst)
        check_state(inst, actions.SHELVE)
        if inst.image_ref:
            image_id, base_path = _snapshot_image(s, ctx, inst)
        owner = _owner_ctx(inst, ctx)
    if image_id is not None:
        data = (
            Path(base_path).read_bytes()
            if base_path and Path(base_path).is_file()
            else images.tiny_image_bytes()
        )
        images.upload_bytes(rt, owner, image_id, data)
    offload_now = rt.settings.shelved_offload_time == 0 or image_id is None

    def work(s: Session) -> str | None:
        inst = get_instance(s, ctx, server_id)
        check_not_locked(ctx, inst)
        check_state(inst, actions.SHELVE)
        inst.task_state, inst.updated_at = TaskState.SHELVING, utcnow()
        record_action(s, ctx, inst, "shelve", event=None)
        return inst.host

    host = rt.db.write(work)
    _to_agent(rt, ctx, server_id, host, offload=offload_now, image_id=image_id or "")


def _to_agent(
    rt: Runtime, ctx: RequestContext, server_id: str, host: str | None, *, offload: bool, image_id: str | None
) -> None:
    """Cast the shelve step to the server's host (recorded here at once when it has none)."""
    if host is None:
        rt.db.write(lambda s: shelved(s, server_id, image_id=image_id, offload=offload))
        return
    try:
        server_moves.compute_of(rt).shelve_instance(
            ctx, instance_uuid=server_id, host=host, offload=offload, image_id=image_id
        )
    except (PeerUnavailable, MessagingUnavailable, Conflict):
        # nothing was sent (the engine restarting, the broker unreachable): the state goes back
        rt.db.write(lambda s: shelve_failed(s, server_id, "the engine is not running", host=None))
        raise


def shelved(s: Session, instance_uuid: str, *, image_id: str | None, offload: bool) -> None:
    """The agent's record of a shelve (``image_id`` set: "" for a volume-backed server) and/or
    an offload."""
    inst = s.scalars(select(Instance).where(Instance.uuid == instance_uuid)).first()
    if inst is None or inst.deleted:
        return
    host = inst.host
    if image_id is not None and inst.vm_state != VmState.SHELVED:
        inst.vm_state, inst.task_state = VmState.SHELVED, None
        inst.power_state = int(PowerState.SHUTDOWN)
        inst.system_metadata = {
            **(inst.system_metadata or {}),
            "shelved_at": utcnow().isoformat(),
            "shelved_image_id": image_id,
            "shelved_host": inst.host or "",
        }
        inst.updated_at = utcnow()
        _event(s, inst, "shelve", "compute_shelve_instance", host=host)
    if offload:
        offload_now(s, inst)
        if image_id is None:
            _event(s, inst, "shelveOffload", "compute_shelve_offload_instance", host=host)


def shelve_failed(s: Session, instance_uuid: str, reason: str, *, host: str | None) -> None:
    inst = s.scalars(select(Instance).where(Instance.uuid == instance_uuid)).first()
    if inst is None or inst.deleted:
        return
    inst.task_state, inst.updated_at = None, utcnow()
    action_log.add_fault(s, inst.uuid, message=reason, host=host)


def _event(s: Session, inst: Instance, action: str, event: str, *, host: str | None) -> None:
    action_log.record_event(s, server_moves.action_id(s, inst, action), event, ok=True, host=host)


def offload_now(s: Session, inst: Instance) -> None:
    """SHELVED -> SHELVED_OFFLOADED: the guest and its host are given up (§4.4)."""
    allocations.release(s, inst.uuid)
    for port in s.scalars(select(Port).where(Port.device_id == inst.uuid)):
        port.binding_host_id = ""
    inst.vm_state, inst.task_state = VmState.SHELVED_OFFLOADED, None
    inst.host = inst.node = inst.launched_on = None
    inst.availability_zone = None
    inst.power_state = int(PowerState.SHUTDOWN)
    inst.updated_at = utcnow()


def shelve_offload(rt: Runtime, ctx: RequestContext, server_id: str) -> None:
    def work(s: Session) -> str | None:
        inst = get_instance(s, ctx, server_id)
        check_not_locked(ctx, inst)
        check_state(inst, actions.SHELVE_OFFLOAD)
        inst.task_state, inst.updated_at = TaskState.SHELVING_OFFLOADING, utcnow()
        record_action(s, ctx, inst, "shelveOffload", event=None)
        return inst.host

    _to_agent(rt, ctx, server_id, rt.db.write(work), offload=True, image_id=None)


def start_offload(s: Session, inst: Instance) -> str | None:
    """The periodic offload's first step: task shelving_offloading; the host to cast to."""
    inst.task_state, inst.updated_at = TaskState.SHELVING_OFFLOADING, utcnow()
    return inst.host


def due_for_offload(s: Session, after_seconds: int) -> list[Instance]:
    """SHELVED servers shelved at least ``after_seconds`` ago (the periodic offload)."""
    cutoff = utcnow() - dt.timedelta(seconds=after_seconds)
    out = []
    rows = s.scalars(
        select(Instance).where(
            Instance.vm_state == VmState.SHELVED, Instance.task_state.is_(None), Instance.deleted.is_(False)
        )
    )
    for inst in rows:
        stamp = (inst.system_metadata or {}).get("shelved_at")
        try:
            when = dt.datetime.fromisoformat(stamp) if stamp else None
        except ValueError:
            when = None
        if when is not None and when.tzinfo is None:
            when = when.replace(tzinfo=cutoff.tzinfo)
        if when is None or when <= cutoff:
            out.append(inst)
    return out


# -- unshelve ----------------------------------------------------------------------------------------

_UNSET: Any = object()


def unshelve(
    rt: Runtime,
    ctx: RequestContext,
    server_id: str,
    *,
    zone: Any = _UNSET,
    host: str | None = None,
) -> None:
    """``zone``: the 2.77/2.91 availability_zone (None = unpin; left out = keep the spec's)."""
    with rt.db.session() as s:
        inst = get_instance(s, ctx, server_id)
        check_not_locked(ctx, inst)
        check_state(inst, actions.UNSHELVE)
        if (zone is not _UNSET or host is not None) and inst.vm_state != VmState.SHELVED_OFFLOADED:
            raise Conflict(
                f'Specifying an availability zone or a host when unshelving server "{inst.uuid}" with '
                f'status "SHELVED" is not supported. The server status must be SHELVED_OFFLOADED.',
                kind="UnshelveInstanceInvalidState",
            )
        if zone is not _UNSET and zone is not None and zone not in zones.zone_names(s):
            raise BadRequest("The requested availability zone is not available", kind="InvalidRequest")
        if host is not None:
            _check_host(s, host, zone if zone is not _UNSET else _spec_zone(s, inst.uuid))
        in_place = inst.vm_state == VmState.SHELVED
        if zone is not _UNSET and not in_place:
            _set_spec_zone(s, inst.uuid, zone)
        inst.task_state, inst.updated_at = TaskState.UNSHELVING, utcnow()
        record_action(s, ctx, inst, "unshelve", event=None)
        where = (inst.host, inst.node)
    try:
        if in_place and where[0] is not None:  # SHELVED: the guest starts where it is
            server_moves.compute_of(rt).unshelve_on_host(
                ctx, instance_uuid=server_id, host=where[0], node=where[1] or where[0]
            )
        else:  # SHELVED_OFFLOADED: a fresh schedule
            server_moves.conductor_of(rt).unshelve_instance(ctx, instance_uuid=server_id, host=host)
    except (PeerUnavailable, MessagingUnavailable, Conflict):  # nothing was sent: the server stays as it was
        rt.db.write(lambda s: unshelve_failed(s, server_id, "the engine is not running"))
        raise


def _spec_zone(s: Session, instance_uuid: str) -> str | None:
    row = s.get(RequestSpec, instance_uuid)
    return (row.spec or {}).get("availability_zone") if row is not None else None


def _set_spec_zone(s: Session, instance_uuid: str, zone: str | None) -> None:
    row = s.get(RequestSpec, instance_uuid)
    if row is not None:
        row.spec = {**row.spec, "availability_zone": zone}


def _check_host(s: Session, host: str, zone: str | None) -> None:
    if (
        s.scalar(select(ComputeNode.id).where(ComputeNode.host == host, ComputeNode.deleted.is_(False)))
        is None
    ):
        raise BadRequest(f"Compute host {host} could not be found.", kind="ComputeHostNotFound")
    if zone and not zones.host_in_zone(s, host, zone):
        raise Conflict(f'Host "{host}" is not in the availability zone "{zone}".', kind="UnshelveHostNotInAZ")


def _started(s: Session, inst: Instance, *, host: str | None) -> None:
    inst.vm_state, inst.task_state = VmState.ACTIVE, None
    inst.power_state = int(PowerState.RUNNING)
    inst.updated_at = utcnow()
    for port in s.scalars(select(Port).where(Port.device_id == inst.uuid)):
        port.binding_host_id = host or ""


def _clear_shelve_keys(inst: Instance) -> None:
    inst.system_metadata = {k: v for k, v in (inst.system_metadata or {}).items() if k not in _SHELVE_KEYS}


def unshelve_spec(s: Session, instance_uuid: str) -> RequestSpecDoc | None:
    """The conductor's input: the stored spec with the server's current flavor; None when the
    server is no longer waiting to be unshelved."""
    inst = s.scalars(select(Instance).where(Instance.uuid == instance_uuid)).first()
    row = s.get(RequestSpec, instance_uuid)
    if inst is None or inst.deleted or row is None or inst.task_state != TaskState.UNSHELVING:
        return None
    spec = RequestSpecDoc.from_doc(row.spec)
    return dataclasses.replace(
        spec,
        flavor=FlavorSnapshot.from_dict(inst.flavor or {}),
        force_hosts=(),
        force_nodes=(),
        requested_host=None,
        requested_node=None,
        num_instances=1,
    )


def unshelve_on(s: Session, instance_uuid: str, *, host: str, node: str) -> None:
    """The scheduler claimed ``host`` for the server: it runs there; the snapshot is deleted."""
    inst = s.scalars(select(Instance).where(Instance.uuid == instance_uuid)).first()
    if inst is None or inst.deleted:
        allocations.release(s, instance_uuid)
        return
    inst.host, inst.node, inst.launched_on = host, node, host
    image_id = (inst.system_metadata or {}).get("shelved_image_id")
    _started(s, inst, host=host)
    inst.launched_at = utcnow()
    _clear_shelve_keys(inst)
    if image_id:
        try:
            images.delete_image(s, _owner_ctx(inst), image_id)
        except NotFound:
            pass
    action_id = action_log.find_action(
        s, inst.uuid, "unshelve", user_id=inst.user_id, project_id=inst.project_id
    )
    action_log.record_event(s, action_id, "compute_unshelve_instance", ok=True, host=host)


def unshelve_failed(s: Session, instance_uuid: str, reason: str, *, release: bool = False) -> None:
    """NoValidHost (or the chosen host could not start it): the server stays as it was, no
    error state (§8.4); ``release``: an offloaded server gives up the allocation it was given."""
    inst = s.scalars(select(Instance).where(Instance.uuid == instance_uuid)).first()
    if inst is None or inst.deleted:
        return
    if release and inst.vm_state == VmState.SHELVED_OFFLOADED:
        allocations.release(s, inst.uuid)
    inst.task_state, inst.updated_at = None, utcnow()
    action_id = action_log.find_action(
        s, inst.uuid, "unshelve", user_id=inst.user_id, project_id=inst.project_id
    )
    action_log.record_event(s, action_id, "schedule_instances", ok=False, host=None, details=reason)
