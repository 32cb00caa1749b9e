"""The running deployment: settings, database, token provider and the services built on them.

One ``Runtime`` per process. Routes reach it through ``request.app.state.runtime``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from novalite.config import Settings
from novalite.db.base import Database
from novalite.db.models.identity import ServiceKey
from novalite.identity.tokens import TokenProvider


@dataclass
class Runtime:
    settings: Settings
    db: Database
    tokens: TokenProvider
    # service name -> (catalog type, catalog name, url suffix); filled by each service's router
    catalog: list[tuple[str, str, str]] = field(default_factory=list)
    services: dict[str, Any] = field(default_factory=dict)

    @property
    def public_url(self) -> str:
        return self.settings.effective_public_url


def load_token_key(db: Database) -> bytes:
    with db.session() as s:
        row = s.scalars(select(ServiceKey).where(ServiceKey.name == "fernet")).first()
        if row is None:
            row = ServiceKey(name="fernet", value=TokenProvider.generate_key())
            s.add(row)
        return row.value.encode()
