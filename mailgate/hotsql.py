"""The pipeline's hot statements, compiled once and run on the DBAPI cursor.

``Connection.execute`` spends ~20 µs of Python per statement before and after the
driver's own ~5 µs (execution context, parameter coercion, cache-key lookup, result
metadata); with a dozen statements a mail that was a sixth of the pipeline's CPU
(bench/RESULTS.md).  Here a statement built once at import with ``bindparam``
placeholders is compiled once per dialect and set of parameter names, with the
dialect's own type processors, defaults and error classes taken from SQLAlchemy, so
that what reaches the database is what ``Connection.execute`` would have sent.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement


@dataclass(frozen=True)
class _Param:
    """Where one placeholder's value comes from: the caller's ``key``, else ``fixed``
    (a literal of the statement) or ``default()`` (a column default of an INSERT)."""

    name: str
    key: str
    fixed: Any
    default: Any
    process: Any

    def value(self, params: dict) -> Any:
        """The value to send for this placeholder, converted for the driver."""
        if self.key in params:
            value = params[self.key]
        elif self.default is not None:
            value = self.default()
        else:
            value = self.fixed
        return self.process(value) if self.process is not None else value


@dataclass(frozen=True)
class _Plan:
    """A statement compiled for one dialect and one set of parameter names."""

    sql: str
    positional: bool
    params: tuple[_Param, ...]
    keys: tuple[str, ...]
    types: tuple  # the dialect's type of each column returned (none: no rows)
    results: tuple | None = None  # a result processor (or None) per column, once known

    def arguments(self, params: dict):
        """The driver's parameters: a tuple in placeholder order, or a dict."""
        if self.positional:
            return tuple(p.value(params) for p in self.params)
        return {p.name: p.value(params) for p in self.params}


class Rows:
    """What a statement returned, with the few accessors the pipeline uses."""

    def __init__(self, keys: tuple[str, ...], rows: list[tuple]):
        self.keys = keys
        self.rows = rows

    def first(self) -> tuple | None:
        """The first row, or None."""
        return self.rows[0] if self.rows else None

    def one(self) -> tuple:
        """The only row; raises when there is not exactly one."""
        if len(self.rows) != 1:
            raise LookupError(f"expected one row, got {len(self.rows)}")
        return self.rows[0]

    def scalar(self) -> Any:
        """The first column of the first row, or None."""
        return self.rows[0][0] if self.rows else None

    def scalar_one(self) -> Any:
        """The first column of the only row."""
        return self.one()[0]

    def scalars(self) -> list:
        """The first column of every row."""
        return [row[0] for row in self.rows]

    def mapping(self, row: tuple) -> dict[str, Any]:
        """``row`` as a dict of column name to value."""
        return dict(zip(self.keys, row, strict=True))


_PLANS: dict[tuple, _Plan] = {}


def run(conn: Connection, statement: ClauseElement, params: dict) -> Rows:
    """Execute ``statement`` with ``params`` on ``conn``'s DBAPI connection, in the
    transaction ``conn`` has begun.  Driver errors come out as SQLAlchemy's (an
    ``OperationalError`` for a locked or lost database, an ``IntegrityError`` for a
    unique key), and a lost connection is invalidated, as ``Connection.execute`` does."""
    dialect = conn.dialect
    key = (statement, dialect.name, dialect.driver, frozenset(params))
    plan = _PLANS.get(key) or _PLANS.setdefault(key, _plan(statement, dialect, params))
    dbapi_conn = conn.connection.dbapi_connection
    arguments = plan.arguments(params)
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute(plan.sql, arguments)
        rows = cursor.fetchall() if plan.types else []
        if plan.results is None:
            plan = _PLANS[key] = _with_results(plan, dialect, cursor.description)
    except dialect.loaded_dbapi.Error as exc:
        lost = dialect.is_disconnect(exc, dbapi_conn, cursor)
        if lost:
            conn.invalidate(exc)
        raise DBAPIError.instance(plan.sql, arguments, exc, dialect.loaded_dbapi.Error,
                                  connection_invalidated=lost, dialect=dialect) from exc
    finally:
        cursor.close()
    if any(plan.results):
        rows = [tuple(p(v) if p else v for p, v in zip(plan.results, row, strict=True))
                for row in rows]
    return Rows(plan.keys, rows)


def _plan(statement: ClauseElement, dialect: Dialect, params: dict) -> _Plan:
    """Compile ``statement`` as SQLAlchemy would for these parameter names."""
    compiled = statement.compile(dialect=dialect, column_keys=list(params))
    if compiled.post_compile_params or compiled.literal_execute_params:
        raise ValueError(f"not a hot statement (expanding parameters): {compiled.string}")
    defaults = {col.key: _default(col) for col in compiled.insert_prefetch}
    if compiled.update_prefetch:
        raise ValueError(f"not a hot statement (onupdate defaults): {compiled.string}")
    by_name = {name: bind for bind, name in compiled.bind_names.items()}
    names = compiled.positiontup if compiled.positional else list(by_name)
    placeholders = tuple(
        _Param(name, by_name[name].key, by_name[name].effective_value,
               defaults.get(name) if by_name[name].key not in params else None,
               by_name[name].type.dialect_impl(dialect).bind_processor(dialect))
        for name in names)
    # RETURNING includes what the dialect adds of its own (PostgreSQL: the new id).
    columns = list(compiled.returning or []) if statement.is_dml else list(
        statement.selected_columns)
    return _Plan(compiled.string, compiled.positional, placeholders,
                 tuple(col.key for col in columns),
                 tuple(col.type.dialect_impl(dialect) for col in columns))


def _with_results(plan: _Plan, dialect: Dialect, description) -> _Plan:
    """``plan`` with its result processors, which some drivers' types choose by the
    type code the cursor reports (psycopg's numerics), as SQLAlchemy does."""
    codes = [column[1] for column in description or []] or [None] * len(plan.types)
    return replace(plan, results=tuple(kind.result_processor(dialect, code)
                                       for kind, code in zip(plan.types, codes, strict=True)))


def _default(column):
    """A function giving the Python-side default of ``column`` (SQLModel sets one for
    every field with a default)."""
    default = column.default
    if default.is_scalar:
        return lambda: default.arg
    if default.is_callable:
        return lambda: default.arg(None)  # SQLAlchemy wraps it to take a context
    raise ValueError(f"not a hot statement: {column} has a default computed in SQL")
