"""Image members (Glance v2 ``/v2/images/{id}/members``): sharing an image with other projects.

Glance's rules (glance/api/v2/image_members.py, glance/policies/image.py):

- only ``shared`` images have members (403 "Only shared images have members." otherwise);
- the owner's project (or admin) adds and removes members; a new member is ``pending``;
- only the member project itself (or admin) sets its status: pending, accepted or rejected;
- the owner lists every member, a member sees only its own membership; a membership the caller
  may not see is 404, as is a member of an image that has no members.

A member sees the image (GET) whatever its status; lists show it once ``accepted``
(``listing.scope``, ``member_status`` filter).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from novalite.context import RequestContext
from novalite.db.base import utcnow
from novalite.db.models.image import MEMBER_STATUSES, Image, ImageMember
from novalite.errors import BadRequest, Conflict, Forbidden, NotFound, RequestTooLarge
from novalite.image.service import require_visible
from novalite.image.views import iso

MAX_MEMBERS = 128  # Glance's image_member_quota


def member_view(member: ImageMember) -> dict[str, Any]:
    return {
        "member_id": member.member,
        "image_id": member.image_id,
        "status": member.status,
        "created_at": iso(member.created_at),
        "updated_at": iso(member.updated_at),
        "schema": "/v2/schemas/member",
    }


def members_view(members: list[ImageMember]) -> dict[str, Any]:
    return {"members": [member_view(m) for m in members], "schema": "/v2/schemas/members"}


def _shared_image(s: Session, ctx: RequestContext, image_id: str, refusal: str) -> Image:
    """The visible image (404 otherwise), 403 ``refusal`` when it is not ``shared``."""
    image = require_visible(s, ctx, image_id)
    if image.visibility != "shared":
        raise Forbidden(refusal)
    return image


def _is_owner(ctx: RequestContext, image: Image) -> bool:
    return ctx.is_admin or (image.owner is not None and image.owner == ctx.project_id)


def _find(s: Session, ctx: RequestContext, image: Image, member_id: str) -> ImageMember:
    """The membership as the caller may see it: the owner sees every one, a member its own."""
    row = s.get(ImageMember, (image.id, member_id)) if isinstance(member_id, str) else None
    if row is None or not (_is_owner(ctx, image) or row.member == ctx.project_id):
        raise NotFound(f"{member_id} not found in the member list of the image {image.id}.")
    return row


def _member_id(body: Any) -> str:
    if not isinstance(body, dict):
        raise BadRequest('Expected a member in the form: {"member": "image_id"}')
    if "member" not in body:
        raise BadRequest("Member to be added not specified")
    member = body["member"]
    if not member:
        raise BadRequest("Member can't be empty")
    if not isinstance(member, str) or len(member) > 255:
        raise BadRequest("Member must be a string of at most 255 characters")
    return member


def add_member(s: Session, ctx: RequestContext, image_id: str, body: Any) -> ImageMember:
    """POST /v2/images/{id}/members {"member": <project id>}: a pending membership."""
    member_id = _member_id(body)
    refusal = f"Not allowed to create members for image {image_id}."
    image = _shared_image(s, ctx, image_id, refusal)
    if not _is_owner(ctx, image):
        raise Forbidden(refusal)
    if s.get(ImageMember, (image.id, member_id)) is not None:
        raise Conflict(f"Member {member_id} is duplicated for image {image_id}")
    count = s.scalar(select(func.count()).select_from(ImageMember).where(ImageMember.image_id == image.id))
    if (count or 0) >= MAX_MEMBERS:
        raise RequestTooLarge(
            f"Image member limit exceeded for image {image_id}: "
            f"The limit has been exceeded on the number of allowed image members for this image. "
            f"Attempted: {(count or 0) + 1}, Maximum: {MAX_MEMBERS}:"
        )
    now = utcnow()
    row = ImageMember(image_id=image.id, member=member_id, status="pending", created_at=now, updated_at=now)
    s.add(row)
    s.flush()
    return row


def list_members(s: Session, ctx: RequestContext, image_id: str) -> list[ImageMember]:
    image = _shared_image(
        s,
        ctx,
        image_id,
        f"Not allowed to list members for image {image_id}: Only shared images have members.",
    )
    stmt = select(ImageMember).where(ImageMember.image_id == image.id)
    if not _is_owner(ctx, image):
        stmt = stmt.where(ImageMember.member == ctx.project_id)
    return list(s.scalars(stmt.order_by(ImageMember.created_at, ImageMember.member)))


def show_member(s: Session, ctx: RequestContext, image_id: str, member_id: str) -> ImageMember:
    """GET one membership; Glance answers 404, never 403, so nothing leaks."""
    image = require_visible(s, ctx, image_id)
    if image.visibility != "shared":
        raise NotFound("Only shared images have members.")
    return _find(s, ctx, image, member_id)


def _status(body: Any) -> Any:
    if not isinstance(body, dict):
        raise BadRequest('Expected a status in the form: {"status": "status"}')
    if "status" not in body:
        raise BadRequest("Status not specified")
    return body["status"]


def update_member(s: Session, ctx: RequestContext, image_id: str, member_id: str, body: Any) -> ImageMember:
    """PUT {"status": ...}: only the member project itself (or admin) answers the offer."""
    status = _status(body)
    refusal = f"Not allowed to update members for image {image_id}."
    image = _shared_image(s, ctx, image_id, refusal)
    row = _find(s, ctx, image, member_id)
    if not ctx.is_admin and row.member != ctx.project_id:
        raise Forbidden(refusal)
    if status not in MEMBER_STATUSES:
        raise BadRequest('Incorrect request: Status must be "pending", "accepted" or "rejected".')
    if row.status != status:
        row.status = status
        row.updated_at = utcnow()
    s.flush()
    return row


def delete_member(s: Session, ctx: RequestContext, image_id: str, member_id: str) -> None:
    refusal = f"Not allowed to delete members for image {image_id}."
    image = _shared_image(s, ctx, image_id, refusal)
    row = _find(s, ctx, image, member_id)
    if not _is_owner(ctx, image):
        raise Forbidden(refusal)
    s.delete(row)


def share_with(s: Session, image_id: str, project_id: str) -> None:
    """Make ``project_id`` a pending member (Nova does this for a snapshot taken by another project
    of a server: the image is the caller's, shared with the server's project)."""
    if s.get(ImageMember, (image_id, project_id)) is None:
        s.add(ImageMember(image_id=image_id, member=project_id, status="pending"))
        s.flush()


def member_schema() -> dict[str, Any]:
    """GET /v2/schemas/member."""
    return {
        "name": "member",
        "properties": {
            "member_id": {"type": "string", "description": "An identifier for the image member (tenantId)"},
            "image_id": {
                "type": "string",
                "description": "An identifier for the image",
                "pattern": "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}"
                "-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$",
            },
            "created_at": {"type": "string", "description": "Date and time of image member creation"},
            "updated_at": {
                "type": "string",
                "description": "Date and time of last modification of image member",
            },
            "status": {
                "type": "string",
                "description": "The status of this image member",
                "enum": list(MEMBER_STATUSES),
            },
            "schema": {"readOnly": True, "type": "string"},
        },
    }


def members_schema() -> dict[str, Any]:
    """GET /v2/schemas/members."""
    return {
        "name": "members",
        "properties": {
            "members": {"type": "array", "items": member_schema()},
            "schema": {"type": "string"},
        },
        "links": [{"rel": "describedby", "href": "{schema}"}],
    }
