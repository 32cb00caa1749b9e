"""``db.base.savepoint``: Core statements inside it are kept when the block ends and undone when
it raises, without ending the surrounding transaction; nested savepoints undo only their own
part. On SQLite always, on PostgreSQL when it is reachable (skips loudly otherwise)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from novalite.db.base import Database, savepoint

INSERT = text("INSERT INTO quotas (project_id, user_id, resource, hard_limit) VALUES (:p, '', :r, :n)")
ROWS = text("SELECT resource, hard_limit FROM quotas WHERE project_id = 'sp' ORDER BY resource")


def _insert(s: object, resource: str, n: int = 1) -> None:
    s.connection().execute(INSERT, {"p": "sp", "r": resource, "n": n})  # type: ignore[attr-defined]


def test_released_block_commits_with_the_transaction(db: Database) -> None:
    with db.session() as s:
        with savepoint(s):
            _insert(s, "cores")
        _insert(s, "ram")
    with db.reader() as s:
        assert s.execute(ROWS).all() == [("cores", 1), ("ram", 1)]


def test_raising_block_is_undone_and_the_transaction_goes_on(db: Database) -> None:
    with db.session() as s:
        _insert(s, "before")
        with pytest.raises(RuntimeError, match="claim lost"):
            with savepoint(s):
                _insert(s, "inside")
                raise RuntimeError("claim lost")
        _insert(s, "after")
    with db.reader() as s:
        assert [r[0] for r in s.execute(ROWS)] == ["after", "before"]


def test_database_error_inside_is_undone_and_the_transaction_goes_on(db: Database) -> None:
    """On PostgreSQL a failed statement aborts the transaction until the savepoint is rolled
    back to; the work after it must still commit."""
    with db.session() as s:
        _insert(s, "cores")
        with pytest.raises(Exception, match="(?i)unique|duplicate"):
            with savepoint(s):
                _insert(s, "ram")
                _insert(s, "cores")  # violates uq_quotas_project_user_resource
        _insert(s, "ram", 5)
    with db.reader() as s:
        assert s.execute(ROWS).all() == [("cores", 1), ("ram", 5)]


def test_nested_savepoints_undo_only_their_own_part(db: Database) -> None:
    with db.session() as s:
        with savepoint(s):
            _insert(s, "outer")
            with pytest.raises(KeyError):
                with savepoint(s):
                    _insert(s, "inner")
                    raise KeyError("x")
            with savepoint(s):
                _insert(s, "inner-kept")
    with db.reader() as s:
        assert [r[0] for r in s.execute(ROWS)] == ["inner-kept", "outer"]


def test_pending_orm_changes_are_flushed_before_the_savepoint(db: Database) -> None:
    """An ORM object added before the savepoint is written before it, so rolling the
    savepoint back keeps it."""
    from novalite.db.models.catalog import Quota

    with db.session() as s:
        s.add(Quota(project_id="sp", user_id="", resource="orm", hard_limit=7))
        with pytest.raises(RuntimeError):
            with savepoint(s):
                _insert(s, "core")
                raise RuntimeError
    with db.reader() as s:
        assert s.execute(ROWS).all() == [("orm", 7)]
