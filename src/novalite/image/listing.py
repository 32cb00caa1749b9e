"""GET /v2/images: visibility scope, filters, sorting and marker paging (Glance v2 rules).

The candidate rows come from SQL (not deleted, visible to the caller); filters, sort and
paging run in Python on that set. Default order: ``created_at`` desc, then ``id`` desc.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from novalite.context import RequestContext
from novalite.db.models.image import IMAGE_STATUSES, VISIBILITIES, Image, ImageMember
from novalite.errors import BadRequest

DEFAULT_LIMIT = 25
MAX_LIMIT = 1000
SORT_KEYS = (
    "name",
    "status",
    "container_format",
    "disk_format",
    "size",
    "id",
    "created_at",
    "updated_at",
    "min_disk",
    "min_ram",
    "visibility",
    "owner",
    "protected",
    "virtual_size",
    "os_hidden",
)
IN_FILTERS = ("id", "name", "status", "owner", "disk_format", "container_format", "checksum", "os_hash_value")
NOT_PROPERTIES = frozenset(
    IN_FILTERS
    + (
        "visibility",
        "tag",
        "member_status",
        "sort",
        "sort_key",
        "sort_dir",
        "limit",
        "marker",
        "size_min",
        "size_max",
        "protected",
        "os_hidden",
        "created_at",
        "updated_at",
    )
)
TIME_OPS: dict[str, Callable[[dt.datetime, dt.datetime], bool]] = {
    "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
    "eq": lambda a, b: a == b,
    "neq": lambda a, b: a != b,
}
Predicate = Callable[[Image], bool]


@dataclass
class ImageQuery:
    visibility: str | None = None
    member_status: str = "accepted"  # which shared-with-me images a member lists ("all": every one)
    predicates: list[Predicate] = field(default_factory=list)
    sort: list[tuple[str, str]] = field(default_factory=list)
    limit: int = DEFAULT_LIMIT
    marker: str | None = None


def scope(
    s: Session, ctx: RequestContext, visibility: str | None, member_status: str = "accepted"
) -> list[Image]:
    """Non-deleted images the caller may list; others' community images only when asked for;
    shared images of which the caller's project is a member of ``member_status`` (Glance's
    default: accepted ones only)."""
    stmt = select(Image).where(Image.deleted.is_(False))
    if visibility not in (None, "all"):
        stmt = stmt.where(Image.visibility == visibility)
    if not ctx.is_admin:
        shown = ["public"] + (["community"] if visibility in ("community", "all") else [])
        memberships = select(ImageMember.image_id).where(ImageMember.member == ctx.project_id)
        if member_status != "all":
            memberships = memberships.where(ImageMember.status == member_status)
        stmt = stmt.where(
            or_(
                Image.visibility.in_(shown),
                Image.owner == ctx.project_id,
                and_(Image.visibility == "shared", Image.id.in_(memberships)),
            )
        )
    return list(s.scalars(stmt))


def parse_time(text: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"Invalid timestamp '{text}'") from None
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def _in_values(raw: str) -> list[str]:
    return raw[3:].split(",") if raw.startswith("in:") else [raw]


def _in_filter(attr: str, raw: str) -> Predicate:
    wanted = set(_in_values(raw))
    if attr == "status":
        bad = [v for v in wanted if v not in IMAGE_STATUSES]
        if bad:
            raise BadRequest(f"Invalid status value: {bad[0]}")
    return lambda img: getattr(img, attr) in wanted


def _time_filter(attr: str, raw: str) -> Predicate:
    op, _, text = raw.partition(":") if raw.split(":", 1)[0] in TIME_OPS else ("eq", "", raw)
    compare, when = TIME_OPS[op], parse_time(text)
    return lambda img: compare(getattr(img, attr), when)


def _int_param(name: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} param must be an integer") from None
    if value < 0:
        raise BadRequest(f"{name} param must be positive")
    return value


def _bool_param(name: str, raw: str) -> bool:
    if raw.lower() not in ("true", "false"):
        raise BadRequest(f"Invalid value '{raw}' for {name}: must be true or false")
    return raw.lower() == "true"


def _filter_for(key: str, raw: str) -> Predicate | None:
    if key in IN_FILTERS:
        return _in_filter(key, raw)
    if key == "tag":
        return lambda img: raw in img.tags
    if key in ("created_at", "updated_at"):
        return _time_filter(key, raw)
    if key == "size_min":
        low = _int_param(key, raw)
        return lambda img: img.size is not None and img.size >= low
    if key == "size_max":
        high = _int_param(key, raw)
        return lambda img: img.size is not None and img.size <= high
    if key in ("protected", "os_hidden"):
        flag = _bool_param(key, raw)
        return lambda img: bool(getattr(img, key)) == flag
    if key == "member_status":
        return None  # a scope, not a predicate (parse_query)
    if key in NOT_PROPERTIES:
        return None
    return lambda img: img.properties.get(key) == raw


def _parse_sort(params: dict[str, list[str]]) -> list[tuple[str, str]]:
    keys, dirs = params.get("sort_key", []), params.get("sort_dir", [])
    if "sort" in params:
        if keys or dirs:
            raise BadRequest("The 'sort' parameter cannot be combined with 'sort_key' or 'sort_dir'.")
        pairs = []
        for item in ",".join(params["sort"]).split(","):
            key, _, direction = item.strip().partition(":")
            pairs.append((key, direction or "desc"))
    else:
        if len(dirs) > 1 and len(dirs) != len(keys):
            raise BadRequest("Number of sort dirs does not match the number of sort keys")
        pairs = [(k, dirs[i] if len(dirs) > 1 else (dirs[0] if dirs else "desc")) for i, k in enumerate(keys)]
        if not keys and dirs:
            pairs = [("created_at", dirs[0])]
    for key, direction in pairs:
        if key not in SORT_KEYS:
            raise BadRequest(f"Invalid sort key: {key}. It is not one of: {', '.join(SORT_KEYS)}")
        if direction not in ("asc", "desc"):
            raise BadRequest(f"Invalid sort direction: {direction}")
    tie = pairs[-1][1] if pairs else "desc"
    for key in ("created_at", "id"):
        if key not in [k for k, _ in pairs]:
            pairs.append((key, tie))
    return pairs


def _last(params: dict[str, list[str]], key: str) -> str | None:
    values = params.get(key)
    return values[-1] if values else None


def parse_query(items: Iterable[tuple[str, str]]) -> ImageQuery:
    """Turn query parameters into an ``ImageQuery``; 400 for anything malformed."""
    params: dict[str, list[str]] = {}
    for key, value in items:
        params.setdefault(key, []).append(value)
    q = ImageQuery(sort=_parse_sort(params), marker=_last(params, "marker"))
    if "limit" in params:
        q.limit = min(_int_param("limit", params["limit"][-1]), MAX_LIMIT)
    visibility = _last(params, "visibility")
    if visibility is not None and visibility not in VISIBILITIES + ("all",):
        raise BadRequest(f"Invalid visibility value: {visibility}")
    q.visibility = visibility
    member_status = _last(params, "member_status")
    if member_status is not None:
        if member_status not in ("accepted", "pending", "rejected", "all"):
            raise BadRequest(f"Invalid status: {member_status}")
        q.member_status = member_status
    if "os_hidden" not in params:
        q.predicates.append(lambda img: not img.os_hidden)
    for key, values in params.items():
        for raw in values:
            pred = _filter_for(key, raw)
            if pred is not None:
                q.predicates.append(pred)
    return q


def _sort_value(value: Any) -> tuple[bool, Any]:
    return (value is not None, value if value is not None else 0)


def sort_images(images: list[Image], sort: list[tuple[str, str]]) -> list[Image]:
    out = list(images)
    for key, direction in reversed(sort):

        def sort_key(img: Image, k: str = key) -> tuple[bool, Any]:
            return _sort_value(getattr(img, k))

        out.sort(key=sort_key, reverse=direction == "desc")
    return out


def page_after(images: list[Image], marker: str | None, limit: int) -> tuple[list[Image], bool]:
    """The page after ``marker`` and whether more follow; 400 when the marker is not listed."""
    start = 0
    if marker is not None:
        ids = [img.id for img in images]
        if marker not in ids:
            raise BadRequest(f"Invalid marker. Image {marker} could not be found.")
        start = ids.index(marker) + 1
    page = images[start : start + limit]
    return page, start + limit < len(images)


def list_images(s: Session, ctx: RequestContext, q: ImageQuery) -> tuple[list[Image], bool]:
    rows = [img for img in scope(s, ctx, q.visibility, q.member_status) if all(p(img) for p in q.predicates)]
    return page_after(sort_images(rows, q.sort), q.marker, q.limit)
