"""Nova host aggregates: a named set of compute hosts with metadata.

The ``availability_zone`` metadata key is kept in its own column (the API shows it both as
``availability_zone`` and inside ``metadata``) so zone lookups need no key/value scan; every
other key lives in ``AggregateMetadata``. Aggregates are hard-deleted (only empty ones can
be deleted), so ``name`` is unique. Each aggregate is mirrored into placement as a provider
aggregate with the same ``uuid`` on its hosts' resource providers.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from novalite.db.base import Base, UTCDateTime, new_uuid, utcnow


class Aggregate(Base):
    __tablename__ = "aggregates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    availability_zone: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class AggregateHost(Base):
    __tablename__ = "aggregate_hosts"

    aggregate_id: Mapped[int] = mapped_column(
        ForeignKey("aggregates.id", ondelete="CASCADE"), primary_key=True
    )
    host: Mapped[str] = mapped_column(String(255), primary_key=True, index=True)


class AggregateMetadata(Base):
    __tablename__ = "aggregate_metadata"

    aggregate_id: Mapped[int] = mapped_column(
        ForeignKey("aggregates.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))
