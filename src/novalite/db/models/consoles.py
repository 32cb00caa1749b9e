"""Console auth tokens (Nova's ``console_auth_tokens``): what a console URL's token opens.

Only the token's SHA-256 is stored. A row names the instance, the console type and where the
console proxy connects (``host``/``port``, or a unix socket ``path``). Rows past ``expires`` and
rows of deleted instances are pruned whenever a token is issued or looked up.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from novalite.db.base import Base, UTCDateTime, utcnow


class ConsoleAuthToken(Base):
    __tablename__ = "console_auth_tokens"
    __table_args__ = (
        Index("ix_console_auth_tokens_instance_uuid", "instance_uuid"),
        Index("ix_console_auth_tokens_expires", "expires"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    instance_uuid: Mapped[str] = mapped_column(String(36))
    console_type: Mapped[str] = mapped_column(String(32))
    host: Mapped[str] = mapped_column(String(255))
    port: Mapped[int | None] = mapped_column(Integer, nullable=True)
    path: Mapped[str | None] = mapped_column(String(255), nullable=True)  # a unix socket instead
    internal_access_path: Mapped[str | None] = mapped_column(String(255), nullable=True)
    access_url_base: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires: Mapped[dt.datetime] = mapped_column(UTCDateTime)
