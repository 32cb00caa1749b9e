"""The compute API's image proxy: /images and /images/{id}/metadata over the Image service.

/images answers up to microversion 2.35 and /images/{id}/metadata up to 2.38; past that
they answer a plain 404 (Nova removed the proxy APIs in 2.36 and 2.39). Reads and writes
go through ``novalite.image.service``, so visibility and ownership rules are the Image
service's: another project's private image is a 404, a visible image you do not own is a
403 to change or delete.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from novalite.api.common import (
    compute_links,
    json_body,
    next_link,
    parse_limit,
    request_context,
    runtime,
    validate,
)
from novalite.api.microversion import V, request_version
from novalite.context import RequestContext
from novalite.db.models.image import Image
from novalite.errors import BadRequest, Forbidden, NotFound
from novalite.image import listing, service, store
from novalite.image.views import iso
from novalite.services import image_proxy as proxy


def _images_available(request: Request) -> None:
    # 2.36: the image proxy APIs are gone
    if request_version(request) >= V(2, 36):
        raise NotFound("The resource could not be found.")


def _metadata_available(request: Request) -> None:
    # 2.39: the image metadata proxy APIs are gone too
    if request_version(request) >= V(2, 39):
        raise NotFound("The resource could not be found.")


router = APIRouter(prefix="/compute/v2.1")
_images = APIRouter(dependencies=[Depends(_images_available)])
_metadata = APIRouter(dependencies=[Depends(_metadata_available)])

_METADATA = {
    "type": "object",
    "patternProperties": {"^[a-zA-Z0-9-_:. ]{1,255}$": {"type": "string", "maxLength": 255}},
    "additionalProperties": False,
}
METADATA_ALL_SCHEMA = {
    "type": "object",
    "properties": {"metadata": _METADATA},
    "required": ["metadata"],
    "additionalProperties": False,
}
METADATA_ITEM_SCHEMA = {
    "type": "object",
    "properties": {"meta": dict(_METADATA, minProperties=1, maxProperties=1)},
    "required": ["meta"],
    "additionalProperties": False,
}
STATUS_MAP = {
    "active": "ACTIVE",
    "queued": "SAVING",
    "saving": "SAVING",
    "deleted": "DELETED",
    "pending_delete": "DELETED",
    "killed": "ERROR",
}
PROGRESS = {"queued": 25, "saving": 50, "active": 100}


# --- views -------------------------------------------------------------------------------


def _links(request: Request, image_id: str) -> list[dict[str, str]]:
    alternate = {
        "rel": "alternate",
        "type": "application/vnd.openstack.image",
        "href": f"{runtime(request).public_url}/image/images/{image_id}",
    }
    return [*compute_links(request, "images", image_id), alternate]


def basic_view(request: Request, image: Image) -> dict[str, Any]:
    return {"id": image.id, "name": image.name, "links": _links(request, image.id)}


def detail_view(request: Request, image: Image) -> dict[str, Any]:
    props = image.properties
    body: dict[str, Any] = {
        "id": image.id,
        "name": image.name,
        "minRam": image.min_ram,
        "minDisk": image.min_disk,
        "metadata": props,
        "created": iso(image.created_at),
        "updated": iso(image.updated_at),
        "status": STATUS_MAP.get(image.status, "UNKNOWN"),
        "progress": PROGRESS.get(image.status, 0),
        "links": _links(request, image.id),
        "OS-EXT-IMG-SIZE:size": image.size,
    }
    server = props.get("instance_uuid")
    if server:
        body["server"] = {"id": server, "links": compute_links(request, "servers", server)}
    return body


# --- reading -----------------------------------------------------------------------------


def _attr_is(attr: str, value: Any) -> listing.Predicate:
    return lambda img: bool(getattr(img, attr) == value)


def _attr_at_least(attr: str, low: Any) -> listing.Predicate:
    return lambda img: bool(getattr(img, attr) >= low)


def _property_is(prop: str, value: str) -> listing.Predicate:
    return lambda img: img.properties.get(prop) == value


def _filter(key: str, raw: str) -> listing.Predicate | None:
    if key == "name":
        return _attr_is("name", raw)
    if key == "status":
        return _attr_is("status", raw.lower())
    if key == "changes-since":
        return _attr_at_least("updated_at", listing.parse_time(raw))
    if key == "server":
        return _property_is("instance_uuid", raw.rsplit("/", 1)[-1])
    if key == "type":
        return _property_is("image_type", raw)
    if key.startswith("property-"):
        return _property_is(key[len("property-") :], raw)
    if key in ("minRam", "minDisk"):
        return _attr_at_least("min_ram" if key == "minRam" else "min_disk", _int_filter(key, raw))
    return None


def _filters(request: Request) -> list[listing.Predicate]:
    """Nova's proxy filters: name, status, changes-since, server, type, minRam, minDisk, property-*."""
    preds: list[listing.Predicate] = [lambda img: not img.os_hidden]
    for key, raw in request.query_params.multi_items():
        pred = _filter(key, raw)
        if pred is not None:
            preds.append(pred)
    return preds


def _int_filter(key: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise BadRequest(f"Invalid filter value for {key}: {raw}") from None


def _rendered_page(request: Request, ctx: RequestContext, view: Callable[[Request, Image], Any]) -> list[Any]:
    """The page the request asks for, each image through ``view`` (inside the read: the views
    read the images' properties)."""
    limit, marker = parse_limit(request)
    preds = _filters(request)
    with runtime(request).db.reader() as s:
        return [view(request, img) for img in proxy.page(s, ctx, preds, limit=limit, marker=marker)]


@_images.get("/images")
def index(request: Request, ctx: RequestContext = Depends(request_context)) -> dict[str, Any]:
    images = _rendered_page(request, ctx, basic_view)
    return _collection(request, "images", images)


@_images.get("/images/detail")
def detail(request: Request, ctx: RequestContext = Depends(request_context)) -> dict[str, Any]:
    images = _rendered_page(request, ctx, detail_view)
    return _collection(request, "images/detail", images)


def _collection(request: Request, collection: str, images: list[dict[str, Any]]) -> dict[str, Any]:
    body: dict[str, Any] = {"images": images}
    limit, _ = parse_limit(request)
    links = next_link(request, collection, images, lambda i: i["id"], limit)
    if links:
        body["images_links"] = links
    return body


@_images.get("/images/{image_id}")
def show(image_id: str, request: Request, ctx: RequestContext = Depends(request_context)) -> dict[str, Any]:
    with runtime(request).db.reader() as s:
        return {"image": detail_view(request, proxy.visible_image(s, ctx, image_id))}


@_images.delete("/images/", include_in_schema=False)
def delete_blank(request: Request, ctx: RequestContext = Depends(request_context)) -> Response:
    """An empty image id (Tempest's blank-id check) is an unknown image, not a bad method."""
    raise NotFound("Image not found.", kind="ImageNotFound")


@_images.delete("/images/{image_id}", status_code=204)
def delete(image_id: str, request: Request, ctx: RequestContext = Depends(request_context)) -> Response:
    rt = runtime(request)
    with rt.db.session() as s:
        image = proxy.visible_image(s, ctx, image_id)
        if image.protected or (not ctx.is_admin and image.owner != ctx.project_id):
            raise Forbidden("You are not allowed to delete the image.", kind="ImageNotAuthorized")
        service.delete_image(s, ctx, image_id)
    store.remove(rt.settings.data_dir, image_id)
    return Response(status_code=204)


# --- metadata ----------------------------------------------------------------------------


@_metadata.get("/images/{image_id}/metadata")
def metadata_index(
    image_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    with runtime(request).db.reader() as s:
        return {"metadata": proxy.visible_image(s, ctx, image_id).properties}


@_metadata.get("/images/{image_id}/metadata/{key}")
def metadata_show(
    image_id: str, key: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    with runtime(request).db.reader() as s:
        props = proxy.visible_image(s, ctx, image_id).properties
    if key not in props:
        raise NotFound("Invalid metadata key")
    return {"meta": {key: props[key]}}


def _write_metadata(
    request: Request,
    ctx: RequestContext,
    image_id: str,
    *,
    merge: dict[str, str] | None = None,
    replace: dict[str, str] | None = None,
) -> dict[str, str]:
    return proxy.write_metadata(runtime(request).db, ctx, image_id, merge=merge, replace=replace)


@_metadata.put("/images/{image_id}/metadata")
async def metadata_update_all(
    image_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    body = await json_body(request)
    validate(METADATA_ALL_SCHEMA, body)
    metadata = body["metadata"]
    await _run(_write_metadata, request, ctx, image_id, replace=metadata)
    return {"metadata": metadata}


@_metadata.post("/images/{image_id}/metadata")
async def metadata_create(
    image_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    body = await json_body(request)
    validate(METADATA_ALL_SCHEMA, body)
    return {"metadata": await _run(_write_metadata, request, ctx, image_id, merge=body["metadata"])}


@_metadata.put("/images/{image_id}/metadata/{key}")
async def metadata_update(
    image_id: str, key: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    body = await json_body(request)
    validate(METADATA_ITEM_SCHEMA, body)
    meta = body["meta"]
    if key not in meta:
        raise BadRequest("Request body and URI mismatch")
    await _run(_write_metadata, request, ctx, image_id, merge=meta)
    return {"meta": meta}


@_metadata.delete("/images/{image_id}/metadata/{key}", status_code=204)
def metadata_delete(
    image_id: str, key: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> Response:
    with runtime(request).db.session() as s:
        props = proxy.visible_image(s, ctx, image_id).properties
        if key not in props:
            raise NotFound("Invalid metadata key")
        del props[key]
        service.replace_metadata(s, ctx, image_id, props)
    return Response(status_code=204)


async def _run(fn: Any, *args: Any, **kwargs: Any) -> Any:
    return await run_in_threadpool(fn, *args, **kwargs)


# included last: FastAPI copies the routes at include time
router.include_router(_images)
router.include_router(_metadata)
