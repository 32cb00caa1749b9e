"""create_server.pipeline store group: creates of one project queued together share the quota lock
and one transaction; a failing create (over quota, ...) costs no other create its rows and gets
its own exception."""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from novalite.db.base import Database
from novalite.services.create_server import pipeline


@pytest.fixture()
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'g.db'}")
    with database.session() as s:
        s.execute(text("CREATE TABLE t (v INTEGER UNIQUE)"))

    def unit(s: Session, plan: Any) -> None:
        s.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": plan.v})

    monkeypatch.setattr(pipeline, "_store_unit", unit)
    return database


def _values(db: Database) -> list[int]:
    with db.reader() as s:
        return sorted(s.execute(text("SELECT v FROM t")).scalars())


def test_single_create_commits(db: Database) -> None:
    pipeline.store_grouped(db, "quota:p", SimpleNamespace(v=1))  # type: ignore[arg-type]
    assert _values(db) == [1]


def test_failing_create_is_isolated(db: Database) -> None:
    results: dict[int, object] = {}
    start = threading.Barrier(8)

    def worker(v: int) -> None:
        start.wait()
        try:
            pipeline.store_grouped(db, "quota:p", SimpleNamespace(v=1 if v == 7 else v + 10))  # type: ignore[arg-type]
            results[v] = "ok"
        except Exception as exc:
            results[v] = exc

    with db.session() as s:  # 1 exists: the create inserting it again fails
        s.execute(text("INSERT INTO t (v) VALUES (1)"))
    threads = [threading.Thread(target=worker, args=(v,)) for v in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(10)
    assert isinstance(results[7], Exception)
    assert all(results[v] == "ok" for v in range(7))
    assert _values(db) == [1, *range(10, 17)]
