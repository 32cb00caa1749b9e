"""Image rules: who sees and changes an image, its status changes, and the contract for others.

Contract (docs/DEVELOPING.md): ``get_image(s, ctx, image_id) -> ImageInfo | None``: the
image as ``ctx`` may see it, ``None`` when missing, deleted or not visible.

Visibility: ``public`` and ``community`` images are visible to every project, ``private``
ones only to the owner, ``shared`` ones to the owner and to every member project whatever
its member status (Glance: a pending member may GET the image; lists show it only once
accepted, see ``listing``); admin sees all.
Only the owner (or admin) may change, upload to or delete an image; a visible image that
is not yours answers 403, an invisible one 404. Publishing (``public``) is admin-only.

Statuses: queued --upload--> saving --> active <--deactivate/reactivate--> deactivated;
queued --stage--> uploading --import--> importing --> active (``import_``);
delete marks the row deleted (status ``deleted``) and removes its data file.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, bindparam, select, update
from sqlalchemy.orm import Session

from novalite.context import RequestContext
from novalite.db.base import utcnow
from novalite.db.models.image import Image, ImageMember, ImageProperty, ImageTag
from novalite.db.precompiled import Precompiled
from novalite.errors import BadRequest, Conflict, Forbidden, NotFound, RequestTooLarge
from novalite.image import fields, store
from novalite.image.patch import Change

MAX_PROPERTIES = 128
DEFAULT_IMAGE_NAME = "novalite-tiny"


@dataclass(frozen=True)
class ImageInfo:
    id: str
    name: str | None
    status: str
    size: int | None
    min_ram: int
    min_disk: int
    disk_format: str | None
    container_format: str | None
    visibility: str
    owner: str | None
    properties: dict[str, str] = field(default_factory=dict)
    checksum: str | None = None
    path: str | None = None  # the data file, when the image has data


def _core(s: Session) -> Connection:
    """The session's connection, for column-only statements: skips the ORM execution layer.
    Pending ORM changes are flushed first, as ``s.execute`` would (autoflush)."""
    if s.autoflush:
        s.flush()
    return s.connection()


def can_see(ctx: RequestContext, image: Image) -> bool:
    """Visible without asking about members (``find_visible`` also asks)."""
    if image.deleted:
        return False
    if ctx.is_admin or image.visibility in ("public", "community"):
        return True
    return image.owner is not None and image.owner == ctx.project_id


_MEMBER_QUERY = Precompiled(
    select(ImageMember.status).where(
        ImageMember.image_id == bindparam("image_id"), ImageMember.member == bindparam("member")
    )
)


def is_member(s: Session, image_id: str, project_id: str | None) -> bool:
    """Whether ``project_id`` is a member of the image (any member status)."""
    if not project_id:
        return False
    return bool(_MEMBER_QUERY.all(_core(s), {"image_id": image_id, "member": project_id}))


def _shared_with(s: Session, ctx: RequestContext, image_id: str, visibility: str, deleted: bool) -> bool:
    return not deleted and visibility == "shared" and is_member(s, image_id, ctx.project_id)


def info(image: Image) -> ImageInfo:
    path = image_data_path(image)
    return ImageInfo(
        id=image.id,
        name=image.name,
        status=image.status,
        size=image.size,
        min_ram=image.min_ram,
        min_disk=image.min_disk,
        disk_format=image.disk_format,
        container_format=image.container_format,
        visibility=image.visibility,
        owner=image.owner,
        properties=image.properties,
        checksum=image.checksum,
        path=str(path) if path is not None else None,
    )


def image_data_path(image: Image) -> Path | None:
    if image.data_path and image.status in ("active", "deactivated") and Path(image.data_path).is_file():
        return Path(image.data_path)
    return None


_INFO_COLUMNS = (
    Image.id,
    Image.name,
    Image.status,
    Image.size,
    Image.min_ram,
    Image.min_disk,
    Image.disk_format,
    Image.container_format,
    Image.visibility,
    Image.owner,
    Image.checksum,
    Image.data_path,
    Image.deleted,
)
# the image's columns with its properties (one row per property, ordered by name as ``props``)
_INFO_QUERY = Precompiled(
    select(*_INFO_COLUMNS, ImageProperty.name.label("prop_name"), ImageProperty.value)
    .outerjoin(ImageProperty, ImageProperty.image_id == Image.id)
    .where(Image.id == bindparam("image_id"))
    .order_by(ImageProperty.name)
)


def get_image(s: Session, ctx: RequestContext, image_id: str) -> ImageInfo | None:
    """``info(find_visible(...))`` in one column query (no ORM objects; POST /servers reads it)."""
    if not isinstance(image_id, str) or len(image_id) > 36:
        return None
    rows = _INFO_QUERY.all(_core(s), {"image_id": image_id})
    if not rows:
        return None
    (
        id_,
        name,
        status,
        size,
        min_ram,
        min_disk,
        disk_format,
        container_format,
        visibility,
        owner,
        checksum,
        data_path,
        deleted,
    ) = rows[0][: len(_INFO_COLUMNS)]
    if deleted or not (
        ctx.is_admin
        or visibility in ("public", "community")
        or (owner is not None and owner == ctx.project_id)
        or _shared_with(s, ctx, id_, visibility, deleted)
    ):
        return None
    path = (
        data_path
        if (data_path and status in ("active", "deactivated") and Path(data_path).is_file())
        else None
    )
    return ImageInfo(
        id=id_,
        name=name,
        status=status,
        size=size,
        min_ram=min_ram,
        min_disk=min_disk,
        disk_format=disk_format,
        container_format=container_format,
        visibility=visibility,
        owner=owner,
        properties={row[-2]: row[-1] for row in rows if row[-2] is not None},
        checksum=checksum,
        path=str(Path(path)) if path is not None else None,
    )


def find_visible(s: Session, ctx: RequestContext, image_id: str) -> Image | None:
    if not isinstance(image_id, str) or len(image_id) > 36:
        return None
    image = s.get(Image, image_id)
    if image is None or not (
        can_see(ctx, image) or _shared_with(s, ctx, image.id, image.visibility, image.deleted)
    ):
        return None
    return image


def require_visible(s: Session, ctx: RequestContext, image_id: str) -> Image:
    image = find_visible(s, ctx, image_id)
    if image is None:
        raise NotFound(f"No image found with ID {image_id}", kind="ImageNotFound")
    return image


def require_owner(ctx: RequestContext, image: Image, action: str = "modify") -> None:
    if not ctx.is_admin and image.owner != ctx.project_id:
        raise Forbidden(f"You are not permitted to {action} this image.", kind="ImageNotAuthorized")


def _check_publicize(ctx: RequestContext, visibility: Any) -> None:
    if visibility == "public" and not ctx.is_admin:
        raise Forbidden("You are not authorized to complete publicize_image action.")


def _check_owner_change(ctx: RequestContext, owner: Any) -> None:
    if owner is not None and owner != ctx.project_id and not ctx.is_admin:
        raise Forbidden(f"You are not permitted to create images owned by '{owner}'.")


def set_properties(image: Image, props: dict[str, str]) -> None:
    """Make the image's free-form properties exactly ``props``."""
    if len(props) > MAX_PROPERTIES:
        raise RequestTooLarge(f"Maximum number of image properties exceeded ({MAX_PROPERTIES})")
    current = {p.name: p for p in image.props}
    for name, row in current.items():
        if name not in props:
            image.props.remove(row)
    for name, value in props.items():
        if name in current:
            current[name].value = value
        else:
            image.props.append(ImageProperty(name=name, value=value))


def set_tags(image: Image, tags: list[str]) -> None:
    wanted = set(tags)
    for row in list(image.tag_rows):
        if row.value not in wanted:
            image.tag_rows.remove(row)
    have = {t.value for t in image.tag_rows}
    for tag in sorted(wanted - have):
        image.tag_rows.append(ImageTag(value=tag))


def _set_core(ctx: RequestContext, image: Image, attr: str, value: Any) -> None:
    value = fields.check_value(attr, value)
    if attr == "visibility":
        _check_publicize(ctx, value)
    if attr == "owner":
        _check_owner_change(ctx, value)
    if attr == "tags":
        set_tags(image, value)
    else:
        setattr(image, attr, value)


def create_image(s: Session, ctx: RequestContext, body: Any) -> Image:
    """POST /v2/images: a queued image owned by ``ctx``'s project (or ``owner`` for admin)."""
    if not isinstance(body, dict):
        raise BadRequest("Request body must be a JSON object.")
    image = Image(
        status="queued",
        visibility="shared",
        owner=ctx.project_id,
        protected=False,
        os_hidden=False,
        min_ram=0,
        min_disk=0,
    )
    props: dict[str, str] = {}
    for attr, value in body.items():
        if attr == "id":
            image.id = fields.check_id(value)
            continue
        fields.check_writable(attr, creating=True)
        if attr in fields.CORE:
            _set_core(ctx, image, attr, value)
        else:
            props[attr] = fields.check_property(attr, value)
    set_properties(image, props)
    if image.id and s.get(Image, image.id) is not None:
        raise Conflict(f"Image with identifier {image.id} already exists!")
    s.add(image)
    s.flush()
    return image


def _apply_property_change(image: Image, change: Change, props: dict[str, str]) -> None:
    if change.op == "remove" or (change.op == "replace" and change.attr not in props):
        if change.attr not in props:
            raise Conflict(f"Property {change.attr} does not exist.")
        del props[change.attr]
        return
    props[change.attr] = fields.check_property(change.attr, change.value)


def update_image(s: Session, ctx: RequestContext, image_id: str, changes: list[Change]) -> Image:
    """PATCH /v2/images/{id}: apply the changes in order, all or nothing."""
    image = require_visible(s, ctx, image_id)
    for change in changes:
        fields.check_writable(change.attr)
    require_owner(ctx, image)
    props = image.properties
    for change in changes:
        if change.attr in fields.CORE:
            if change.op == "remove":
                raise Forbidden(f"Property {change.attr} may not be removed.")
            _set_core(ctx, image, change.attr, change.value)
        else:
            _apply_property_change(image, change, props)
    set_properties(image, props)
    image.updated_at = utcnow()
    s.flush()
    return image


def replace_metadata(s: Session, ctx: RequestContext, image_id: str, props: dict[str, str]) -> Image:
    """The compute proxy's metadata writes: the image's properties become ``props``."""
    image = require_visible(s, ctx, image_id)
    require_owner(ctx, image)
    set_properties(image, {k: fields.check_property(k, v) for k, v in props.items()})
    image.updated_at = utcnow()
    s.flush()
    return image


def delete_image(s: Session, ctx: RequestContext, image_id: str) -> None:
    """Mark the image deleted; the caller removes the data file after the commit."""
    image = require_visible(s, ctx, image_id)
    require_owner(ctx, image, "delete")
    if image.protected:
        raise Forbidden(f"Image {image.id} is protected and cannot be deleted.")
    image.deleted = True
    image.status = "deleted"
    image.deleted_at = utcnow()
    image.updated_at = image.deleted_at


def change_activation(s: Session, ctx: RequestContext, image_id: str, action: str) -> None:
    """``deactivate`` (active|deactivated -> deactivated) or ``reactivate`` (back to active)."""
    image = require_visible(s, ctx, image_id)
    require_owner(ctx, image, action)
    if image.status not in ("active", "deactivated"):
        raise Forbidden(f"Not allowed to {action} image in status '{image.status}'")
    target = "deactivated" if action == "deactivate" else "active"
    if image.status != target:
        image.status = target
        image.updated_at = utcnow()


def add_tag(s: Session, ctx: RequestContext, image_id: str, tag: str) -> None:
    image = require_visible(s, ctx, image_id)
    require_owner(ctx, image)
    tag = fields.check_tag(tag)
    if tag not in image.tags:
        if len(image.tags) >= fields.MAX_TAGS:
            raise fields.RequestTooManyTags()
        image.tag_rows.append(ImageTag(value=tag))
        image.updated_at = utcnow()


def remove_tag(s: Session, ctx: RequestContext, image_id: str, tag: str) -> None:
    image = require_visible(s, ctx, image_id)
    require_owner(ctx, image)
    row = next((t for t in image.tag_rows if t.value == tag), None)
    if row is None:
        raise NotFound(f"Tag {tag} not found.")
    image.tag_rows.remove(row)
    image.updated_at = utcnow()


def begin_upload(s: Session, ctx: RequestContext, image_id: str) -> None:
    """queued -> saving as a compare-and-swap; 409 for any other status so data is written once."""
    image = require_visible(s, ctx, image_id)
    require_owner(ctx, image, "upload data to")
    if not image.disk_format or not image.container_format:
        raise BadRequest("Properties disk_format, container_format must be set prior to saving data.")
    swapped = s.execute(
        update(Image)
        .where(Image.id == image.id, Image.status == "queued")
        .values(status="saving")
        .execution_options(synchronize_session=False)
    )
    if swapped.rowcount != 1:  # type: ignore[attr-defined]
        s.refresh(image)
        raise Conflict(f"Image status transition from {image.status} to saving is not allowed")


def finish_upload(s: Session, image_id: str, data: store.StoredData, from_status: str = "saving") -> None:
    """``from_status`` (saving, or importing for an import) -> active with the data's size and hashes."""
    image = s.get(Image, image_id)
    if image is None or image.deleted or image.status != from_status:
        raise NotFound(
            f"Image {image_id} could not be found after upload. The image may have been deleted "
            "during the upload."
        )
    image.status = "active"
    image.size = data.size
    image.virtual_size = data.size if image.disk_format == "raw" else None
    image.checksum = data.md5
    image.os_hash_algo = "sha512"
    image.os_hash_value = data.sha512
    image.data_path = str(data.path)
    image.updated_at = utcnow()


def abort_upload(s: Session, image_id: str) -> None:
    """An upload failed half-way: back to queued so the client can try again."""
    image = s.get(Image, image_id)
    if image is not None and image.status == "saving":
        image.status = "queued"


def upload_bytes(runtime: Any, ctx: RequestContext, image_id: str, data: bytes) -> ImageInfo:
    """Give a queued image its data in one call (snapshots, tests): queued -> saving -> active.

    Runs its own short units of work; do not call it while holding a session.
    """
    with runtime.db.session() as s:
        begin_upload(s, ctx, image_id)
    try:
        stored = store.write_bytes(runtime.settings.data_dir, image_id, data)
        with runtime.db.session() as s:
            finish_upload(s, image_id, stored)
            return info(s.get(Image, image_id))  # type: ignore[arg-type]
    except BaseException:
        store.remove(runtime.settings.data_dir, image_id)
        with runtime.db.session() as s:
            abort_upload(s, image_id)
        raise


def tiny_image_bytes(size: int = 4096) -> bytes:
    """The default image's data: a recognizable header and a deterministic filler."""
    header = b"NOVALITE-TINY-IMAGE v1\n"
    filler = hashlib.sha512(header).digest()
    body = header + filler * ((size - len(header)) // len(filler) + 1)
    return body[:size]


def seed(runtime: Any, session: Session, ids: dict[str, str]) -> None:
    """Create the public ``novalite-tiny`` image when missing (and its data file when lost)."""
    image = session.scalars(
        select(Image).where(Image.name == DEFAULT_IMAGE_NAME, Image.deleted.is_(False))
    ).first()
    data_dir = runtime.settings.data_dir
    if image is None:
        image = Image(
            name=DEFAULT_IMAGE_NAME,
            status="queued",
            visibility="public",
            owner=ids["admin_project"],
            protected=False,
            os_hidden=False,
            disk_format="raw",
            container_format="bare",
            min_ram=0,
            min_disk=0,
            created_at=utcnow() - dt.timedelta(seconds=1),
        )
        session.add(image)
        session.flush()
    elif image_data_path(image) is not None:
        return
    image.status = "saving"
    stored = store.write_bytes(data_dir, image.id, tiny_image_bytes())
    finish_upload(session, image.id, stored)
    session.flush()
