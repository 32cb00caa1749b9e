"""create_server.pipeline store_group: creates of one project stored together share the quota lock
and one transaction; a failing create (over quota, ...) costs no other create its rows and gets
its own exception."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from novalite.db.base import Database
from novalite.services.create_server import pipeline


@pytest.fixture()
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'g.db'}")
    with database.session() as s:
        s.execute(text("CREATE TABLE t (v INTEGER UNIQUE)"))

    def unit(s: Session, checked: Any) -> None:
        s.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": checked.v})

    monkeypatch.setattr(pipeline, "_store_unit", unit)
    return database


def _values(db: Database) -> list[int]:
    with db.reader() as s:
        return sorted(s.execute(text("SELECT v FROM t")).scalars())


def test_single_create_commits(db: Database) -> None:
    assert pipeline.store_group(db, "quota:p", [SimpleNamespace(v=1)]) == [None]  # type: ignore[list-item]
    assert _values(db) == [1]


def test_creates_run_under_the_projects_quota_lock(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """The shared transaction is the project's serialized quota unit, not a plain session
    (db.group_commit's own tests cover sharing and isolating a failing unit)."""
    taken: list[str] = []
    serialized = db.serialized

    def recording(key: str) -> Any:
        taken.append(key)
        return serialized(key)

    monkeypatch.setattr(db, "serialized", recording)
    assert pipeline.store_group(db, "quota:p2", [SimpleNamespace(v=5)]) == [None]  # type: ignore[list-item]
    assert taken == ["quota:p2"]
    assert _values(db) == [5]


def test_a_failing_create_of_a_group_gets_its_own_error_and_costs_the_others_nothing(db: Database) -> None:
    outcomes = pipeline.store_group(
        db,
        "quota:p3",
        [
            SimpleNamespace(v=1),
            SimpleNamespace(v=1),  # type: ignore[list-item]
            SimpleNamespace(v=2),
        ],
    )
    assert outcomes[0] is None and outcomes[2] is None
    assert isinstance(outcomes[1], IntegrityError)
    assert _values(db) == [1, 2]
