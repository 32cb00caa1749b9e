"""Identity operations over a session: authentication, projects, users, roles."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from novalite.db.models.identity import Project, Role, RoleAssignment, User
from novalite.errors import BadRequest, Conflict, NotFound, Unauthorized
from novalite.identity.lockout import Lockout, check_password
from novalite.identity.passwords import hash_password

DEFAULT_DOMAIN = {"id": "default", "name": "Default"}


@dataclass(frozen=True)
class AuthResult:
    user: User
    project: Project
    roles: list[Role]


def _domain_ok(ref: dict | None) -> bool:
    if not ref:
        return True
    if "id" in ref:
        return ref["id"] == "default"
    if "name" in ref:
        return ref["name"] == "Default"
    return False


def authenticate_password(
    s: Session, auth: dict, *, lockout: Lockout | None = None, headers: dict[str, str] | None = None
) -> AuthResult:
    """Check a Keystone v3 ``auth`` object (password method) and resolve its project scope.

    ``lockout``: count wrong passwords and refuse locked users (identity.lockout); ``headers``:
    those of a 401 (``WWW-Authenticate``)."""
    headers = headers or {}
    unauthorized = Unauthorized("The request you have made requires authentication.", headers=headers)
    identity = auth.get("identity") or {}
    methods = identity.get("methods") or []
    if "password" not in methods:
        if "token" in methods:
            raise BadRequest("Token re-scoping is handled by the caller.")
        raise unauthorized
    user_ref = ((identity.get("password") or {}).get("user")) or {}
    password = user_ref.get("password")
    if not isinstance(password, str):
        raise BadRequest("Expecting to find password in user.")
    if "id" in user_ref:
        user = s.get(User, user_ref["id"])
    elif "name" in user_ref:
        if not _domain_ok(user_ref.get("domain")):
            raise unauthorized
        user = s.scalars(select(User).where(User.name == user_ref["name"])).first()
    else:
        raise BadRequest("Expecting to find id or name in user.")
    user = check_password(user, password, lockout=lockout, headers=headers)
    project = resolve_scope(s, auth.get("scope"), user)
    return AuthResult(user=user, project=project, roles=roles_for(s, user.id, project.id))


def resolve_scope(s: Session, scope: dict | None, user: User) -> Project:
    project: Project | None
    if not scope:
        if not user.default_project_id:
            raise Unauthorized("Unscoped tokens are not supported by novalite; scope to a project.")
        project = s.get(Project, user.default_project_id)
    else:
        ref = scope.get("project")
        if not isinstance(ref, dict):
            raise Unauthorized("Only project-scoped tokens are supported by novalite.")
        if "id" in ref:
            project = s.get(Project, ref["id"])
        elif "name" in ref and _domain_ok(ref.get("domain")):
            project = s.scalars(select(Project).where(Project.name == ref["name"])).first()
        else:
            project = None
    if project is None or not project.enabled:
        raise Unauthorized("The request you have made requires authentication.")
    if not roles_for(s, user.id, project.id):
        raise Unauthorized(f"User {user.id} has no access to project {project.id}")
    return project


def roles_for(s: Session, user_id: str, project_id: str) -> list[Role]:
    q = (
        select(Role)
        .join(RoleAssignment, RoleAssignment.role_id == Role.id)
        .where(RoleAssignment.user_id == user_id, RoleAssignment.project_id == project_id)
        .order_by(Role.name)
    )
    return list(s.scalars(q))


def get_project(s: Session, project_id: str) -> Project:
    p = s.get(Project, project_id)
    if p is None:
        raise NotFound(f"Could not find project: {project_id}.")
    return p


def require_valid_project(s: Session, project_id: str) -> None:
    """Nova's check, through Keystone, that a project it is asked to act on exists (400)."""
    if s.get(Project, project_id) is None:
        raise BadRequest(f"Project ID {project_id} is not a valid project.", kind="InvalidProject")


def find_project(s: Session, name_or_id: str) -> Project | None:
    return s.get(Project, name_or_id) or s.scalars(select(Project).where(Project.name == name_or_id)).first()


def _require_free_name(s: Session, model: type[Project] | type[User], name: str, exclude: str | None) -> None:
    """Keystone's 409 when another row of ``model`` (not ``exclude``, on a rename) has ``name``."""
    q = select(model.id).where(model.name == name)
    if exclude is not None:
        q = q.where(model.id != exclude)
    if s.scalars(q).first() is not None:
        kind = "project" if model is Project else "user"
        raise Conflict(
            f"Conflict occurred attempting to store {kind} - Duplicate entry found with name {name} "
            "at domain ID default."
        )


def require_free_project_name(s: Session, name: str, *, project_id: str | None = None) -> None:
    _require_free_name(s, Project, name, project_id)


def require_free_user_name(s: Session, name: str, *, user_id: str | None = None) -> None:
    _require_free_name(s, User, name, user_id)


def create_project(
    s: Session, *, name: str, description: str = "", enabled: bool = True, project_id: str | None = None
) -> Project:
    require_free_project_name(s, name)
    p = Project(name=name, description=description, enabled=enabled)
    if project_id:
        p.id = project_id
    s.add(p)
    s.flush()
    return p


def get_user(s: Session, user_id: str) -> User:
    u = s.get(User, user_id)
    if u is None:
        raise NotFound(f"Could not find user: {user_id}.")
    return u


def create_user(
    s: Session,
    *,
    name: str,
    password: str | None,
    default_project_id: str | None = None,
    enabled: bool = True,
    email: str | None = None,
    description: str | None = None,
) -> User:
    require_free_user_name(s, name)
    u = User(
        name=name,
        password_hash=hash_password(password) if password else "",
        enabled=enabled,
        default_project_id=default_project_id,
        email=email,
        description=description,
    )
    s.add(u)
    s.flush()
    return u


def get_role(s: Session, role_id: str) -> Role:
    r = s.get(Role, role_id)
    if r is None:
        raise NotFound(f"Could not find role: {role_id}.")
    return r


def ensure_role(s: Session, name: str) -> Role:
    r = s.scalars(select(Role).where(Role.name == name)).first()
    if r is None:
        r = Role(name=name)
        s.add(r)
        s.flush()
    return r


def assign_role(s: Session, *, user_id: str, project_id: str, role_id: str) -> None:
    if s.get(RoleAssignment, (user_id, project_id, role_id)) is None:
        s.add(RoleAssignment(user_id=user_id, project_id=project_id, role_id=role_id))
        s.flush()


def unassign_role(s: Session, *, user_id: str, project_id: str, role_id: str) -> None:
    ra = s.get(RoleAssignment, (user_id, project_id, role_id))
    if ra is None:
        raise NotFound(
            f"Could not find role assignment with role: {role_id}, user or group: {user_id}, "
            f"project, domain, or system: {project_id}."
        )
    s.delete(ra)
