"""The Image service as the compute API's image proxy (/images, /images/{id}/metadata; gone from
2.36 and 2.39) reads and writes it: a page of the images the caller can see, one visible image
(404 otherwise), its metadata under the ``metadata_items`` quota."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from novalite.context import RequestContext
from novalite.db.base import Database
from novalite.db.models.image import Image
from novalite.errors import Forbidden, NotFound
from novalite.image import listing, service
from novalite.services import quotas

DEFAULT_METADATA_ITEMS = 128


def page(
    s: Session, ctx: RequestContext, preds: Sequence[listing.Predicate], *, limit: int, marker: str | None
) -> list[Image]:
    """The visible images matching every predicate, newest first, the page after ``marker``."""
    rows = [img for img in listing.scope(s, ctx, None) if all(p(img) for p in preds)]
    ordered = listing.sort_images(rows, [("created_at", "desc"), ("id", "desc")])
    found, _ = listing.page_after(ordered, marker, limit)
    return found


def visible_image(s: Session, ctx: RequestContext, image_id: str) -> Image:
    image = service.find_visible(s, ctx, image_id)
    if image is None:
        raise NotFound("Image not found.", kind="ImageNotFound")
    return image


def _metadata_limit(s: Session, project_id: str) -> int:
    limit = quotas.effective_limits(s, project_id).get("metadata_items", DEFAULT_METADATA_ITEMS)
    return int(limit)


def write_metadata(
    db: Database,
    ctx: RequestContext,
    image_id: str,
    *,
    merge: dict[str, str] | None = None,
    replace: dict[str, str] | None = None,
) -> dict[str, str]:
    """Merge into or replace the image's properties, within the metadata_items quota (-1: no limit)."""
    with db.session() as s:
        image = visible_image(s, ctx, image_id)
        props = dict(replace) if replace is not None else {**image.properties, **(merge or {})}
        limit = _metadata_limit(s, ctx.project_id)
        if 0 <= limit < len(props):
            raise Forbidden("Image metadata limit exceeded")
        return service.replace_metadata(s, ctx, image_id, props).properties
