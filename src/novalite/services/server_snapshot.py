"""Snapshots and backups of a server (§6.4 ``createImage`` / ``createBackup``): a new image of an
image-backed server; a backup is a snapshot of ``image_type`` backup whose older siblings of the
same ``backup_type`` beyond ``rotation`` are deleted.

On a real host (``--driver qemu``) the host's driver copies the guest's root disk into the
image (``compute.snapshots``, an RPC call). The fake virt driver has no disk to read, so the
snapshot's data is the server's base image data
(or a tiny placeholder): what clients observe is a new image of ``image_type`` snapshot that
becomes active, carrying ``instance_uuid`` and ``base_image_ref`` and the requested metadata.

The image belongs to the caller's project (Nova's ``initialize_instance_snapshot_metadata``):
private when that is the server's project; when another project (an admin) snapshots the server,
``shared``, with ``instance_owner`` set and the server's project a pending member, so the
server's owner still sees it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select

from novalite import notifications
from novalite.compute import hosts
from novalite.context import RequestContext
from novalite.db.base import Database
from novalite.db.models.image import Image, ImageProperty
from novalite.domain.actions import SNAPSHOT
from novalite.errors import Conflict
from novalite.image import members
from novalite.image import service as images
from novalite.messaging.transport import CallTimeout, RemoteError
from novalite.runtime import Runtime
from novalite.services import server_snapshot_volume
from novalite.services.server_actions import check_not_locked, check_state, record_action
from novalite.services.server_queries import get_instance


def _new_image(
    db: Database, ctx: RequestContext, server_id: str, req: dict[str, Any], extra: dict[str, str]
) -> tuple[str, str | None]:
    """Check the server, create the queued image; returns (image id, path of the base image's data)."""
    with db.session() as s:
        inst = get_instance(s, ctx, server_id)
        check_not_locked(ctx, inst)
        check_state(inst, SNAPSHOT)
        if not inst.image_ref:
            raise Conflict(
                f"Cannot 'createImage' instance {inst.uuid}: snapshots of volume-backed servers are "
                "not supported here",
                kind="InstanceInvalidState",
            )
        base = images.get_image(s, ctx, inst.image_ref)
        foreign = ctx.project_id != inst.project_id
        image = images.create_image(
            s,
            _as_project(ctx, ctx.project_id),
            {
                "name": req["name"],
                "visibility": "shared" if foreign else "private",
                **({"instance_owner": inst.project_id} if foreign else {}),
                "disk_format": (base.disk_format if base else None) or "raw",
                "container_format": (base.container_format if base else None) or "bare",
                "min_ram": base.min_ram if base else 0,
                "min_disk": max(base.min_disk if base else 0, inst.root_gb),
                "instance_uuid": inst.uuid,
                "image_type": "snapshot",
                "base_image_ref": inst.image_ref,
                "user_id": ctx.user_id,
                # the request's metadata overrides the system properties, as in Nova (Tempest sends
                # image_type=test); a backup's own keys come last so rotation still finds it
                **{k: str(v) for k, v in (req.get("metadata") or {}).items()},
                **extra,
            },
        )
        if foreign:
            members.share_with(s, image.id, inst.project_id)
        action = "createBackup" if extra else "createImage"
        record_action(s, ctx, inst, action, event=f"compute_{'backup' if extra else 'snapshot'}_instance")
        return image.id, base.path if base is not None else None


def _as_project(ctx: RequestContext, project_id: str) -> RequestContext:
    """The caller acting as a member of ``project_id`` (an image's owner)."""
    return RequestContext(user_id=ctx.user_id, project_id=project_id, roles=("member",))


def snapshot(
    rt: Runtime, ctx: RequestContext, server_id: str, req: dict[str, Any], extra: dict[str, str]
) -> str:
    """Create the image (``req``: name, metadata; ``extra``: a backup's properties) and give it
    data; returns its id."""
    if not extra and server_snapshot_volume.is_volume_backed(rt, ctx, server_id):
        return server_snapshot_volume.snapshot(rt, ctx, server_id, req, _as_project(ctx, ctx.project_id))
    image_id, base_path = _new_image(rt.db, ctx, server_id, req, extra)
    uuid = _uuid_of(rt, ctx, server_id) if notifications.notifier_for(rt.db) is not None else ""
    notifications.snapshot_in(rt.db, "start", uuid, image_id, task_state=SNAPSHOT_TASK)
    if not _snapshot_on_host(rt, ctx, server_id, image_id):
        data = (
            Path(base_path).read_bytes()
            if base_path and Path(base_path).is_file()
            else images.tiny_image_bytes()
        )
        images.upload_bytes(rt, _as_project(ctx, ctx.project_id), image_id, data)  # the image is the caller's
    notifications.snapshot_in(rt.db, "end", uuid, image_id)
    return image_id


SNAPSHOT_TASK = "image_snapshot"


def _uuid_of(rt: Runtime, ctx: RequestContext, server_id: str) -> str:
    with rt.db.reader() as s:
        return get_instance(s, ctx, server_id).uuid


def _snapshot_on_host(rt: Runtime, ctx: RequestContext, server_id: str, image_id: str) -> bool:
    """A real guest's disk copied into the image by its host (``compute.snapshots``); False on a
    simulated host. A failed copy deletes the image and answers 409."""
    with rt.db.reader() as s:
        inst = get_instance(s, ctx, server_id)
        uuid, host = inst.uuid, inst.host
    if host is None or host.startswith(hosts.PREFIX):
        return False
    try:
        answer = rt.services.require_compute_api().compute.snapshot_instance(
            ctx, instance_uuid=uuid, host=host, image_id=image_id
        )
    except (CallTimeout, RemoteError) as exc:
        answer = {"error": str(exc)}
    if answer.get("done"):
        return True
    if "error" not in answer:
        return False
    with rt.db.session() as s:
        images.delete_image(s, _as_project(ctx, ctx.project_id), image_id)
    raise Conflict(f"Snapshot of instance {uuid} failed: {answer['error']}", kind="InstanceInvalidState")


def check_snapshottable(db: Database, ctx: RequestContext, server_id: str) -> None:
    """The checks of a snapshot without one (a backup with rotation 0)."""
    with db.reader() as s:
        inst = get_instance(s, ctx, server_id)
        check_not_locked(ctx, inst)
        check_state(inst, SNAPSHOT)


def rotate(db: Database, ctx: RequestContext, server_id: str, backup_type: str, keep: int) -> None:
    """Delete this server's backups of ``backup_type`` beyond the ``keep`` newest, among those
    the caller may delete: its project's (its own backups of another project's server included),
    or any for an admin (each deleted as its owner)."""

    def prop(name: str, value: str) -> Any:
        return Image.props.any((ImageProperty.name == name) & (ImageProperty.value == value))

    with db.session() as s:
        get_instance(s, ctx, server_id)
        rows = list(
            s.execute(
                select(Image.id, Image.owner)
                .where(
                    Image.deleted.is_(False),
                    prop("instance_uuid", server_id),
                    prop("image_type", "backup"),
                    prop("backup_type", backup_type),
                )
                .order_by(Image.created_at.desc(), Image.id.desc())
            )
        )
        mine = [(i, owner) for i, owner in rows if owner and (ctx.is_admin or owner == ctx.project_id)]
        for image_id, owner in mine[keep:]:
            images.delete_image(s, _as_project(ctx, owner), image_id)
