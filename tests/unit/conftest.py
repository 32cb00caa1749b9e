"""Fixtures of the unit tests that need a migrated database of each kind."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from novalite.db.base import Database, upgrade
from tests.conftest import drop_postgres, postgres_url


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A migrated, empty database: a SQLite file, then PostgreSQL (skipped loudly when it is not
    reachable, a failure under NOVALITE_REQUIRE_SERVICES=1)."""
    url = f"sqlite:///{tmp_path}/unit.db" if request.param == "sqlite" else postgres_url()
    upgrade(url)
    database = Database(url)
    yield database
    database.dispose()
    if request.param == "postgresql":
        drop_postgres(url)
