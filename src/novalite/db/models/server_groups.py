"""Server groups (Nova's instance groups) and their members.

A group has one ``policy`` (affinity, anti-affinity, soft-affinity, soft-anti-affinity) and
``rules`` (only ``max_server_per_host`` for anti-affinity). Deleting a group marks it
``deleted``; its member rows stay, as Nova leaves members untouched. A member row outlives
its server: readers drop members whose ``instances`` row is deleted. ``user_id`` on a member
is the server's owner (``server_group_members`` is counted per group per user).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from novalite.db.base import Base, UTCDateTime, utcnow


class InstanceGroup(Base):
    __tablename__ = "instance_groups"
    __table_args__ = (Index("ix_instance_groups_project_deleted", "project_id", "deleted"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    project_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(64))
    policy: Mapped[str] = mapped_column(String(32))
    rules: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    deleted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)


class InstanceGroupMember(Base):
    __tablename__ = "instance_group_members"

    group_id: Mapped[int] = mapped_column(
        ForeignKey("instance_groups.id", ondelete="CASCADE"), primary_key=True
    )
    instance_uuid: Mapped[str] = mapped_column(String(36), primary_key=True, index=True)
    user_id: Mapped[str] = mapped_column(String(64), default="")  # the server's owner, for member quotas
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
