"""Engine, sessions and schema migrations (Alembic, shipped inside the package)."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import class_mapper, make_transient_to_detached
from sqlmodel import Session, create_engine

from mailgate import hotsql
from mailgate.models import loaded

MIGRATIONS = Path(__file__).parent / "migrations"

# SQLite copies the WAL back into the database (a checkpoint, which writes and fsyncs
# the database file) in the commit that takes the WAL past this many pages
# (``wal_autocheckpoint``; 1000 is SQLite's default, set here so that it is known).
CHECKPOINT_PAGES = 1000
# The listener's commits checkpoint only past this: the pipeline's and the outbox's
# commits checkpoint long before (see ``checkpoint_later``).
INTAKE_CHECKPOINT_PAGES = 10_000

# Errors that mean "the database cannot take this right now": the doors answer
# tempfail (451, exit 75) for these, never a permanent refusal.
TRANSIENT_ERRORS = (DBAPIError, OSError, TimeoutError)


def make_engine(url: str, busy_timeout_ms: int = 5000) -> Engine:
    """An engine for ``url``; SQLite gets WAL, full sync and a busy timeout."""
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": busy_timeout_ms / 1000})
        _tune_sqlite(engine, busy_timeout_ms)
        return engine
    return create_engine(url, pool_pre_ping=True)


def insert_for(bind: Engine | Connection):
    """The ``insert`` of the bind's dialect, which has ``on_conflict_do_nothing``
    (PostgreSQL and SQLite ≥ 3.24 both have ``ON CONFLICT``)."""
    return pg_insert if bind.dialect.name == "postgresql" else sqlite_insert


def upserts(build) -> dict:
    """``build(insert)`` for the ``insert`` of each dialect, by dialect name: the
    statements with ``ON CONFLICT`` are built once at import, one per dialect."""
    return {"sqlite": build(sqlite_insert), "postgresql": build(pg_insert)}


def claim_rows(conn: Connection, model, row_ids: list[int], *conditions, **values) -> list:
    """Move the rows ``row_ids`` of ``model`` that meet ``conditions`` to ``values`` in
    ``conn``'s transaction; returns the rows moved, as they are after the move, in id
    order (not those that do not meet them, nor those another instance holds), in one
    statement however many there are.

    On PostgreSQL the rows are locked first with ``FOR UPDATE SKIP LOCKED``, so that
    several instances pass over a row one of them is working on instead of queueing
    behind its lock.  SQLite has one writer at a time and no such clause; there a read
    before the write would also turn a concurrent commit into an immediate
    SQLITE_BUSY, so the claim is the UPDATE alone.  The conditional UPDATE makes the
    claim exact on both: only one transaction ever moves a row.
    """
    where = (model.id.in_(row_ids), *conditions)
    if conn.dialect.name == "postgresql":
        locked = conn.execute(select(model.id).where(*where).with_for_update(skip_locked=True))
        where = (model.id.in_(locked.scalars().all()), *conditions)
    moved = conn.execute(update(model).where(*where).values(**values)
                         .returning(*model.__table__.columns))
    return sorted(moved.all(), key=lambda row: row.id)


def execute(session: Session, statement, **params) -> hotsql.Rows:
    """Run ``statement``, built once at import with ``bindparam`` placeholders, on the
    session's connection, in its transaction.

    The pipeline's hot path goes through here.  An ORM ``session.exec`` of a statement
    built on every call costs about 300 µs on SQLite, ``Connection.execute`` of one
    built once about 25, this about 6: the statement is compiled once and runs on the
    driver's cursor (hotsql.py).  The session is flushed first, as its autoflush
    would, so that the statement sees what the ORM holds pending (a contact that wrote
    again, say).
    """
    session.flush()
    return hotsql.run(session.connection(), statement, params)


def first(session: Session, statement, **params):
    """The first ORM object that ``statement``, a select of one entity built once with
    ``bindparam`` placeholders, finds, in the session as if the ORM had loaded it (its
    changes are flushed with the session's); None when there is none.

    The row is read as ``execute`` reads one and becomes an object as the ORM makes
    those it loads (``models.loaded``): the ORM's own select of the statement cost
    several times that (bench/RESULTS.md, tenth round).  An object the
    session holds already is the one returned, as with the ORM's identity map.
    """
    rows = execute(session, statement, **params)
    row = rows.first()
    if row is None:
        return None
    values = rows.mapping(row)
    mapper = _MAPPERS.get(statement) or _MAPPERS.setdefault(
        statement, class_mapper(statement.column_descriptions[0]["entity"]))
    key = mapper.identity_key_from_primary_key([values[c.key] for c in mapper.primary_key])
    held = session.identity_map.get(key)
    if held is not None:
        return held
    obj = loaded(mapper.class_, values)
    make_transient_to_detached(obj)
    session.add(obj)
    return obj


_MAPPERS: dict = {}  # the mapper of the entity each statement given to ``first`` selects


def _tune_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    """Durable SQLite: WAL plus synchronous=FULL, so a 250 survives power loss.

    pysqlite's own transaction handling is switched off and BEGIN is emitted by
    SQLAlchemy, as its documentation recommends, so that transactions are real.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cur.execute(f"PRAGMA wal_autocheckpoint={CHECKPOINT_PAGES}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        conn.exec_driver_sql("BEGIN")


@contextmanager
def checkpoint_later(conn: Connection):
    """Leave the WAL's checkpoint to the other writers while ``conn``'s transactions
    in the block commit (SQLite; a no-op elsewhere).

    The commit that crosses the threshold runs the checkpoint before it returns: in
    the listener's group commit, every ``250`` of the batch and of the sessions queued
    behind it waited for it (up to 85 ms under the e2e load, bench/RESULTS.md).  The
    threshold is raised, not switched off, so that a daemon that only takes mail in
    (``serve --intake-only``, an idle pipeline) still checkpoints now and then.
    """
    if conn.dialect.name != "sqlite":
        yield
        return
    # On the driver's connection: through SQLAlchemy the PRAGMA would begin a
    # transaction of its own.
    driver = conn.connection.dbapi_connection
    driver.execute(f"PRAGMA wal_autocheckpoint={INTAKE_CHECKPOINT_PAGES}")
    try:
        yield
    finally:
        # Back to the default for whoever uses the pooled connection next.
        driver.execute(f"PRAGMA wal_autocheckpoint={CHECKPOINT_PAGES}")


@contextmanager
def session_scope(engine: Engine):
    """A session whose transaction commits on success and rolls back on error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def _alembic_config(engine: Engine) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (``mailgate db upgrade``)."""
    command.upgrade(_alembic_config(engine), revision)


def schema_state(engine: Engine) -> tuple[str | None, str]:
    """The database's current revision and the package's head revision."""
    head = ScriptDirectory.from_config(_alembic_config(engine)).get_current_head()
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    return current, head
