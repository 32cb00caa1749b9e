"""The Alembic migrations produce exactly the schema the models describe."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

import novalite.db.models  # noqa: F401
from novalite.db.base import Base, upgrade


def test_models_match_migrations(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/m.db"
    upgrade(url)
    engine = create_engine(url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == [], f"models and migrations differ; run tools/regen_migration.py: {diff}"
