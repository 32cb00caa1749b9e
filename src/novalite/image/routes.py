"""Image API (Glance v2 subset) under /image (clients.md §3).

Handlers that need the request body or stream are ``async`` and run their database work in
the thread pool; the others are plain ``def``. Errors are rendered by ``api/faults.py``.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from novalite.api.common import json_body, request_context, runtime
from novalite.context import RequestContext
from novalite.errors import BadRequest, Forbidden, NotFound, RequestTooLarge, UnsupportedMediaType
from novalite.image import import_, listing, members, service, store, views
from novalite.image.patch import check_media_type, parse_patch

router = APIRouter(prefix="/image")
CATALOG = ("image", "glance", "/image")
T = TypeVar("T")


def _in_session(request: Request, work: Callable[[Session], T]) -> T:
    with runtime(request).db.session() as s:
        return work(s)


@router.get("")
@router.get("/")
@router.get("/versions")
def versions(request: Request) -> JSONResponse:
    return JSONResponse(views.versions_view(runtime(request).public_url), status_code=300)


@router.get("/v2/schemas/image")
def schema_image(ctx: RequestContext = Depends(request_context)) -> dict[str, Any]:
    return views.image_schema()


@router.get("/v2/schemas/images")
def schema_images(ctx: RequestContext = Depends(request_context)) -> dict[str, Any]:
    return views.images_schema()


@router.post("/v2/images", status_code=201)
async def create(request: Request, ctx: RequestContext = Depends(request_context)) -> JSONResponse:
    body = await json_body(request)

    def work(s: Session) -> dict[str, Any]:
        return views.image_view(service.create_image(s, ctx, body))

    shown = await run_in_threadpool(_in_session, request, work)
    location = f"{runtime(request).public_url}/image/v2/images/{shown['id']}"
    return JSONResponse(shown, status_code=201, headers={"Location": location, **import_.create_headers()})


@router.get("/v2/images")
def index(request: Request, ctx: RequestContext = Depends(request_context)) -> dict[str, Any]:
    params = list(request.query_params.multi_items())
    query = listing.parse_query(params)
    with runtime(request).db.reader() as s:
        images, more = listing.list_images(s, ctx, query)
        return views.list_view(images, params, more)


@router.get("/v2/images/", include_in_schema=False)
@router.delete("/v2/images/", include_in_schema=False)
def blank_image_id(ctx: RequestContext = Depends(request_context)) -> None:
    """A blank image id (``/v2/images/``) is a 404 as in Glance, not a redirect to the list."""
    raise NotFound("The resource could not be found.")


@router.get("/v2/images/{image_id}")
def show(image_id: str, request: Request, ctx: RequestContext = Depends(request_context)) -> dict[str, Any]:
    with runtime(request).db.reader() as s:
        return views.image_view(service.require_visible(s, ctx, image_id))


@router.get("/v2/images/{image_id}/tasks")
def image_tasks(
    image_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    """Glance 2.12's task list of an image. Uploads and snapshots here are synchronous, so an
    image never has tasks: ``{"tasks": []}`` (Tempest waits on this after every snapshot)."""
    with runtime(request).db.reader() as s:
        service.require_visible(s, ctx, image_id)
    return {"tasks": []}


@router.patch("/v2/images/{image_id}")
async def update(
    image_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    check_media_type(request.headers.get("content-type"))
    changes = parse_patch(await request.body())

    def work(s: Session) -> dict[str, Any]:
        return views.image_view(service.update_image(s, ctx, image_id, changes))

    return await run_in_threadpool(_in_session, request, work)


@router.delete("/v2/images/{image_id}", status_code=204)
def delete(image_id: str, request: Request, ctx: RequestContext = Depends(request_context)) -> Response:
    rt = runtime(request)
    with rt.db.session() as s:
        service.delete_image(s, ctx, image_id)
    store.remove(rt.settings.data_dir, image_id)
    return Response(status_code=204)


def _check_octet_stream(request: Request) -> None:
    ctype = request.headers.get("content-type", "application/octet-stream").split(";")[0].strip().lower()
    if ctype not in ("application/octet-stream", ""):
        raise UnsupportedMediaType(f"Unsupported Content-Type: {ctype}. Use application/octet-stream")


async def _receive(
    request: Request, image_id: str, *, staging: bool, finish: Callable[[Session, store.StoredData], None]
) -> None:
    """Stream the body into the image's data (or staged) file, then ``finish``; on any failure
    drop what was written and let the caller's ``abort`` put the image back to queued."""
    rt = runtime(request)
    writer = store.DataWriter(rt.settings.data_dir, image_id, staging=staging)
    try:
        async for chunk in request.stream():
            if chunk:
                await run_in_threadpool(writer.write, chunk)
        stored = await run_in_threadpool(writer.commit)
        await run_in_threadpool(_in_session, request, lambda s: finish(s, stored))
    except BaseException as exc:
        writer.abort()
        store.remove(rt.settings.data_dir, image_id)  # only this request can have written it (queued before)
        if isinstance(exc, ClientDisconnect):
            raise BadRequest("The upload was interrupted before all data arrived.") from exc
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            raise RequestTooLarge("Image storage media is full.") from exc
        raise


@router.put("/v2/images/{image_id}/file", status_code=204)
async def upload(image_id: str, request: Request, ctx: RequestContext = Depends(request_context)) -> Response:
    """Stream the body into the image's data file: queued -> saving -> active."""
    _check_octet_stream(request)
    await run_in_threadpool(_in_session, request, lambda s: service.begin_upload(s, ctx, image_id))
    try:
        await _receive(
            request, image_id, staging=False, finish=lambda s, data: service.finish_upload(s, image_id, data)
        )
    except BaseException:
        await run_in_threadpool(_in_session, request, lambda s: service.abort_upload(s, image_id))
        raise
    return Response(status_code=204)


@router.put("/v2/images/{image_id}/stage", status_code=204)
async def stage(image_id: str, request: Request, ctx: RequestContext = Depends(request_context)) -> Response:
    """Glance's interoperable import, first half: queued -> uploading with the data set aside."""
    _check_octet_stream(request)
    await run_in_threadpool(_in_session, request, lambda s: import_.begin_stage(s, ctx, image_id))
    try:
        await _receive(
            request, image_id, staging=True, finish=lambda s, data: import_.finish_stage(s, image_id, data)
        )
    except BaseException:
        await run_in_threadpool(_in_session, request, lambda s: import_.abort_stage(s, image_id))
        raise
    return Response(status_code=204)


@router.post("/v2/images/{image_id}/import", status_code=202)
async def import_image(
    image_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> Response:
    """Second half: glance-direct makes the staged data the image's (uploading -> importing ->
    active) before answering 202; copy-image has no other store to copy to."""
    req = import_.parse_import(await json_body(request), request.headers.get("x-image-meta-store"))
    rt = runtime(request)
    if not await run_in_threadpool(
        _in_session, request, lambda s: import_.begin_import(s, ctx, image_id, req)
    ):
        return Response(status_code=202)
    data_dir = rt.settings.data_dir
    try:
        stored = await run_in_threadpool(store.promote_staged, data_dir, image_id)
        await run_in_threadpool(
            _in_session,
            request,
            lambda s: service.finish_upload(s, image_id, stored, from_status="importing"),
        )
    except BaseException:
        staged = store.staged_path(data_dir, image_id).is_file()
        if not staged:
            store.remove(data_dir, image_id)
        await run_in_threadpool(_in_session, request, lambda s: import_.abort_import(s, image_id, staged))
        raise
    return Response(status_code=202)


@router.get("/v2/info/import")
def info_import(ctx: RequestContext = Depends(request_context)) -> dict[str, Any]:
    return import_.import_info()


@router.get("/v2/info/stores")
def info_stores(ctx: RequestContext = Depends(request_context)) -> dict[str, Any]:
    return import_.stores_info()


@router.get("/v2/info/stores/detail")
def info_stores_detail(request: Request, ctx: RequestContext = Depends(request_context)) -> dict[str, Any]:
    if not ctx.is_admin:
        raise Forbidden("You are not authorized to complete stores_info_detail action.")
    return import_.stores_detail(str(runtime(request).settings.data_dir))


@router.get("/v2/images/{image_id}/file")
def download(image_id: str, request: Request, ctx: RequestContext = Depends(request_context)) -> Response:
    """200 with the data (Content-MD5 = checksum); 204 when the image has no data yet."""
    with runtime(request).db.reader() as s:
        image = service.require_visible(s, ctx, image_id)
        if image.status == "deactivated" and not ctx.is_admin:
            raise Forbidden("The requested image has been deactivated. Image data download is forbidden.")
        path, checksum = service.image_data_path(image), image.checksum
    if path is None:
        return Response(status_code=204)
    headers = {"Content-MD5": checksum} if checksum else {}
    return FileResponse(path, media_type="application/octet-stream", headers=headers)


@router.post("/v2/images/{image_id}/actions/{action}", status_code=204)
def action(
    image_id: str, action: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> Response:
    if action not in ("deactivate", "reactivate"):
        raise NotFound("The resource could not be found.")
    with runtime(request).db.session() as s:
        service.change_activation(s, ctx, image_id, action)
    return Response(status_code=204)


@router.put("/v2/images/{image_id}/tags/{tag}", status_code=204)
def add_tag(
    image_id: str, tag: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> Response:
    with runtime(request).db.session() as s:
        service.add_tag(s, ctx, image_id, tag)
    return Response(status_code=204)


@router.delete("/v2/images/{image_id}/tags/{tag}", status_code=204)
def delete_tag(
    image_id: str, tag: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> Response:
    with runtime(request).db.session() as s:
        service.remove_tag(s, ctx, image_id, tag)
    return Response(status_code=204)


@router.get("/v2/schemas/member")
def schema_member(ctx: RequestContext = Depends(request_context)) -> dict[str, Any]:
    return members.member_schema()


@router.get("/v2/schemas/members")
def schema_members(ctx: RequestContext = Depends(request_context)) -> dict[str, Any]:
    return members.members_schema()


@router.post("/v2/images/{image_id}/members")
async def add_member(
    image_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    """Share a ``shared`` image with a project: a pending membership (200, as Glance)."""
    body = await json_body(request)

    def work(s: Session) -> dict[str, Any]:
        return members.member_view(members.add_member(s, ctx, image_id, body))

    return await run_in_threadpool(_in_session, request, work)


@router.get("/v2/images/{image_id}/members")
def list_members(
    image_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    with runtime(request).db.reader() as s:
        return members.members_view(members.list_members(s, ctx, image_id))


@router.get("/v2/images/{image_id}/members/{member_id}")
def show_member(
    image_id: str, member_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    with runtime(request).db.reader() as s:
        return members.member_view(members.show_member(s, ctx, image_id, member_id))


@router.put("/v2/images/{image_id}/members/{member_id}")
async def update_member(
    image_id: str, member_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    """The member project accepts, rejects or resets (pending) the offer."""
    body = await json_body(request)

    def work(s: Session) -> dict[str, Any]:
        return members.member_view(members.update_member(s, ctx, image_id, member_id, body))

    return await run_in_threadpool(_in_session, request, work)


@router.delete("/v2/images/{image_id}/members/{member_id}", status_code=204)
def delete_member(
    image_id: str, member_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> Response:
    with runtime(request).db.session() as s:
        members.delete_member(s, ctx, image_id, member_id)
    return Response(status_code=204)
