"""Image service (Glance v2 subset) tables: images, their free-form properties, tags and members.

Deleting an image keeps its row (``deleted`` true, status ``deleted``) so the compute
proxy's ``changes-since`` can still report it; every other read skips deleted rows.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from novalite.db.base import Base, UTCDateTime, new_uuid, utcnow

IMAGE_STATUSES = (
    "queued",
    "saving",
    "active",
    "deactivated",
    "killed",
    "deleted",
    "pending_delete",
    "importing",
    "uploading",  # data staged for an interoperable import (PUT /stage), not yet imported
)
VISIBILITIES = ("public", "private", "shared", "community")
MEMBER_STATUSES = ("pending", "accepted", "rejected")


class Image(Base):
    __tablename__ = "images"
    __table_args__ = (
        Index("ix_images_deleted_visibility", "deleted", "visibility"),
        Index("ix_images_owner", "owner"),
        Index("ix_images_name", "name"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    status: Mapped[str] = mapped_column(String(32), default="queued")
    visibility: Mapped[str] = mapped_column(String(16), default="shared")
    owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    protected: Mapped[bool] = mapped_column(Boolean, default=False)
    os_hidden: Mapped[bool] = mapped_column(Boolean, default=False)
    disk_format: Mapped[str | None] = mapped_column(String(32), nullable=True)
    container_format: Mapped[str | None] = mapped_column(String(32), nullable=True)
    size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    virtual_size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    checksum: Mapped[str | None] = mapped_column(String(32), nullable=True)  # md5 hex
    os_hash_algo: Mapped[str | None] = mapped_column(String(64), nullable=True)
    os_hash_value: Mapped[str | None] = mapped_column(String(128), nullable=True)
    data_path: Mapped[str | None] = mapped_column(String(1024), nullable=True)  # the data file, once uploaded
    min_ram: Mapped[int] = mapped_column(Integer, default=0)
    min_disk: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    deleted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)

    props: Mapped[list[ImageProperty]] = relationship(
        back_populates="image", cascade="all, delete-orphan", lazy="selectin", order_by="ImageProperty.name"
    )
    tag_rows: Mapped[list[ImageTag]] = relationship(
        back_populates="image", cascade="all, delete-orphan", lazy="selectin", order_by="ImageTag.value"
    )

    @property
    def properties(self) -> dict[str, str]:
        return {p.name: p.value for p in self.props}

    @property
    def tags(self) -> list[str]:
        return [t.value for t in self.tag_rows]


class ImageProperty(Base):
    __tablename__ = "image_properties"

    image_id: Mapped[str] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(Text, default="")

    image: Mapped[Image] = relationship(back_populates="props")


class ImageTag(Base):
    __tablename__ = "image_tags"

    image_id: Mapped[str] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), primary_key=True)
    value: Mapped[str] = mapped_column(String(255), primary_key=True)

    image: Mapped[Image] = relationship(back_populates="tag_rows")


class ImageMember(Base):
    """A project the owner shared the image with; the member project sets ``status``.

    Removing a member deletes its row (Glance marks it deleted; nothing here reads old ones)."""

    __tablename__ = "image_members"
    __table_args__ = (Index("ix_image_members_member_status", "member", "status"),)

    image_id: Mapped[str] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), primary_key=True)
    member: Mapped[str] = mapped_column(String(255), primary_key=True)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
