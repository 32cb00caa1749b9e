"""Core statements compiled once per dialect and run on the DBAPI cursor of a session's
transaction, for the few statements that run while the SQLite write lock is held by the hot
paths (claims, the create's store, the compute agent's state changes).

``Connection.execute`` spends far more Python on every statement (cache-key generation,
parameter processing, execution context, result wrapping) than SQLite itself takes
(bench/README.md, "Costs behind the code's choices"): in
a write transaction that time is time every other writer waits. A ``Precompiled`` statement
keeps what SQLAlchemy would work out again each time -- the SQL text, the order of the
parameters, their bind processors (``UTCDateTime`` and booleans on SQLite), the literal values
compiled into the statement and the Python-side ``default``/``onupdate`` columns -- and only
fills in the values.

What it does not do: result processing (rows come as the driver returns them: use it for
rowcounts, ids and plain columns), ``IN`` with an expanding parameter, ORM statements, and
events on ``Connection.execute`` (novalite listens to none of these). Statements run in the
session's transaction like any other.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement, Insert


@dataclass(frozen=True)
class _Form:
    sql: str
    names: tuple[str, ...] | None  # parameter order for positional paramstyles (SQLite's qmark)
    fixed: dict[str, Any]  # values compiled into the statement (literals become parameters)
    defaults: tuple[tuple[str, Callable[[], Any]], ...]  # Python-side default/onupdate columns
    processors: tuple[tuple[str, Callable[[Any], Any]], ...]

    def parameters(self, given: Mapping[str, Any]) -> Any:
        values = dict(self.fixed)
        values.update(given)
        for name, make in self.defaults:
            if name not in given:
                values[name] = make()
        for name, process in self.processors:
            if name in values:
                values[name] = process(values[name])
        if self.names is None:
            return values
        return tuple(values[name] for name in self.names)


def _python_default(column: Any, *, update: bool) -> Callable[[], Any]:
    default = column.onupdate if update else column.default
    if default is None or not (default.is_callable or default.is_scalar):
        raise ValueError(f"{column} has a default Precompiled cannot compute")
    if default.is_scalar:
        value = default.arg
        return lambda: value
    fn = default.arg  # SQLAlchemy wraps it to take the execution context; ours ignore it
    return lambda: fn(None)


def _build(statement: ClauseElement, dialect: Dialect, keys: Sequence[str] | None) -> _Form:
    compiled = statement.compile(dialect=dialect, column_keys=list(keys) if keys is not None else None)
    assert isinstance(compiled, SQLCompiler)
    if "POSTCOMPILE" in compiled.string:
        raise ValueError("Precompiled statements cannot have expanding (IN) parameters")
    fixed = {k: v for k, v in compiled.construct_params(_check=False).items() if v is not None}
    defaults = tuple(
        [(c.key, _python_default(c, update=False)) for c in compiled.insert_prefetch]
        + [(c.key, _python_default(c, update=True)) for c in compiled.update_prefetch]
    )
    processors = tuple(
        (name, cast("Callable[[Any], Any]", fn))
        for name, fn in compiled._bind_processors.items()
        if callable(fn)
    )
    names = tuple(compiled.positiontup) if compiled.positional and compiled.positiontup is not None else None
    return _Form(compiled.string, names, fixed, defaults, processors)


class Precompiled:
    """``Precompiled(update(t).where(...).values(...))`` at module level, then
    ``stmt.run(session, {...})`` (rowcount), ``.all``/``.first`` (rows) or ``.run_many``.

    An INSERT is compiled, as ``Connection.execute`` compiles it, for the keys of its parameters
    (one form per set of keys; every row of ``run_many`` has the first row's keys): the columns
    left out get their Python-side defaults, or the database's."""

    def __init__(self, statement: ClauseElement):
        self.statement = statement
        self._by_keys = isinstance(statement, Insert)
        self._forms: dict[tuple[str, tuple[str, ...]], _Form] = {}

    def _form(self, dialect: Dialect, params: Mapping[str, Any] | None = None) -> _Form:
        keys = tuple(params or ()) if self._by_keys else ()
        form = self._forms.get((dialect.name, keys))
        if form is None:
            form = self._forms[(dialect.name, keys)] = _build(
                self.statement, dialect, keys if self._by_keys else None
            )
        return form

    def _execute(
        self, s: Session | Connection, params: Any, *, many: bool = False, fetch: bool = False
    ) -> tuple[int, list[tuple[Any, ...]]]:
        """Run on the DBAPI cursor; (rowcount, rows read to the end when ``fetch``). A driver error
        is raised as the SQLAlchemy exception ``Connection.execute`` would raise (``IntegrityError``,
        ``OperationalError``, ...), chained to the driver's."""
        conn = s.connection() if isinstance(s, Session) else s
        dialect = conn.dialect
        driver = conn.connection.driver_connection
        assert driver is not None
        form = self._form(dialect, params[0] if many else params)
        values = [form.parameters(p) for p in params] if many else form.parameters(params or {})
        cursor = driver.cursor()
        try:
            if many:
                cursor.executemany(form.sql, values)
            else:
                cursor.execute(form.sql, values)
            rows = [tuple(row) for row in cursor.fetchall()] if fetch else []
            return int(cursor.rowcount), rows
        except dialect.loaded_dbapi.Error as exc:
            raise DBAPIError.instance(
                form.sql, values, exc, dialect.loaded_dbapi.Error, dialect=dialect, ismulti=many
            ) from exc
        finally:
            cursor.close()

    def run(self, s: Session | Connection, params: Mapping[str, Any] | None = None) -> int:
        """Execute; the number of rows it changed."""
        return self._execute(s, params)[0]

    def all(self, s: Session | Connection, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Execute; every row it returned (a SELECT, or a statement with RETURNING), read to the
        end so the statement is finished before the transaction commits."""
        return self._execute(s, params, fetch=True)[1]

    def first(
        self, s: Session | Connection, params: Mapping[str, Any] | None = None
    ) -> tuple[Any, ...] | None:
        rows = self.all(s, params)
        return rows[0] if rows else None

    def run_many(self, s: Session | Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Execute once per parameter set (``executemany``)."""
        if rows:
            self._execute(s, rows, many=True)
