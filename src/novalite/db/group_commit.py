"""Group commit: units of work that arrive together share one transaction.

``run(db, work)`` queues ``work(session)`` (``run_all`` several at once); the first caller
that finds no writer busy becomes the writer and runs every queued unit in one transaction, the
others wait for it (no thread of its own, nothing to start or stop). Each caller gets its own result or
exception. When the shared transaction fails, it is rolled back and every unit of it runs
again in a transaction of its own, so one unit's error never costs another unit its work (a
unit that alone is a deadlock victim on PostgreSQL runs again: ``db.base.run_retrying``).
Units must therefore leave no trace outside the transaction (database statements only).

The transaction is ``db.session()`` unless ``begin`` names another one (the create-server
pipeline passes ``lambda: db.serialized(key)`` so a group holds the project's quota lock).

With ``batch``, a group of two or more runs as ``batch(session, items)`` (each caller's ``item``)
instead of unit by unit: one set of statements for the whole group. It returns one outcome per
item, an exception instance for an item that failed on its own (nothing of it written), anything
else its result. When ``batch`` raises, the group runs unit by unit after all, as above.
Users: the compute agent's writes (accept, finish, terminate) and POST /servers' store step.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy.orm import Session

from novalite.db.base import Database, run_retrying

Batch = Callable[[Session, list[Any]], list[Any]]


class _Unit:
    __slots__ = ("work", "item", "batch", "done", "result", "error")

    def __init__(self, work: Callable[[Session], Any], item: Any = None, batch: Batch | None = None):
        self.work = work
        self.item = item
        self.batch = batch
        self.done = False
        self.result: Any = None
        self.error: BaseException | None = None


class GroupCommit:
    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._writer = threading.Lock()
        self._pending: list[_Unit] = []

    def run(
        self,
        db: Database,
        work: Callable[[Session], Any],
        *,
        begin: Callable[[], AbstractContextManager[Session]] | None = None,
        item: Any = None,
        batch: Batch | None = None,
    ) -> Any:
        (unit,) = self._join(db, [_Unit(work, item, batch)], begin)
        if unit.error is not None:
            raise unit.error
        return unit.result

    def run_all(
        self,
        db: Database,
        units: Sequence[tuple[Callable[[Session], Any], Any]],
        *,
        begin: Callable[[], AbstractContextManager[Session]] | None = None,
        batch: Batch | None = None,
    ) -> list[Any]:
        """``run`` for several units of one caller (``(work, item)`` pairs): they join the group
        together, as if they had arrived at the same moment, and share its transaction (with any
        other caller's units queued meanwhile). Returns each one's outcome in order: its result,
        or the exception instance it raised (nothing of it written)."""
        done = self._join(db, [_Unit(work, item, batch) for work, item in units], begin)
        return [u.error if u.error is not None else u.result for u in done]

    def _join(
        self, db: Database, mine: list[_Unit], begin: Callable[[], AbstractContextManager[Session]] | None
    ) -> list[_Unit]:
        """Queue ``mine``; unless another writer took them meanwhile, write everything queued."""
        with self._mutex:
            self._pending.extend(mine)
        with self._writer:
            if not mine[0].done:  # queued in one step, so another writer takes all of them or none
                with self._mutex:
                    queued, self._pending = self._pending, []
                _write(begin or db.session, queued)
        return mine


def _write(begin: Callable[[], AbstractContextManager[Session]], batch: list[_Unit]) -> None:
    settled: set[int] = set()
    try:
        run_batch = batch[0].batch
        if len(batch) > 1 and run_batch is not None and all(u.batch is run_batch for u in batch):
            try:
                with begin() as s:
                    outcomes = run_batch(s, [u.item for u in batch])
            except Exception:  # the group as a whole failed: unit by unit below
                pass
            else:
                for i, (u, outcome) in enumerate(zip(batch, outcomes, strict=True)):
                    if isinstance(outcome, BaseException):
                        u.error = outcome
                    else:
                        u.result = outcome
                    settled.add(i)
                return
        if len(batch) > 1:
            try:
                with begin() as s:
                    results = [u.work(s) for u in batch]
            except Exception:  # someone's unit failed: each one again on its own
                pass
            else:
                for i, (u, r) in enumerate(zip(batch, results, strict=True)):
                    u.result = r
                    settled.add(i)
                return
        for i, u in enumerate(batch):
            try:  # alone, a deadlock victim runs again (PostgreSQL); other errors are the unit's own
                u.result = run_retrying(begin, u.work)
            except Exception as exc:
                u.error = exc
            settled.add(i)
    finally:
        for i, u in enumerate(batch):
            if i not in settled:  # the writer was interrupted (BaseException) before this unit committed
                u.error = RuntimeError("the transaction of this unit of work was interrupted")
            u.done = True


_GROUPS: weakref.WeakKeyDictionary[Database, dict[str, GroupCommit]] = weakref.WeakKeyDictionary()
_GROUPS_LOCK = threading.Lock()


def group(db: Database, name: str) -> GroupCommit:
    """The group commit ``name`` of this database (created on first use)."""
    with _GROUPS_LOCK:
        groups = _GROUPS.get(db)
        if groups is None:
            groups = _GROUPS[db] = {}
        found = groups.get(name)
        if found is None:
            found = groups[name] = GroupCommit()
        return found
