"""Keystone v3 subset under /identity (clients.md §1)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from novalite.api.common import json_body, request_context, runtime, validate
from novalite.context import RequestContext
from novalite.db.models.identity import Project, Role, RoleAssignment, User
from novalite.errors import BadRequest, Conflict, Forbidden, NotFound, Unauthorized
from novalite.identity import catalog as id_catalog
from novalite.identity import revocation, routes_catalog, schemas, service
from novalite.identity.lockout import Lockout, check_password
from novalite.identity.passwords import hash_password
from novalite.identity.routes_common import body_object, list_links
from novalite.identity.tokens import TokenData, iso_z

router = APIRouter(prefix="/identity")

IMPLIED = {"admin": ["member", "reader"], "member": ["reader"]}


def _base(request: Request) -> str:
    return f"{runtime(request).public_url}/identity"


def _version_doc(request: Request) -> dict[str, Any]:
    return {
        "id": "v3.14",
        "status": "stable",
        "updated": "2020-04-07T00:00:00Z",
        "links": [{"rel": "self", "href": f"{_base(request)}/v3/"}],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}],
    }


@router.get("")
@router.get("/")
def versions(request: Request) -> JSONResponse:
    return JSONResponse({"versions": {"values": [_version_doc(request)]}}, status_code=300)


@router.get("/v3")
@router.get("/v3/")
def version_v3(request: Request) -> dict[str, Any]:
    return {"version": _version_doc(request)}


def catalog(request: Request) -> list[dict[str, Any]]:
    """The catalog a token carries, read from the service and endpoint rows (identity.catalog)."""
    rt = runtime(request)
    id_catalog.ensure_builtin(rt.db, list(rt.catalog), rt.settings.region)
    with rt.db.reader() as s:
        return id_catalog.token_catalog(s, rt.public_url)


def _token_body(request: Request, data: TokenData) -> dict[str, Any]:
    domain = dict(service.DEFAULT_DOMAIN)
    return {
        "token": {
            "methods": list(data.methods),
            "expires_at": iso_z(data.expires_at),
            "issued_at": iso_z(data.issued_at),
            "audit_ids": [data.audit_id],
            "user": {
                "id": data.user_id,
                "name": data.user_name,
                "domain": domain,
                "password_expires_at": None,
            },
            "project": {"id": data.project_id, "name": data.project_name, "domain": domain},
            "is_domain": False,
            "roles": [{"id": rid, "name": name} for rid, name in data.roles],
            "catalog": catalog(request),
        }
    }


def _auth_headers(request: Request) -> dict[str, str]:
    """The ``WWW-Authenticate`` header of Keystone's 401 answers to a login."""
    return {"WWW-Authenticate": f'Keystone uri="{_base(request)}/v3"'}


def _lockout(request: Request) -> Lockout:
    settings = runtime(request).settings
    return Lockout(runtime(request).db, settings.lockout_failure_attempts, settings.lockout_duration)


def _revoke(s: Any, request: Request, **match: Any) -> None:
    """A revocation event (identity.revocation) in the transaction of the change that causes it."""
    revocation.record(s, ttl=runtime(request).settings.token_ttl, **match)


def _revocations_changed(request: Request) -> None:
    """After the commit of an event: this process applies it at once (others within a second)."""
    revs = runtime(request).tokens.revocations
    if revs is not None:
        revs.refresh()


def _expanded_roles(s: Any, roles: list[Role]) -> list[tuple[str, str]]:
    names = {r.name: r.id for r in roles}
    for r in list(roles):
        for implied in IMPLIED.get(r.name, []):
            if implied not in names:
                role = s.scalars(select(Role).where(Role.name == implied)).first()
                if role is not None:
                    names[role.name] = role.id
    return sorted(((rid, name) for name, rid in names.items()), key=lambda t: t[1])


@router.post("/v3/auth/tokens")
async def issue_token(request: Request) -> JSONResponse:
    """Password or token authentication. The password check (scrypt) and the reads run in the
    thread pool under a read-only unit of work: never on the event loop, never holding the
    SQLite write lock."""
    body = await json_body(request)
    if not isinstance(body, dict) or "auth" not in body:
        raise BadRequest("Expecting to find auth in request body.")
    validate(schemas.AUTH_TOKENS, body)
    return await run_in_threadpool(_issue_token, request, body["auth"])


def _issue_token(request: Request, auth: dict[str, Any]) -> JSONResponse:
    rt = runtime(request)
    identity = auth["identity"]  # the shapes are checked (schemas.AUTH_TOKENS)
    methods = identity["methods"]
    with rt.db.reader() as s:
        if "token" in methods and "password" not in methods:
            # a revoked or invalid parent token: 404 (Keystone's token method validates it)
            old = rt.tokens.validate((identity.get("token") or {}).get("id") or "", for_lookup=True)
            user = service.get_user(s, old.user_id)
            project = service.resolve_scope(s, auth.get("scope") or {"project": {"id": old.project_id}}, user)
            roles = service.roles_for(s, user.id, project.id)
            token_methods: tuple[str, ...] = ("token",)
            expires = old.expires_at
        else:
            result = service.authenticate_password(
                s, auth, lockout=_lockout(request), headers=_auth_headers(request)
            )
            user, project, roles = result.user, result.project, result.roles
            token_methods, expires = ("password",), None
        expanded = _expanded_roles(s, roles)
        token, data = rt.tokens.issue(
            user=(user.id, user.name),
            project=(project.id, project.name),
            roles=expanded,
            methods=token_methods,
            expires_at=expires,
        )
    return JSONResponse(_token_body(request, data), status_code=201, headers={"X-Subject-Token": token})


def _subject_token(request: Request, ctx: RequestContext, rule: str, *, service: bool = True) -> TokenData:
    """The valid ``X-Subject-Token`` (else 404), which only an admin, a service or the token's own
    user may look at or revoke (Keystone's ``identity:{validate,check,revoke}_token``; else 403)."""
    data = runtime(request).tokens.validate(request.headers.get("x-subject-token", ""), for_lookup=True)
    if not (ctx.is_admin or data.user_id == ctx.user_id or (service and "service" in ctx.roles)):
        raise Forbidden(f"You are not authorized to perform the requested action: {rule}.")
    return data


@router.get("/v3/auth/tokens")
def validate_token(request: Request, ctx: RequestContext = Depends(request_context)) -> JSONResponse:
    data = _subject_token(request, ctx, "identity:validate_token")
    return JSONResponse(
        _token_body(request, data), headers={"X-Subject-Token": request.headers["x-subject-token"]}
    )


@router.head("/v3/auth/tokens")
def check_token(request: Request, ctx: RequestContext = Depends(request_context)) -> Response:
    _subject_token(request, ctx, "identity:check_token", service=False)
    return Response(status_code=200)


@router.delete("/v3/auth/tokens")
def revoke_token(request: Request, ctx: RequestContext = Depends(request_context)) -> Response:
    """That token only (its parent and re-scoped siblings stay valid); an invalid one: 404."""
    data = _subject_token(request, ctx, "identity:revoke_token", service=False)
    with runtime(request).db.session() as s:
        _revoke(s, request, audit_id=data.audit_id, token_expires_at=data.expires_at)
    _revocations_changed(request)
    return Response(status_code=204)


@router.get("/v3/auth/catalog")
def auth_catalog(request: Request, ctx: RequestContext = Depends(request_context)) -> dict[str, Any]:
    return {"catalog": catalog(request), "links": {"self": f"{_base(request)}/v3/auth/catalog"}}


@router.get("/v3/auth/projects")
def auth_projects(request: Request, ctx: RequestContext = Depends(request_context)) -> dict[str, Any]:
    with runtime(request).db.reader() as s:
        q = (
            select(Project)
            .join(RoleAssignment, RoleAssignment.project_id == Project.id)
            .where(RoleAssignment.user_id == ctx.user_id)
            .distinct()
        )
        return {"projects": [_project_view(request, p) for p in s.scalars(q)]}


# ---- domains (only Default) ----


def _domain_view(request: Request) -> dict[str, Any]:
    return {
        "id": "default",
        "name": "Default",
        "description": "The default domain",
        "enabled": True,
        "tags": [],
        "options": {},
        "links": {"self": f"{_base(request)}/v3/domains/default"},
    }


@router.get("/v3/domains")
def list_domains(request: Request, ctx: RequestContext = Depends(request_context)) -> dict[str, Any]:
    name = request.query_params.get("name")
    domains = [] if name not in (None, "Default") else [_domain_view(request)]
    return {"domains": domains, "links": {"self": f"{_base(request)}/v3/domains"}}


@router.get("/v3/domains/{domain_id}")
def get_domain(
    domain_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    if domain_id != "default":
        raise NotFound(f"Could not find domain: {domain_id}.")
    return {"domain": _domain_view(request)}


# ---- projects ----


def _project_view(request: Request, p: Project) -> dict[str, Any]:
    return {
        "id": p.id,
        "name": p.name,
        "domain_id": p.domain_id,
        "description": p.description,
        "enabled": p.enabled,
        "parent_id": p.domain_id,
        "is_domain": False,
        "tags": [],
        "options": {},
        "links": {"self": f"{_base(request)}/v3/projects/{p.id}"},
    }


@router.get("/v3/projects")
def list_projects(request: Request, ctx: RequestContext = Depends(request_context)) -> dict[str, Any]:
    ctx.require_admin("identity:list_projects")
    with runtime(request).db.reader() as s:
        q = select(Project).order_by(Project.name)
        if name := request.query_params.get("name"):
            q = q.where(Project.name == name)
        return {
            "projects": [_project_view(request, p) for p in s.scalars(q)],
            "links": list_links(request, "projects"),
        }


@router.post("/v3/projects")
async def create_project(request: Request, ctx: RequestContext = Depends(request_context)) -> JSONResponse:
    ctx.require_admin("identity:create_project")
    ref = body_object(await json_body(request), "project")
    validate(schemas.PROJECT_CREATE, ref)
    if (ref.get("domain_id") or "default") != "default":
        raise BadRequest("novalite only has the Default domain.")
    with runtime(request).db.session() as s:
        p = service.create_project(
            s, name=ref["name"], description=ref.get("description") or "", enabled=ref.get("enabled", True)
        )
        return JSONResponse({"project": _project_view(request, p)}, status_code=201)


@router.get("/v3/projects/{project_id}")
def get_project(
    project_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    if not ctx.is_admin and project_id != ctx.project_id:
        raise Forbidden("You are not authorized to perform the requested action: identity:get_project.")
    with runtime(request).db.reader() as s:
        return {"project": _project_view(request, service.get_project(s, project_id))}


@router.patch("/v3/projects/{project_id}")
async def update_project(
    project_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    ctx.require_admin("identity:update_project")
    ref = body_object(await json_body(request), "project")
    validate(schemas.PROJECT_UPDATE, ref)
    with runtime(request).db.session() as s:
        p = service.get_project(s, project_id)
        if "name" in ref:
            service.require_free_project_name(s, ref["name"], project_id=p.id)
            p.name = ref["name"]
        if "description" in ref:
            p.description = ref["description"] or ""  # Keystone's null: the column holds ""
        if "enabled" in ref:
            if p.enabled and not ref["enabled"]:
                _revoke(s, request, project_id=p.id)
            p.enabled = ref["enabled"]
        view = {"project": _project_view(request, p)}
    _revocations_changed(request)
    return view


@router.delete("/v3/projects/{project_id}")
def delete_project(
    project_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> Response:
    ctx.require_admin("identity:delete_project")
    with runtime(request).db.session() as s:
        s.delete(service.get_project(s, project_id))
        _revoke(s, request, project_id=project_id)
    _revocations_changed(request)
    return Response(status_code=204)


# ---- users ----


def _user_view(request: Request, u: User) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": u.id,
        "name": u.name,
        "domain_id": u.domain_id,
        "enabled": u.enabled,
        "password_expires_at": None,
        "options": {},
        "links": {"self": f"{_base(request)}/v3/users/{u.id}"},
    }
    if u.default_project_id:
        view["default_project_id"] = u.default_project_id
    if u.email:
        view["email"] = u.email
    if u.description:
        view["description"] = u.description
    return view


@router.get("/v3/users")
def list_users(request: Request, ctx: RequestContext = Depends(request_context)) -> dict[str, Any]:
    ctx.require_admin("identity:list_users")
    with runtime(request).db.reader() as s:
        q = select(User).order_by(User.name)
        if name := request.query_params.get("name"):
            q = q.where(User.name == name)
        return {
            "users": [_user_view(request, u) for u in s.scalars(q)],
            "links": list_links(request, "users"),
        }


@router.post("/v3/users")
async def create_user(request: Request, ctx: RequestContext = Depends(request_context)) -> JSONResponse:
    ctx.require_admin("identity:create_user")
    ref = body_object(await json_body(request), "user")
    validate(schemas.USER_CREATE, ref)
    with runtime(request).db.session() as s:
        default_project = ref.get("default_project_id")
        if default_project:
            service.get_project(s, default_project)
        u = service.create_user(
            s,
            name=ref["name"],
            password=ref.get("password"),
            default_project_id=default_project,
            enabled=ref.get("enabled", True),
            email=ref.get("email"),
            description=ref.get("description"),
        )
        return JSONResponse({"user": _user_view(request, u)}, status_code=201)


@router.get("/v3/users/{user_id}")
def get_user(
    user_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    if not ctx.is_admin and user_id != ctx.user_id:
        raise Forbidden("You are not authorized to perform the requested action: identity:get_user.")
    with runtime(request).db.reader() as s:
        return {"user": _user_view(request, service.get_user(s, user_id))}


@router.patch("/v3/users/{user_id}")
async def update_user(
    user_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    ctx.require_admin("identity:update_user")
    ref = body_object(await json_body(request), "user")
    validate(schemas.USER_UPDATE, ref)
    with runtime(request).db.session() as s:
        u = service.get_user(s, user_id)
        if "name" in ref:
            service.require_free_user_name(s, ref["name"], user_id=u.id)
        if u.enabled and ref.get("enabled") is False:
            _revoke(s, request, user_id=u.id)
        for key in ("name", "enabled", "email", "description", "default_project_id"):
            if key in ref:
                setattr(u, key, ref[key])
        if ref.get("password"):
            u.password_hash = hash_password(ref["password"])
            u.failed_auth_count, u.failed_auth_at = 0, None  # an admin's reset lifts a lockout
            _revoke(s, request, user_id=u.id)
        view = {"user": _user_view(request, u)}
    _revocations_changed(request)
    return view


@router.delete("/v3/users/{user_id}")
def delete_user(user_id: str, request: Request, ctx: RequestContext = Depends(request_context)) -> Response:
    ctx.require_admin("identity:delete_user")
    with runtime(request).db.session() as s:
        s.delete(service.get_user(s, user_id))
        _revoke(s, request, user_id=user_id)
    _revocations_changed(request)
    return Response(status_code=204)


@router.post("/v3/users/{user_id}/password")
async def change_password(user_id: str, request: Request) -> Response:
    """Self-service password change: no token, the original password instead. All the user's
    tokens are revoked, the caller's too (Keystone)."""
    ref = body_object(await json_body(request), "user")
    validate(schemas.USER_PASSWORD, ref)
    return await run_in_threadpool(_change_password, request, user_id, ref)


def _change_password(request: Request, user_id: str, ref: dict[str, Any]) -> Response:
    rt = runtime(request)
    headers = _auth_headers(request)
    with rt.db.reader() as s:
        user = s.get(User, user_id)
    check_password(user, ref["original_password"], lockout=_lockout(request), headers=headers)
    new_hash = hash_password(ref["password"])
    with rt.db.session() as s:
        u = s.get(User, user_id)
        if u is None:
            raise Unauthorized("The request you have made requires authentication.", headers=headers)
        u.password_hash = new_hash
        u.failed_auth_count, u.failed_auth_at = 0, None
        _revoke(s, request, user_id=user_id)
    _revocations_changed(request)
    return Response(status_code=204)


@router.get("/v3/users/{user_id}/projects")
def user_projects(
    user_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    if not ctx.is_admin and user_id != ctx.user_id:
        raise Forbidden(
            "You are not authorized to perform the requested action: identity:list_user_projects."
        )
    with runtime(request).db.reader() as s:
        q = (
            select(Project)
            .join(RoleAssignment, RoleAssignment.project_id == Project.id)
            .where(RoleAssignment.user_id == user_id)
            .distinct()
        )
        return {"projects": [_project_view(request, p) for p in s.scalars(q)]}


# ---- roles and assignments ----


def _role_view(request: Request, r: Role) -> dict[str, Any]:
    return {
        "id": r.id,
        "name": r.name,
        "domain_id": None,
        "description": r.description,
        "options": {},
        "links": {"self": f"{_base(request)}/v3/roles/{r.id}"},
    }


@router.get("/v3/roles")
def list_roles(request: Request, ctx: RequestContext = Depends(request_context)) -> dict[str, Any]:
    with runtime(request).db.reader() as s:
        q = select(Role).order_by(Role.name)
        if name := request.query_params.get("name"):
            q = q.where(Role.name == name)
        return {
            "roles": [_role_view(request, r) for r in s.scalars(q)],
            "links": list_links(request, "roles"),
        }


@router.post("/v3/roles")
async def create_role(request: Request, ctx: RequestContext = Depends(request_context)) -> JSONResponse:
    ctx.require_admin("identity:create_role")
    ref = body_object(await json_body(request), "role")
    validate(schemas.ROLE_CREATE, ref)
    name = ref["name"]
    with runtime(request).db.session() as s:
        if s.scalars(select(Role).where(Role.name == name)).first():
            raise Conflict(f"Duplicate entry found with name {name}.")
        r = service.ensure_role(s, name)
        r.description = ref.get("description")
        return JSONResponse({"role": _role_view(request, r)}, status_code=201)


@router.get("/v3/roles/{role_id}")
def get_role(
    role_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    with runtime(request).db.reader() as s:
        return {"role": _role_view(request, service.get_role(s, role_id))}


@router.delete("/v3/roles/{role_id}")
def delete_role(role_id: str, request: Request, ctx: RequestContext = Depends(request_context)) -> Response:
    ctx.require_admin("identity:delete_role")
    with runtime(request).db.session() as s:
        s.delete(service.get_role(s, role_id))
        _revoke(s, request, role_id=role_id)
    _revocations_changed(request)
    return Response(status_code=204)


@router.put("/v3/projects/{project_id}/users/{user_id}/roles/{role_id}")
def grant(
    project_id: str,
    user_id: str,
    role_id: str,
    request: Request,
    ctx: RequestContext = Depends(request_context),
) -> Response:
    ctx.require_admin("identity:create_grant")
    with runtime(request).db.session() as s:
        service.get_project(s, project_id)
        service.get_user(s, user_id)
        service.get_role(s, role_id)
        service.assign_role(s, user_id=user_id, project_id=project_id, role_id=role_id)
    return Response(status_code=204)


@router.head("/v3/projects/{project_id}/users/{user_id}/roles/{role_id}")
@router.get("/v3/projects/{project_id}/users/{user_id}/roles/{role_id}")
def check_grant(
    project_id: str,
    user_id: str,
    role_id: str,
    request: Request,
    ctx: RequestContext = Depends(request_context),
) -> Response:
    ctx.require_admin("identity:check_grant")
    with runtime(request).db.reader() as s:
        if s.get(RoleAssignment, (user_id, project_id, role_id)) is None:
            raise NotFound(f"Could not find role assignment with role: {role_id}.")
    return Response(status_code=204)


@router.delete("/v3/projects/{project_id}/users/{user_id}/roles/{role_id}")
def revoke(
    project_id: str,
    user_id: str,
    role_id: str,
    request: Request,
    ctx: RequestContext = Depends(request_context),
) -> Response:
    ctx.require_admin("identity:revoke_grant")
    with runtime(request).db.session() as s:
        before = _effective_role_ids(s, user_id, project_id)
        service.unassign_role(s, user_id=user_id, project_id=project_id, role_id=role_id)
        s.flush()
        # tokens carrying a role the user no longer has on the project, directly or implied
        for lost in sorted(before - _effective_role_ids(s, user_id, project_id)):
            _revoke(s, request, user_id=user_id, project_id=project_id, role_id=lost)
    _revocations_changed(request)
    return Response(status_code=204)


def _effective_role_ids(s: Any, user_id: str, project_id: str) -> set[str]:
    return {rid for rid, _ in _expanded_roles(s, service.roles_for(s, user_id, project_id))}


@router.get("/v3/projects/{project_id}/users/{user_id}/roles")
def list_grants(
    project_id: str, user_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    if not ctx.is_admin and user_id != ctx.user_id:
        raise Forbidden("You are not authorized to perform the requested action: identity:list_grants.")
    with runtime(request).db.reader() as s:
        return {"roles": [_role_view(request, r) for r in service.roles_for(s, user_id, project_id)]}


@router.get("/v3/role_assignments")
def role_assignments(request: Request, ctx: RequestContext = Depends(request_context)) -> dict[str, Any]:
    q_user = request.query_params.get("user.id")
    q_project = request.query_params.get("scope.project.id")
    q_role = request.query_params.get("role.id")
    if not ctx.is_admin and q_user != ctx.user_id:
        raise Forbidden(
            "You are not authorized to perform the requested action: identity:list_role_assignments."
        )
    names = request.query_params.get("include_names") in ("1", "true", "True", "")
    with runtime(request).db.reader() as s:
        q = (
            select(RoleAssignment, User, Project, Role)
            .join(User, User.id == RoleAssignment.user_id)
            .join(Project, Project.id == RoleAssignment.project_id)
            .join(Role, Role.id == RoleAssignment.role_id)
        )
        if q_user:
            q = q.where(RoleAssignment.user_id == q_user)
        if q_project:
            q = q.where(RoleAssignment.project_id == q_project)
        if q_role:
            q = q.where(RoleAssignment.role_id == q_role)
        out = []
        for _ra, u, p, r in s.execute(q):
            item: dict[str, Any] = {
                "role": {"id": r.id},
                "user": {"id": u.id},
                "scope": {"project": {"id": p.id}},
                "links": {"assignment": f"{_base(request)}/v3/projects/{p.id}/users/{u.id}/roles/{r.id}"},
            }
            if names and "include_names" in request.query_params:
                item["role"]["name"] = r.name
                item["user"].update(name=u.name, domain=dict(service.DEFAULT_DOMAIN))
                item["scope"]["project"].update(name=p.name, domain=dict(service.DEFAULT_DOMAIN))
            out.append(item)
        return {"role_assignments": out, "links": {"self": f"{_base(request)}/v3/role_assignments"}}


router.include_router(routes_catalog.router)  # services, endpoints, regions
