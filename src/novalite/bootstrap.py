"""First-start bootstrap: identity (users, projects, roles), then each service's seed data,
then the clouds.yaml entries. Safe to run on every start: it only adds what is missing."""

from __future__ import annotations

import importlib
import logging
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from novalite.db.models.identity import User
from novalite.identity import service as identity
from novalite.identity.passwords import hash_password, prehash
from novalite.randomness import random_chars

LOG = logging.getLogger(__name__)

# Modules whose ``seed(runtime, session, ids)`` runs, in this order, inside the bootstrap
# transaction. ``ids`` holds admin_project, demo_project, admin_user, demo_user.
SEEDER_MODULES = [
    "novalite.services.flavors",
    "novalite.image.service",
    "novalite.network.service",
    "novalite.volume.service",  # __DEFAULT__ volume type; registers the volume storage
    "novalite.compute.hosts",
]
Seeder = Callable[[Any, Session, dict[str, str]], None]


def seeders() -> list[Seeder]:
    return [importlib.import_module(name).seed for name in SEEDER_MODULES]


@dataclass
class BootstrapReport:
    generated: dict[str, str] = field(default_factory=dict)  # user -> password generated now
    passwords: dict[str, str] = field(default_factory=dict)  # user -> known password (generated or given)
    ids: dict[str, str] = field(default_factory=dict)
    clouds_yaml: Path | None = None


def _generate_password() -> str:
    return random_chars(string.ascii_letters + string.digits, 20)


def _ensure_user(
    s: Session,
    report: BootstrapReport,
    *,
    name: str,
    project_id: str,
    role_names: list[str],
    given: str,
    generated: str = "",
) -> str:
    user = s.scalars(select(User).where(User.name == name)).first()
    if user is None:
        password = given or generated or _generate_password()
        if not given:
            report.generated[name] = password
        user = identity.create_user(s, name=name, password=password, default_project_id=project_id)
        report.passwords[name] = password
    elif given:
        user.password_hash = hash_password(given)
        report.passwords[name] = given
    for role_name in role_names:
        role = identity.ensure_role(s, role_name)
        identity.assign_role(s, user_id=user.id, project_id=project_id, role_id=role.id)
    return user.id


def bootstrap(runtime: Any) -> BootstrapReport:
    settings = runtime.settings
    report = BootstrapReport()
    with runtime.db.session() as s:
        # every password this start stores a hash of, hashed at once on threads (scrypt releases the
        # GIL): a given password is hashed again on every start, a missing user gets a generated one
        existing = set(s.scalars(select(User.name).where(User.name.in_(("admin", "demo")))))
        generated = {
            name: _generate_password()
            for name, given in (("admin", settings.admin_password), ("demo", settings.demo_password))
            if not given and name not in existing
        }
        prehash([p for p in (*generated.values(), settings.admin_password, settings.demo_password) if p])
        for role in ("admin", "member", "reader"):
            identity.ensure_role(s, role)
        admin_project = identity.find_project(s, "admin") or identity.create_project(
            s, name="admin", description="Bootstrap project for the novalite administrator"
        )
        demo_project = identity.find_project(s, "demo") or identity.create_project(
            s, name="demo", description="Bootstrap project for the demo user"
        )
        report.ids.update(admin_project=admin_project.id, demo_project=demo_project.id)
        report.ids["admin_user"] = _ensure_user(
            s,
            report,
            name="admin",
            project_id=admin_project.id,
            role_names=["admin"],
            given=settings.admin_password,
            generated=generated.get("admin", ""),
        )
        report.ids["demo_user"] = _ensure_user(
            s,
            report,
            name="demo",
            project_id=demo_project.id,
            role_names=["member"],
            given=settings.demo_password,
            generated=generated.get("demo", ""),
        )
        # the admin may also act in the demo project, as devstack's admin does
        admin_role = identity.ensure_role(s, "admin")
        identity.assign_role(
            s, user_id=report.ids["admin_user"], project_id=demo_project.id, role_id=admin_role.id
        )
        s.flush()
        for seeder in seeders():
            seeder(runtime, s, report.ids)
    if settings.write_clouds_yaml:
        report.clouds_yaml = write_clouds_yaml(settings, report.passwords)
    return report


def clouds_yaml_path(settings: Any) -> Path:
    if settings.clouds_yaml_path:
        return Path(settings.clouds_yaml_path).expanduser()
    return Path.home() / ".config" / "openstack" / "clouds.yaml"


def write_clouds_yaml(settings: Any, passwords: dict[str, str]) -> Path:
    """Add or refresh the ``novalite`` and ``novalite-admin`` clouds; leave the others alone."""
    import yaml  # only here: a start with write_clouds_yaml off does not load it

    path = clouds_yaml_path(settings)
    data: dict[str, Any] = {}
    if path.exists():
        loaded = yaml.safe_load(path.read_text()) or {}
        if isinstance(loaded, dict):
            data = loaded
    clouds = data.setdefault("clouds", {})
    for cloud, user, project in (("novalite", "demo", "demo"), ("novalite-admin", "admin", "admin")):
        old = clouds.get(cloud) or {}
        password = passwords.get(user) or (old.get("auth") or {}).get("password", "")
        clouds[cloud] = {
            "auth": {
                "auth_url": f"{settings.effective_public_url}/identity",
                "username": user,
                "password": password,
                "project_name": project,
                "user_domain_name": "Default",
                "project_domain_name": "Default",
            },
            "region_name": settings.region,
            "interface": "public",
            "identity_api_version": 3,
        }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    path.chmod(0o600)
    return path
