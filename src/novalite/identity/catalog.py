"""Keystone's service catalog as rows: services, their endpoints, and the catalog a token carries.

The built-in services (the ``(type, name, url suffix)`` entries the app collects from each API's
router, ``runtime.catalog``) are written on first use with ids derived from their type, so every
process writes the same rows and a second writer only meets its twin. The block-storage entry
also gets the ``volumev3`` and ``volume`` aliases at the same URL, as DevStack registers Cinder:
current Tempest and openstacksdk look for ``block-storage`` first, older clients for the aliases.

A built-in endpoint's URL follows the server's public URL (``builtin_suffix``); an admin who
sets its URL pins it. Admins add, change and delete services and endpoints; each new token's
catalog is read from the rows (enabled services, enabled endpoints). A deleted built-in service
comes back at the next start, as DevStack's ``get_or_create`` would bring it back.
"""

from __future__ import annotations

import threading
import uuid
import weakref
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from novalite.db.models.catalog import CatalogEndpoint, CatalogService
from novalite.errors import BadRequest, NotFound

INTERFACES = ("public", "internal", "admin")
# a built-in type -> further (type, name) entries registered at the same URL
ALIASES: dict[str, tuple[tuple[str, str], ...]] = {
    "block-storage": (("volumev3", "cinderv3"), ("volume", "cinder-volume")),
}
DESCRIPTIONS = {
    "identity": "Identity Service",
    "compute": "Nova Compute Service",
    "image": "Glance Image Service",
    "network": "Neutron Service",
    "placement": "Placement Service",
    "block-storage": "Cinder Volume Service",
    "volumev3": "Cinder Volume Service V3",
    "volume": "Cinder Volume Service (alias)",
}
_NAMESPACE = uuid.UUID("5d3f3b5e-6a54-4c57-9d7e-2b0cfa1e7c11")
_SEEDED: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()
_SEED_LOCK = threading.Lock()


def _id(*parts: str) -> str:
    return uuid.uuid5(_NAMESPACE, "/".join(parts)).hex


def builtin_entries(entries: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    out = []
    for ctype, name, suffix in entries:
        out.append((ctype, name, suffix))
        out.extend((alias, alias_name, suffix) for alias, alias_name in ALIASES.get(ctype, ()))
    return out


def ensure_builtin(db: Any, entries: list[tuple[str, str, str]], region: str) -> None:
    """Write the built-in services and endpoints that are missing (once per database per process)."""
    engine = db.engine
    if _SEEDED.get(engine) or not entries:  # no entries yet: the app is not built in this process
        return
    with _SEED_LOCK:
        if _SEEDED.get(engine):
            return
        try:
            with db.session() as s:
                _write_builtin(s, builtin_entries(entries), region)
        except IntegrityError:  # another process wrote the same rows first
            pass
        _SEEDED[engine] = True


def _write_builtin(s: Session, entries: list[tuple[str, str, str]], region: str) -> None:
    existing = set(s.scalars(select(CatalogService.id)))
    for ctype, name, suffix in entries:
        sid = _id("service", ctype)
        if sid in existing:
            continue
        s.add(
            CatalogService(id=sid, type=ctype, name=name, description=DESCRIPTIONS.get(ctype), enabled=True)
        )
        s.flush()
        for iface in INTERFACES:
            s.add(
                CatalogEndpoint(
                    id=_id("endpoint", ctype, iface),
                    service_id=sid,
                    interface=iface,
                    region_id=region,
                    url=suffix,
                    builtin_suffix=suffix,
                    enabled=True,
                )
            )
    s.flush()


def endpoint_url(ep: CatalogEndpoint, public_url: str) -> str:
    return f"{public_url}{ep.builtin_suffix}" if ep.builtin_suffix is not None else ep.url


def token_catalog(s: Session, public_url: str) -> list[dict[str, Any]]:
    """The catalog of a token: every enabled service with its enabled endpoints."""
    services = list(
        s.scalars(
            select(CatalogService)
            .where(CatalogService.enabled.is_(True))
            .order_by(CatalogService.created_at, CatalogService.id)
        )
    )
    by_service: dict[str, list[CatalogEndpoint]] = {svc.id: [] for svc in services}
    q = select(CatalogEndpoint).where(CatalogEndpoint.enabled.is_(True))
    for ep in s.scalars(q.order_by(CatalogEndpoint.created_at, CatalogEndpoint.id)):
        if ep.service_id in by_service:
            by_service[ep.service_id].append(ep)
    return [
        {
            "type": svc.type,
            "name": svc.name or "",
            "id": svc.id,
            "endpoints": [
                {
                    "id": ep.id,
                    "interface": ep.interface,
                    "region": ep.region_id,
                    "region_id": ep.region_id,
                    "url": endpoint_url(ep, public_url),
                }
                for ep in by_service[svc.id]
            ],
        }
        for svc in services
    ]


# ---- services ----


def get_service(s: Session, service_id: str) -> CatalogService:
    svc = s.get(CatalogService, service_id) if len(service_id) <= 64 else None
    if svc is None:
        raise NotFound(f"Could not find service: {service_id}.")
    return svc


@dataclass(frozen=True)
class ServiceFields:
    type: str | None = None
    name: str | None = None
    description: str | None = None
    enabled: bool | None = None


def _string(ref: dict[str, Any], key: str, *, required: bool = False, limit: int = 255) -> str | None:
    value = ref.get(key)
    if value is None:
        if required:
            raise BadRequest(f"Invalid input for field '{key}': '{key}' is a required property")
        return None
    if not isinstance(value, str):
        raise BadRequest(f"Invalid input for field '{key}': {value!r} is not of type 'string'")
    if len(value) > limit or (required and not value):
        raise BadRequest(f"Invalid input for field '{key}': {value!r} must be 1 to {limit} characters long")
    return value


def _enabled(ref: dict[str, Any]) -> bool | None:
    value = ref.get("enabled")
    if value is None or isinstance(value, bool):
        return value
    raise BadRequest(f"Invalid input for field 'enabled': {value!r} is not of type 'boolean'")


def service_fields(ref: dict[str, Any], *, create: bool) -> ServiceFields:
    if not create and "type" in ref and ref["type"] is None:
        raise BadRequest("Invalid input for field 'type': None is not of type 'string'")
    return ServiceFields(
        type=_string(ref, "type", required=create),
        name=_string(ref, "name"),
        description=_string(ref, "description", limit=65535),
        enabled=_enabled(ref),
    )


def create_service(s: Session, fields: ServiceFields) -> CatalogService:
    svc = CatalogService(
        id=uuid.uuid4().hex,
        type=fields.type or "",
        name=fields.name,
        description=fields.description,
        enabled=True if fields.enabled is None else fields.enabled,
    )
    s.add(svc)
    s.flush()
    return svc


def update_service(svc: CatalogService, fields: ServiceFields, present: set[str]) -> None:
    for key in ("type", "name", "description", "enabled"):
        if key in present and (key != "enabled" or fields.enabled is not None):
            setattr(svc, key, getattr(fields, key))


def delete_service(s: Session, service_id: str) -> None:
    svc = get_service(s, service_id)
    for ep in s.scalars(select(CatalogEndpoint).where(CatalogEndpoint.service_id == svc.id)):
        s.delete(ep)
    s.delete(svc)


# ---- endpoints ----


def get_endpoint(s: Session, endpoint_id: str) -> CatalogEndpoint:
    ep = s.get(CatalogEndpoint, endpoint_id) if len(endpoint_id) <= 64 else None
    if ep is None:
        raise NotFound(f"Could not find endpoint: {endpoint_id}.")
    return ep


def _interface(ref: dict[str, Any], *, required: bool) -> str | None:
    value = _string(ref, "interface", required=required)
    if value is not None and value not in INTERFACES:
        raise BadRequest(
            f"Invalid input for field 'interface': {value!r} does not match '^(?:admin|internal|public)$'"
        )
    return value


def create_endpoint(s: Session, ref: dict[str, Any], default_region: str) -> CatalogEndpoint:
    interface = _interface(ref, required=True)
    service_id = _string(ref, "service_id", required=True, limit=64) or ""
    url = _string(ref, "url", required=True, limit=225) or ""
    region = _string(ref, "region_id") or _string(ref, "region")
    enabled = _enabled(ref)
    get_service(s, service_id)
    ep = CatalogEndpoint(
        id=uuid.uuid4().hex,
        service_id=service_id,
        interface=interface or "public",
        region_id=region,
        url=url,
        builtin_suffix=None,
        enabled=True if enabled is None else enabled,
    )
    s.add(ep)
    s.flush()
    return ep


def update_endpoint(s: Session, ep: CatalogEndpoint, ref: dict[str, Any]) -> None:
    if "interface" in ref:
        ep.interface = _interface(ref, required=True) or ep.interface
    if "service_id" in ref:
        ep.service_id = get_service(s, _string(ref, "service_id", required=True, limit=64) or "").id
    if "url" in ref:
        ep.url = _string(ref, "url", required=True, limit=225) or ep.url
        ep.builtin_suffix = None  # pinned by the admin
    if "region_id" in ref or "region" in ref:
        ep.region_id = _string(ref, "region_id") if "region_id" in ref else _string(ref, "region")
    if "enabled" in ref:
        enabled = _enabled(ref)
        if enabled is not None:
            ep.enabled = enabled


def list_endpoints(s: Session, filters: dict[str, str]) -> list[CatalogEndpoint]:
    q = select(CatalogEndpoint).order_by(CatalogEndpoint.created_at, CatalogEndpoint.id)
    if "interface" in filters:
        q = q.where(CatalogEndpoint.interface == filters["interface"])
    if "service_id" in filters:
        q = q.where(CatalogEndpoint.service_id == filters["service_id"])
    if "region_id" in filters:
        q = q.where(CatalogEndpoint.region_id == filters["region_id"])
    return list(s.scalars(q))


def region_ids(s: Session, default_region: str) -> list[str]:
    """Regions exist here as the names endpoints use (and the configured one)."""
    found = {r for r in s.scalars(select(CatalogEndpoint.region_id).distinct()) if r}
    return sorted(found | {default_region})
