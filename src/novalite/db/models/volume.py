"""Embedded Cinder v3 subset: volumes, their attachments, snapshots and backups, volume types and
per-project quotas."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from novalite.db.base import Base, UTCDateTime, new_uuid, utcnow
from novalite.domain.zones import DEFAULT_ZONE


class VolumeType(Base):
    __tablename__ = "volume_types"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    description: Mapped[str | None] = mapped_column(String(255), nullable=True)
    is_public: Mapped[bool] = mapped_column(Boolean, default=True)
    extra_specs: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class VolumeTypeAccess(Base):
    """A project allowed to use a private volume type."""

    __tablename__ = "volume_type_access"

    volume_type_id: Mapped[str] = mapped_column(
        ForeignKey("volume_types.id", ondelete="CASCADE"), primary_key=True
    )
    project_id: Mapped[str] = mapped_column(String(64), primary_key=True)


class Volume(Base):
    __tablename__ = "volumes"
    __table_args__ = (Index("ix_volumes_project_created", "project_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    description: Mapped[str | None] = mapped_column(String(255), nullable=True)
    project_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)  # GiB
    status: Mapped[str] = mapped_column(String(32), default="creating")
    attach_status: Mapped[str] = mapped_column(String(32), default="detached")
    volume_type_id: Mapped[str] = mapped_column(ForeignKey("volume_types.id"))
    availability_zone: Mapped[str] = mapped_column(String(255), default=DEFAULT_ZONE)
    bootable: Mapped[bool] = mapped_column(Boolean, default=False)
    multiattach: Mapped[bool] = mapped_column(Boolean, default=False)
    read_only: Mapped[bool] = mapped_column(Boolean, default=False)
    image_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    source_volid: Mapped[str | None] = mapped_column(String(36), nullable=True)  # a clone's origin
    snapshot_id: Mapped[str | None] = mapped_column(String(36), nullable=True)  # created from a snapshot
    image_metadata: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)  # volume_image_metadata
    volume_metadata: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)  # "metadata"
    location: Mapped[str | None] = mapped_column(Text, nullable=True)  # where the storage keeps the data
    host: Mapped[str] = mapped_column(String(255), default="novalite@lvm#lvm")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    launched_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class VolumeAttachment(Base):
    __tablename__ = "volume_attachments"
    __table_args__ = (
        Index("ix_volume_attachments_volume", "volume_id"),
        Index("ix_volume_attachments_instance", "instance_uuid"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    volume_id: Mapped[str] = mapped_column(ForeignKey("volumes.id", ondelete="CASCADE"))
    instance_uuid: Mapped[str | None] = mapped_column(String(36), nullable=True)
    attached_host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    mountpoint: Mapped[str | None] = mapped_column(String(255), nullable=True)
    attach_status: Mapped[str] = mapped_column(String(32), default="reserved")  # reserved|attaching|attached
    attach_mode: Mapped[str] = mapped_column(String(8), default="rw")
    delete_on_termination: Mapped[bool] = mapped_column(Boolean, default=False)  # set by the compute side
    connector: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    connection_info: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    attached_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    detached_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class VolumeQuota(Base):
    """A per-project override of one Cinder quota (absent: the default)."""

    __tablename__ = "volume_quotas"

    project_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    resource: Mapped[str] = mapped_column(String(64), primary_key=True)
    hard_limit: Mapped[int] = mapped_column(Integer)


class VolumeSnapshot(Base):
    """A point-in-time copy of a volume's data; the volume cannot be deleted while it has any."""

    __tablename__ = "volume_snapshots"
    __table_args__ = (
        Index("ix_volume_snapshots_project_created", "project_id", "created_at"),
        Index("ix_volume_snapshots_volume", "volume_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    description: Mapped[str | None] = mapped_column(String(255), nullable=True)
    project_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(64))
    volume_id: Mapped[str] = mapped_column(String(36))
    size: Mapped[int] = mapped_column(Integer)  # GiB: the volume's size when taken
    status: Mapped[str] = mapped_column(String(32), default="creating")
    snapshot_metadata: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)  # "metadata"
    location: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class VolumeBackup(Base):
    """A full copy of a volume's data kept apart from it (under ``<data_dir>/backups``)."""

    __tablename__ = "volume_backups"
    __table_args__ = (Index("ix_volume_backups_project_created", "project_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    description: Mapped[str | None] = mapped_column(String(255), nullable=True)
    project_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(64))
    volume_id: Mapped[str] = mapped_column(String(36))
    snapshot_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    size: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(32), default="creating")
    container: Mapped[str | None] = mapped_column(String(255), nullable=True)
    availability_zone: Mapped[str] = mapped_column(String(255), default=DEFAULT_ZONE)
    fail_reason: Mapped[str | None] = mapped_column(String(255), nullable=True)
    backup_metadata: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    location: Mapped[str | None] = mapped_column(Text, nullable=True)
    restore_volume_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    data_timestamp: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
