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


def _queue_behind_a_writer(db: Database, gc: group_commit.GroupCommit, run: object) -> dict[int, object]:
    """Hold the write lock, let unit 0 become the writer and units 1-3 queue behind it, then let
    go; each unit's result (or exception) by its number."""
    import time

    calls: list[tuple[int, object]] = []

    def worker(v: int) -> None:
        try:
            calls.append((v, run(v)))  # type: ignore[operator]
        except Exception as exc:
            calls.append((v, exc))

    with db.session():
        threads = [threading.Thread(target=worker, args=(0,))]
        threads[0].start()
        while gc._writer.acquire(blocking=False):
            gc._writer.release()
            time.sleep(0.005)
        for v in (1, 2, 3):
            threads.append(threading.Thread(target=worker, args=(v,)))
            threads[-1].start()
            while len(gc._pending) < v:
                time.sleep(0.005)
    for th in threads:
        th.join(10)
    return dict(calls)


def test_a_batch_runs_a_queued_group_at_once_and_fails_items_on_their_own(db: Database) -> None:
    gc = group_commit.GroupCommit()
    seen: list[list[int]] = []

    def batch(s: Session, items: list[int]) -> list[object]:
        seen.append(list(items))
        ok = [v for v in items if v != 2]
        s.execute(text("INSERT INTO t (v) VALUES (:v)"), [{"v": v + 100} for v in ok])
        return [ValueError("item 2 refused") if v == 2 else v + 100 for v in items]

    outcome = _queue_behind_a_writer(db, gc, lambda v: gc.run(db, _insert(v + 100), item=v, batch=batch))
    assert seen == [[1, 2, 3]]  # the writer's own unit went alone; the three queued ones together
    assert outcome[0] == 100 and outcome[1] == 101 and outcome[3] == 103
    assert isinstance(outcome[2], ValueError)
    assert _values(db) == [100, 101, 103]


def test_a_failing_batch_falls_back_to_unit_by_unit(db: Database) -> None:
    gc = group_commit.GroupCommit()

    def batch(s: Session, items: list[int]) -> list[object]:
        s.execute(text("INSERT INTO t (v) VALUES (999)"))  # rolled back with the failed batch
        raise RuntimeError("the batch cannot run")

    outcome = _queue_behind_a_writer(db, gc, lambda v: gc.run(db, _insert(v + 200), item=v, batch=batch))
    assert outcome == {0: 200, 1: 201, 2: 202, 3: 203}
    assert _values(db) == [200, 201, 202, 203]


class _Deadlock(Exception):
    """What psycopg raises for a deadlock victim: an error carrying SQLSTATE 40P01."""

    sqlstate = "40P01"


def test_a_unit_rolled_back_as_a_deadlock_victim_runs_again(db: Database) -> None:
    """Alone, a unit the database rolled back for a deadlock (PostgreSQL) runs again in a new
    transaction; its first run leaves nothing behind. Any other error is the unit's own."""
    from sqlalchemy.exc import OperationalError

    runs: list[int] = []

    def victim_once(s: Session) -> int:
        s.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": 10 + len(runs)})
        runs.append(1)
        if len(runs) == 1:
            raise OperationalError("UPDATE inventories ...", {}, _Deadlock("deadlock detected"))
        return len(runs)

    assert group_commit.group(db, "retry").run(db, victim_once) == 2
    assert _values(db) == [11]  # the first run's row was rolled back with it

    with pytest.raises(OperationalError):
        group_commit.group(db, "retry").run(
            db, lambda s: (runs.append(1), s.execute(text("SELECT * FROM nope")))
        )
    assert len(runs) == 3  # "no such table" is not retried
