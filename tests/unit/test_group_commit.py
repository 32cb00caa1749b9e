"""db.group_commit: units queued together share a transaction; a failing unit costs no
other unit its work and gets its own exception."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from novalite.db import group_commit
from novalite.db.base import Database


@pytest.fixture()
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'g.db'}")
    with database.session() as s:
        s.execute(text("CREATE TABLE t (v INTEGER UNIQUE)"))
    return database


def _insert(v: int):
    def work(s: Session) -> int:
        s.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": v})
        return v
    return work


def _values(db: Database) -> list[int]:
    with db.reader() as s:
        return sorted(s.execute(text("SELECT v FROM t")).scalars())


def test_single_unit_commits_and_returns(db: Database) -> None:
    assert group_commit.group(db, "x").run(db, _insert(1)) == 1
    assert _values(db) == [1]


def test_failing_unit_is_isolated(db: Database) -> None:
    gc = group_commit.GroupCommit()
    results: dict[int, object] = {}
    start = threading.Barrier(8)

    def worker(v: int) -> None:
        start.wait()
        try:
            results[v] = gc.run(db, _insert(1 if v == 7 else v + 10))
        except Exception as exc:
            results[v] = exc

    with db.session() as s:  # 1 exists: the unit inserting it again fails
        s.execute(text("INSERT INTO t (v) VALUES (1)"))
    threads = [threading.Thread(target=worker, args=(v,)) for v in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(10)
    assert isinstance(results[7], Exception)
    assert all(results[v] == v + 10 for v in range(7))
    assert _values(db) == [1, *range(10, 17)]


def test_groups_are_per_database_and_name(db: Database, tmp_path: Path) -> None:
    other = Database(f"sqlite:///{tmp_path / 'h.db'}")
    assert group_commit.group(db, "a") is group_commit.group(db, "a")
    assert group_commit.group(db, "a") is not group_commit.group(db, "b")
    assert group_commit.group(db, "a") is not group_commit.group(other, "a")
