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


GUEST_IMAGE_NAME = "novalite-guest"


def seeders() -> list[Seeder]:
    return [importlib.import_module(name).seed for name in SEEDER_MODULES]


def guest_image_file(settings: Any) -> Path | None:
    """With ``--driver qemu``: the default bootable guest image, built (or found in its cache,
    ``guest_image_cache`` / $NOVALITE_GUEST_CACHE / ~/.cache/novalite/guest) before the
    bootstrap transaction. A failed build stops the start-up with the builder's reason."""
    if settings.virt_driver != "qemu":
        return None
    from novalite.guest.builder import GuestBuildError, build_guest_image, default_cache_dir

    try:
        return build_guest_image(default_cache_dir(settings.guest_image_cache)).path
    except GuestBuildError as exc:
        raise SystemExit(f"novalite: cannot build the default guest image: {exc}") from None


def seed_guest_image(runtime: Any, s: Session, ids: dict[str, str], source: Path) -> None:
    """The public qcow2 image ``novalite-guest`` (what ``novalite image build`` makes), uploaded
    once; uploaded again when its data file was lost."""
    from novalite.db.base import utcnow
    from novalite.db.models.image import Image
    from novalite.image import store
    from novalite.image.service import finish_upload, image_data_path

    image = s.scalars(select(Image).where(Image.name == GUEST_IMAGE_NAME, Image.deleted.is_(False))).first()
    if image is None:
        image = Image(
            name=GUEST_IMAGE_NAME,
            status="queued",
            visibility="public",
            owner=ids["admin_project"],
            protected=False,
            os_hidden=False,
            disk_format="qcow2",
            container_format="bare",
            min_ram=0,
            min_disk=0,
            created_at=utcnow(),
        )
        s.add(image)
        s.flush()
    elif image_data_path(image) is not None:
        return
    image.status = "saving"
    writer = store.DataWriter(runtime.settings.data_dir, image.id)
    try:
        with source.open("rb") as f:
            while chunk := f.read(1 << 20):
                writer.write(chunk)
        stored = writer.commit()
    except BaseException:
        writer.abort()
        raise
    finish_upload(s, image.id, stored)
    s.flush()


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


def _ensure_service_user(s: Session, report: BootstrapReport, settings: Any, generated: str) -> None:
    """The user compute hosts authenticate as to fetch images over the Image API (DevStack's
    ``nova`` in project ``service`` with the ``service`` and ``admin`` roles)."""
    project = identity.find_project(s, settings.service_user_project) or identity.create_project(
        s, name=settings.service_user_project, description="Bootstrap project for the service users"
    )
    report.ids["service_project"] = project.id
    report.ids["service_user"] = _ensure_user(
        s,
        report,
        name=settings.service_user_name,
        project_id=project.id,
        role_names=["service", "admin"],
        given=settings.service_user_password,
        generated=generated,
    )


def bootstrap(runtime: Any) -> BootstrapReport:
    settings = runtime.settings
    report = BootstrapReport()
    guest_image = guest_image_file(settings)
    with runtime.db.session() as s:
        # every password this start stores a hash of, hashed at once on threads (scrypt releases the
        # GIL): a given password is hashed again on every start, a missing user gets a generated one
        given_passwords = (
            ("admin", settings.admin_password),
            ("demo", settings.demo_password),
            (settings.service_user_name, settings.service_user_password),
        )
        names = [name for name, _ in given_passwords]
        existing = set(s.scalars(select(User.name).where(User.name.in_(names))))
        missing = [name for name, given in given_passwords if not given and name not in existing]
        generated = {name: _generate_password() for name in missing}
        prehash([p for p in (*generated.values(), *(given for _, given in given_passwords)) if p])
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
        _ensure_service_user(s, report, settings, generated.get(settings.service_user_name, ""))
        s.flush()
        for seeder in seeders():
            seeder(runtime, s, report.ids)
        if guest_image is not None:
            seed_guest_image(runtime, s, report.ids, guest_image)
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
