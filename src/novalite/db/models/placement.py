"""Placement (resource providers, inventories, allocations, traits, aggregates) and the
compute side's host records (services, compute nodes).

Placement:

* ``ResourceProvider`` is one compute node's pool of resources (its ``uuid`` is the compute
  node's uuid, its ``name`` the hypervisor hostname). ``generation`` changes on every write
  that touches the provider (inventory, traits, aggregates, allocations); writers update it
  with ``UPDATE ... WHERE generation = :seen`` so a concurrent writer is detected, never lost.
* ``Inventory`` is one resource class on a provider. ``used`` is the sum of the provider's
  allocations of that class, kept in the same transaction as the allocation rows by a
  conditional ``UPDATE ... WHERE used + :n <= capacity``: the database refuses an over-claim.
  Capacity is ``(total - reserved) * allocation_ratio``.
* ``Allocation`` is what one consumer (an instance uuid) holds of one class on one provider.
  ``Consumer`` carries the consumer's project, user and its own ``generation``.
* ``Trait``/``ProviderTrait`` and ``ProviderAggregate`` (placement aggregates are bare uuids).
* ``ResourceClass``: the custom resource classes created on their own.

Hosts:

* ``Service`` is one running service (``nova-compute``, ``nova-conductor``, ``nova-scheduler``)
  on a host, with its heartbeat ``last_seen_at`` and the operator's ``disabled``/``forced_down``.
* ``ComputeNode`` is the hypervisor a ``nova-compute`` service manages: capacity as reported
  by the virt driver, and ``failed_builds`` (consecutive failed builds, reset by a success).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Computed,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from novalite.db.base import Base, UTCDateTime, new_uuid, utcnow
from novalite.domain.zones import DEFAULT_ZONE


class ResourceProvider(Base):
    """A pool of resources; for compute nodes ``uuid`` = compute node uuid, ``name`` = node name."""

    __tablename__ = "resource_providers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    generation: Mapped[int] = mapped_column(Integer, default=0)
    root_provider_uuid: Mapped[str | None] = mapped_column(String(36), nullable=True)  # None: it is a root
    parent_provider_uuid: Mapped[str | None] = mapped_column(String(36), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Inventory(Base):
    """One resource class (VCPU, MEMORY_MB, DISK_GB, ...) of a provider, with its running usage."""

    __tablename__ = "inventories"
    __table_args__ = (
        UniqueConstraint("resource_provider_id", "resource_class", name="uq_inventories_rp_rc"),
        Index("ix_inventories_rc_provider", "resource_class", "resource_provider_id"),
        Index("ix_inventories_rc_shortfall", "resource_class", "shortfall", "resource_provider_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    resource_provider_id: Mapped[int] = mapped_column(ForeignKey("resource_providers.id", ondelete="CASCADE"))
    resource_class: Mapped[str] = mapped_column(String(255))
    total: Mapped[int] = mapped_column(Integer)
    reserved: Mapped[int] = mapped_column(Integer, default=0)
    min_unit: Mapped[int] = mapped_column(Integer, default=1)
    max_unit: Mapped[int] = mapped_column(Integer)
    step_size: Mapped[int] = mapped_column(Integer, default=1)
    allocation_ratio: Mapped[float] = mapped_column(Float, default=1.0)
    used: Mapped[int] = mapped_column(Integer, default=0)  # sum of allocations of this class here
    # minus the free amount as the scheduler's RAM/CPU weighers see it, kept by the database
    # (a stored generated column: no writer maintains it). Indexed with the class so the
    # scheduler's candidate window (most -- or least -- free first) is an index walk that stops
    # after the window instead of a sort of every fitting provider.
    shortfall: Mapped[float] = mapped_column(
        Float, Computed("used + reserved - total * allocation_ratio", persisted=True)
    )


class Consumer(Base):
    """Who holds allocations (an instance uuid) and the consumer generation for its writes."""

    __tablename__ = "consumers"

    uuid: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(64))
    consumer_type: Mapped[str] = mapped_column(String(32), default="INSTANCE")
    generation: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Allocation(Base):
    """``used`` units of ``resource_class`` held on a provider by one consumer."""

    __tablename__ = "allocations"
    __table_args__ = (
        UniqueConstraint(
            "consumer_id", "resource_provider_id", "resource_class", name="uq_allocations_c_rp_rc"
        ),
        Index("ix_allocations_provider_rc", "resource_provider_id", "resource_class"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    resource_provider_id: Mapped[int] = mapped_column(ForeignKey("resource_providers.id", ondelete="CASCADE"))
    consumer_id: Mapped[str] = mapped_column(String(36), index=True)
    resource_class: Mapped[str] = mapped_column(String(255))
    used: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Trait(Base):
    """A named capability (``HW_CPU_X86_AVX2``, ``COMPUTE_STATUS_DISABLED``, ``CUSTOM_*``)."""

    __tablename__ = "traits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ResourceClass(Base):
    """A custom resource class (``CUSTOM_*``) made by ``POST``/``PUT /resource_classes``. The
    standard classes are constants (``placement.api_classes``), never rows; an inventory of a
    custom class with no row here (the class came with the inventory) counts as existing too."""

    __tablename__ = "resource_classes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ProviderTrait(Base):
    """A trait a provider has."""

    __tablename__ = "provider_traits"

    resource_provider_id: Mapped[int] = mapped_column(
        ForeignKey("resource_providers.id", ondelete="CASCADE"), primary_key=True
    )
    trait_id: Mapped[int] = mapped_column(ForeignKey("traits.id", ondelete="CASCADE"), primary_key=True)


class ProviderAggregate(Base):
    """Membership of a provider in a placement aggregate (a bare uuid; Nova host aggregates
    mirror their hosts' providers into the aggregate with the host aggregate's uuid)."""

    __tablename__ = "provider_aggregates"
    __table_args__ = (Index("ix_provider_aggregates_aggregate", "aggregate_uuid"),)

    resource_provider_id: Mapped[int] = mapped_column(
        ForeignKey("resource_providers.id", ondelete="CASCADE"), primary_key=True
    )
    aggregate_uuid: Mapped[str] = mapped_column(String(36), primary_key=True)


class Service(Base):
    """One service on one host (``binary`` nova-compute / nova-conductor / nova-scheduler).

    A service is *up* when ``last_seen_at`` is within ``Settings.service_down_time`` seconds and
    it is not ``forced_down``; ``disabled`` (with ``disabled_reason``) keeps the scheduler away.
    """

    __tablename__ = "services"
    __table_args__ = (UniqueConstraint("host", "binary", name="uq_services_host_binary"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    binary: Mapped[str] = mapped_column(String(255))
    host: Mapped[str] = mapped_column(String(255))
    topic: Mapped[str] = mapped_column(String(255), default="")
    # INTERNAL_ZONE for the control services
    availability_zone: Mapped[str] = mapped_column(String(255), default=DEFAULT_ZONE)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled_reason: Mapped[str | None] = mapped_column(String(255), nullable=True)
    forced_down: Mapped[bool] = mapped_column(Boolean, default=False)
    report_count: Mapped[int] = mapped_column(Integer, default=0)
    version: Mapped[int] = mapped_column(Integer, default=1)
    last_seen_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)  # last heartbeat
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    deleted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ComputeNode(Base):
    """A hypervisor managed by a ``nova-compute`` service; its uuid is its resource provider's.

    Capacity (``vcpus``, ``memory_mb``, ``local_gb``) is what the virt driver reports; usage
    lives in placement (``novalite.compute.resource_tracker.node_usage``).
    """

    __tablename__ = "compute_nodes"
    __table_args__ = (Index("ix_compute_nodes_host", "host"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    service_id: Mapped[int | None] = mapped_column(
        ForeignKey("services.id", ondelete="SET NULL"), nullable=True
    )
    host: Mapped[str] = mapped_column(String(255))
    hypervisor_hostname: Mapped[str] = mapped_column(String(255), unique=True)
    hypervisor_type: Mapped[str] = mapped_column(String(255), default="QEMU")
    hypervisor_version: Mapped[int] = mapped_column(Integer, default=8002000)
    vcpus: Mapped[int] = mapped_column(Integer)
    memory_mb: Mapped[int] = mapped_column(Integer)
    local_gb: Mapped[int] = mapped_column(Integer)
    cpu_info: Mapped[dict[str, Any]] = mapped_column(
        JSON, default=dict
    )  # arch, model, vendor, topology, features
    supported_instances: Mapped[list[list[str]]] = mapped_column(
        JSON, default=list
    )  # [[arch, hv_type, vm_mode]]
    stats: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # extra capabilities for the filters
    host_ip: Mapped[str] = mapped_column(String(64), default="127.0.0.1")
    failed_builds: Mapped[int] = mapped_column(Integer, default=0)  # consecutive, reset on success
    disk_available_least: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    deleted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    notes: Mapped[str] = mapped_column(Text, default="")
