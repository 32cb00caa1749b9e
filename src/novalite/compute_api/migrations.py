"""GET /os-migrations and /servers/{id}/migrations (list, show, force_complete, abort): §6.1, §6.2,
§3.3, §3.4 of the move operations. The fake driver finishes a live migration as soon as it
starts, so a server's in-progress list is empty once the move is scheduled, and
force_complete / abort find no migration in a state that allows them (Nova's 400 / 404)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from novalite.api.common import compute_links, json_body, request_context, runtime, validate
from novalite.api.microversion import V, Version, request_version
from novalite.compute_api.schemas import moves as schemas
from novalite.compute_api.views import migrations as views
from novalite.context import RequestContext
from novalite.errors import BadRequest, NotFound
from novalite.services import live_migration_control as live_control
from novalite.services import migrations as service
from novalite.services.server_actions import check_not_locked, invalid_state
from novalite.services.server_queries import get_instance, parse_time

router = APIRouter(prefix="/compute/v2.1")
MAX_LIMIT = 1000


def _not_found() -> NotFound:
    return NotFound("The resource could not be found.")


def _query(request: Request, ctx: RequestContext) -> service.MigrationQuery:
    version = request_version(request)
    params = {k: request.query_params.getlist(k)[-1] for k in request.query_params}
    validate(schemas.migrations_query(version), params, query=True)
    paged = version >= V(2, 59)
    since = parse_time("changes-since", params["changes-since"]) if "changes-since" in params else None
    before = parse_time("changes-before", params["changes-before"]) if "changes-before" in params else None
    if since is not None and before is not None and before < since:
        raise BadRequest("The value of changes-since must be less than or equal to changes-before.")
    project_id = params.get("project_id")
    if not ctx.is_admin and project_id != ctx.project_id:
        # os-migrations:index:all_projects is an admin's; a manager sees its own project
        if project_id is not None:
            ctx.require_admin("os_compute_api:os-migrations:index:all_projects")
        project_id = ctx.project_id
    if not paged:  # below 2.59 the time filters are dropped silently
        since = before = None
    limit = (
        min(int(params["limit"]), MAX_LIMIT)
        if paged and "limit" in params
        else (MAX_LIMIT if paged else None)
    )
    return service.MigrationQuery(
        host=params.get("host"),
        source_compute=params.get("source_compute"),
        status=params.get("status"),
        instance_uuid=params.get("instance_uuid"),
        migration_type=params.get("migration_type"),
        project_id=project_id,
        user_id=params.get("user_id"),
        changes_since=since,
        changes_before=before,
        paged=paged,
        limit=limit,
        marker=params.get("marker") if paged else None,
    )


def _server_links(request: Request, m: Any) -> list[dict[str, str]]:
    return compute_links(request, f"servers/{m.instance_uuid}/migrations", str(m.id))


@router.get("/os-migrations")
def list_migrations(request: Request, ctx: RequestContext = Depends(request_context)) -> dict[str, Any]:
    version = request_version(request)
    q = _query(request, ctx)
    with runtime(request).db.reader() as s:
        rows = service.list_migrations(s, q)
        items = [
            views.migration_item(m, version, links=_server_links(request, m), show_hosts=ctx.is_admin)
            for m in rows
        ]
    out: dict[str, Any] = {"migrations": items}
    if q.paged and q.limit is not None and rows and len(rows) >= q.limit:  # 2.59: paging links
        base = runtime(request).public_url
        params = [(k, v) for k, v in request.query_params.multi_items() if k not in ("marker", "limit")]
        params += [("limit", str(q.limit)), ("marker", rows[-1].uuid)]
        out["migrations_links"] = [
            {"rel": "next", "href": f"{base}/compute/v2.1/os-migrations?{urlencode(params)}"}
        ]
    return out


def _server_route(request: Request, since: Version) -> None:
    if request_version(request) < since:
        raise _not_found()


@router.get("/servers/{server_id}/migrations")
def list_server_migrations(
    server_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    _server_route(request, V(2, 23))
    version = request_version(request)
    with runtime(request).db.reader() as s:
        inst = get_instance(s, ctx, server_id)
        rows = service.live_in_progress(s, inst.uuid)
        return {"migrations": [views.server_migration(m, version, show_hosts=ctx.is_admin) for m in rows]}


def _migration_id(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise BadRequest(f"Invalid input for field/attribute migration_id. Value: {raw}.") from None


@router.get("/servers/{server_id}/migrations/{migration_id}")
def show_server_migration(
    server_id: str, migration_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    _server_route(request, V(2, 23))
    version = request_version(request)
    with runtime(request).db.reader() as s:
        inst = get_instance(s, ctx, server_id)
        m = service.by_id(s, _migration_id(migration_id))
        if m is None or m.instance_uuid != inst.uuid:
            raise NotFound(
                f"In-progress live migration {migration_id} is not found for server {inst.uuid}.",
                kind="MigrationNotFoundForInstance",
            )
        if m.migration_type != service.MigrationType.LIVE:
            raise NotFound(f"Migration {migration_id} for server {inst.uuid} is not live-migration.")
        if m.status not in service.LIVE_IN_PROGRESS:
            raise NotFound(f"Live migration {migration_id} for server {inst.uuid} is not in progress.")
        return {"migration": views.server_migration(m, version)}


@router.post("/servers/{server_id}/migrations/{migration_id}/action")
async def migration_action(
    server_id: str, migration_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> Response:
    _server_route(request, V(2, 22))
    body = await json_body(request)
    validate(schemas.FORCE_COMPLETE, body)
    await run_in_threadpool(_force_complete, request, ctx, server_id, migration_id)
    return Response(status_code=202)


def _force_complete(request: Request, ctx: RequestContext, server_id: str, migration_id: str) -> None:
    with runtime(request).db.reader() as s:
        inst = get_instance(s, ctx, server_id)
        check_not_locked(ctx, inst)
        if inst.vm_state != "active" or inst.task_state != "migrating":
            attr, state = (
                ("vm_state", inst.vm_state)
                if inst.vm_state != "active"
                else (
                    "task_state",
                    inst.task_state,
                )
            )
            raise invalid_state("force_complete", inst.uuid, attr, state)
        m = service.by_id(s, _migration_id(migration_id))
        if m is None or m.instance_uuid != inst.uuid:
            raise BadRequest(f"Migration {migration_id} not found for instance {inst.uuid}")
        refusal = (
            f"Migration {migration_id} state of instance {inst.uuid} is {m.status}. Cannot force complete "
            "while the migration is in this state."
        )
        # a real host's migration in progress: its source agent pauses the guest
        target = (
            (inst.uuid, m.uuid, str(m.source_compute or inst.host))
            if live_control.can_force_complete(m)
            else None
        )
    if target is None:
        raise BadRequest(refusal)
    live_control.send(runtime(request), ctx, *target, "force_complete")


@router.delete("/servers/{server_id}/migrations/{migration_id}")
def abort_migration(
    server_id: str, migration_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> Response:
    _server_route(request, V(2, 24))
    with runtime(request).db.reader() as s:
        inst = get_instance(s, ctx, server_id)
        check_not_locked(ctx, inst)
        if inst.task_state != "migrating":
            raise invalid_state("abort live migration", inst.uuid, "task_state", inst.task_state)
        m = service.by_id(s, _migration_id(migration_id))
        if m is None or m.instance_uuid != inst.uuid:
            raise NotFound(
                f"Migration {migration_id} for server {inst.uuid} could not be found.",
                kind="MigrationNotFoundForInstance",
            )
        refusal = (
            f"Migration {migration_id} state of instance {inst.uuid} is {m.status}. Cannot cancel "
            "while the migration is in this state."
        )
        # a real host's migration in progress: its source agent cancels the copies
        queued_too = request_version(request) >= V(2, 65)
        can = live_control.can_abort(m, queued_too=queued_too)
        target = (inst.uuid, m.uuid, str(m.source_compute or inst.host)) if can else None
    if target is None:
        raise BadRequest(refusal)
    live_control.send(runtime(request), ctx, *target, "abort")
    return Response(status_code=202)
