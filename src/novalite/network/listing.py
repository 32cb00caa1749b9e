"""Neutron list semantics over already-rendered items: attribute filters (repeat a key for
"any of"), ``fields=``, ``sort_key``/``sort_dir``, ``limit``/``marker`` with
``<collection>_links``. Unknown filter keys are ignored, as Neutron did before strict
filter validation, so newer clients' extra filters never break a listing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from fastapi import Request

from novalite.api.common import runtime
from novalite.errors import BadRequest, NotFound

CONTROL = {"fields", "limit", "marker", "sort_key", "sort_dir", "page_reverse", "all_tenants"}


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value)


def _matches(item: dict[str, Any], key: str, wanted: list[str]) -> bool:
    value = item[key]
    if key == "fixed_ips":
        pairs = {f"{k}={ip.get(k)}" for ip in value for k in ("subnet_id", "ip_address")}
        substrings = [w.split("=", 1)[1] for w in wanted if w.startswith("ip_address_substr=")]
        return any(w in pairs for w in wanted) or any(
            sub in ip["ip_address"] for sub in substrings for ip in value
        )
    if isinstance(value, list):
        return any(w in [_text(v) for v in value] for w in wanted)
    text = _text(value)
    if isinstance(value, bool):
        return any(w.lower() in (("true", "1") if value else ("false", "0")) for w in wanted)
    return text in wanted


TAG_FILTERS = ("tags", "tags-any", "not-tags", "not-tags-any")


def _tag_filters(items: list[dict[str, Any]], wanted: dict[str, list[str]]) -> list[dict[str, Any]]:
    """tags (all of), tags-any (any of), not-tags (not all of), not-tags-any (none of); comma lists."""
    out = items
    for key in TAG_FILTERS:
        values = {t for raw in wanted.pop(key, []) for t in raw.split(",") if t}
        if not values:
            continue
        if key == "tags":
            out = [i for i in out if values <= set(i.get("tags", []))]
        elif key == "tags-any":
            out = [i for i in out if values & set(i.get("tags", []))]
        elif key == "not-tags":
            out = [i for i in out if not values <= set(i.get("tags", []))]
        else:
            out = [i for i in out if not values & set(i.get("tags", []))]
    return out


def apply_filters(request: Request, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    wanted: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        if key not in CONTROL:
            wanted.setdefault(key, []).append(value)
    if "tenant_id" in wanted and "project_id" not in wanted:
        wanted["project_id"] = wanted.pop("tenant_id")
    out = _tag_filters(items, wanted)
    for key, values in wanted.items():
        if out and key in out[0] and key != "tags":
            out = [item for item in out if _matches(item, key, values)]
    return out


def _sort_key(value: Any) -> tuple[bool, Any]:
    """None first; scalars by value (numbers as numbers); lists and objects by their JSON text."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return (value is not None, value)
    return (True, json.dumps(value, sort_keys=True))


def _sort(request: Request, items: list[dict[str, Any]], sortable: set[str]) -> list[dict[str, Any]]:
    keys = request.query_params.getlist("sort_key")
    dirs = request.query_params.getlist("sort_dir")
    for d in dirs:
        if d not in ("asc", "desc"):
            raise BadRequest(f"{d} is invalid attribute for sort_dir", kind="HTTPBadRequest")
    if dirs and len(dirs) != len(keys):
        raise BadRequest("The number of sort_keys and sort_dirs must be same", kind="HTTPBadRequest")
    for k in keys:
        if sortable and k not in sortable:  # an empty list has nothing to check the key against
            raise BadRequest(f"{k} is invalid attribute for sort_key", kind="HTTPBadRequest")
    out = list(items)
    for key, direction in reversed(list(zip(keys, dirs or ["asc"] * len(keys), strict=False))):
        out.sort(key=lambda item: _sort_key(item.get(key)), reverse=direction == "desc")
    return out


def _limit(request: Request) -> int | None:
    raw = request.query_params.get("limit")
    if raw is None:
        return None
    try:
        limit = int(raw)
    except ValueError:
        raise BadRequest(
            f"Limit must be an integer 0 or greater and not '{raw}'", kind="BadRequest"
        ) from None
    if limit < 0:
        raise BadRequest(f"Limit must be an integer 0 or greater and not '{raw}'", kind="BadRequest")
    return limit or None


def _fields(request: Request, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    wanted = [f for value in request.query_params.getlist("fields") for f in value.split(",") if f]
    if not wanted:
        return items
    return [{k: v for k, v in item.items() if k in wanted} for item in items]


def list_response(
    request: Request,
    collection: str,
    items: list[dict[str, Any]],
    *,
    not_found: Callable[[str], NotFound] | None = None,
) -> dict[str, Any]:
    """Filter, sort, page and trim ``items``; the body Neutron answers for a list.

    ``not_found(marker)`` is the error for a marker that names no listed item.
    """
    items = apply_filters(request, items)
    sortable = set(items[0]) if items else set()
    items = _sort(request, items, sortable)
    limit, marker = _limit(request), request.query_params.get("marker")
    start = 0
    if marker is not None:
        ids = [item.get("id") for item in items]  # availability zones and pools have no id
        if marker not in ids:
            raise not_found(marker) if not_found else NotFound(f"Marker {marker} could not be found.")
        start = ids.index(marker) + 1
    page = items[start : start + limit] if limit else items[start:]
    body: dict[str, Any] = {collection: _fields(request, page)}
    if limit:
        links = []
        base = f"{runtime(request).public_url}{request.url.path}"
        params = [(k, v) for k, v in request.query_params.multi_items() if k != "marker"]
        if len(page) == limit and start + limit < len(items) and "id" in page[-1]:
            links.append(
                {"rel": "next", "href": f"{base}?{urlencode(params + [('marker', page[-1]['id'])])}"}
            )
        if marker is not None and page and "id" in page[0]:
            links.append(
                {
                    "rel": "previous",
                    "href": f"{base}?"
                    + urlencode(params + [("marker", page[0]["id"]), ("page_reverse", "True")]),
                }
            )
        if links:
            body[f"{collection}_links"] = links
    return body


def fields_of(request: Request, item: dict[str, Any]) -> dict[str, Any]:
    return _fields(request, [item])[0]
