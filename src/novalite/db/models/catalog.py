"""Flavors (with extra specs and project access), key pairs, quota limits, and Keystone's service
catalog (services and their endpoints).

Flavors and key pairs are hard-deleted, as Nova's API database does: a server keeps its own
flavor snapshot, so nothing points at a flavor row after boot. ``Flavor.id`` is internal;
the API's id is the string ``flavorid``.

Catalog rows: a built-in endpoint keeps ``builtin_suffix`` (``/compute/v2.1``) and its URL is the
server's public URL plus that suffix at the time of reading, so a changed ``public_url`` needs no
data change; an admin who sets the URL clears it.

Quota rows: ``Quota`` holds per-project limits (``user_id == ""``) and per-user limits
(``user_id`` set); ``QuotaClass`` holds the limits of a named class, of which only
``default`` is used when resolving limits.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from novalite.db.base import Base, UTCDateTime, utcnow


class Flavor(Base):
    __tablename__ = "flavors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    flavorid: Mapped[str] = mapped_column(String(255), unique=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    memory_mb: Mapped[int] = mapped_column(Integer)
    vcpus: Mapped[int] = mapped_column(Integer)
    root_gb: Mapped[int] = mapped_column(Integer, default=0)
    ephemeral_gb: Mapped[int] = mapped_column(Integer, default=0)
    swap: Mapped[int] = mapped_column(Integer, default=0)  # MB
    rxtx_factor: Mapped[float] = mapped_column(Float, default=1.0)
    is_public: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True, onupdate=utcnow)

    specs: Mapped[list[FlavorExtraSpec]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", passive_deletes=True
    )
    projects: Mapped[list[FlavorProjectAccess]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", passive_deletes=True
    )

    @property
    def extra_specs(self) -> dict[str, str]:
        return {spec.key: spec.value for spec in self.specs}


class FlavorExtraSpec(Base):
    __tablename__ = "flavor_extra_specs"

    flavor_id: Mapped[int] = mapped_column(ForeignKey("flavors.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))


class FlavorProjectAccess(Base):
    __tablename__ = "flavor_projects"

    flavor_id: Mapped[int] = mapped_column(ForeignKey("flavors.id", ondelete="CASCADE"), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(255), primary_key=True, index=True)


class KeyPair(Base):
    __tablename__ = "key_pairs"
    __table_args__ = (UniqueConstraint("user_id", "name", name="uq_key_pairs_user_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(8), default="ssh")  # ssh | x509
    public_key: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True, onupdate=utcnow)


class Quota(Base):
    """One limit of one project (``user_id == ""``) or of one user inside a project."""

    __tablename__ = "quotas"
    __table_args__ = (
        UniqueConstraint("project_id", "user_id", "resource", name="uq_quotas_project_user_resource"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[str] = mapped_column(String(255), default="")
    resource: Mapped[str] = mapped_column(String(255))
    hard_limit: Mapped[int] = mapped_column(Integer)


class QuotaClass(Base):
    __tablename__ = "quota_classes"

    class_name: Mapped[str] = mapped_column(String(255), primary_key=True)
    resource: Mapped[str] = mapped_column(String(255), primary_key=True)
    hard_limit: Mapped[int] = mapped_column(Integer)


class CatalogService(Base):
    __tablename__ = "catalog_services"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    type: Mapped[str] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class CatalogEndpoint(Base):
    __tablename__ = "catalog_endpoints"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    service_id: Mapped[str] = mapped_column(ForeignKey("catalog_services.id", ondelete="CASCADE"), index=True)
    interface: Mapped[str] = mapped_column(String(8))  # public | internal | admin
    region_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    url: Mapped[str] = mapped_column(Text)
    builtin_suffix: Mapped[str | None] = mapped_column(String(255), nullable=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
