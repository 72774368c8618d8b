"""The hot statements on the DBAPI cursor (hotsql.py) store and return what
SQLAlchemy's own ``Connection.execute`` would, and fail with SQLAlchemy's errors,
on the database of this run (SQLite, or PostgreSQL with MAILGATE_TEST_DB)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from mailgate import db, hotsql
from mailgate.models import Company, Spool
from tests import dbs

SPOOL = Spool.__table__
INSERT = SPOOL.insert().returning(SPOOL.c.id)
BY_KEY = select(SPOOL).where(SPOOL.c.dedupe_key == bindparam("key"))
BY_KEYS = select(SPOOL.c.id).where(SPOOL.c.dedupe_key.in_(bindparam("keys", expanding=True)))
PICK = (update(SPOOL).where(SPOOL.c.id == bindparam("spool_id"), SPOOL.c.state == "pending")
        .values(state="processed", attempts=SPOOL.c.attempts + 1).returning(SPOOL.c.attempts))
WHEN = datetime(2026, 12, 6, 19, 30, 15, 123456, tzinfo=UTC)


@pytest.fixture
def engine(home):
    """An engine on the home's database, schema at head."""
    return db.make_engine(home.db_url)


def test_a_row_inserted_raw_reads_back_as_one_inserted_by_sqlalchemy(engine):
    """JSON lists, aware datetimes, NULLs and the columns left to their defaults
    (state, attempts) come out the same, through either path, read by either."""
    given = dict(door="smtp", mail_from=None, rcpt_tos=["hd@example.com", "x@example.com"],
                 size=5, received_at=WHEN)
    with engine.begin() as conn:
        raw_id = hotsql.run(conn, INSERT, {**given, "dedupe_key": "raw"}).scalar_one()
        sa_id = conn.execute(INSERT, {**given, "dedupe_key": "sa"}).scalar_one()
        raw_read = hotsql.run(conn, BY_KEY, {"key": "raw"})
        by_sa = dict(conn.execute(BY_KEY, {"key": "sa"}).one()._mapping)
    by_raw = raw_read.mapping(raw_read.one())
    assert by_raw["id"] == raw_id and by_sa["id"] == sa_id
    assert {**by_raw, "id": 0, "dedupe_key": ""} == {**by_sa, "id": 0, "dedupe_key": ""}
    assert by_raw["received_at"] == WHEN and by_raw["rcpt_tos"] == given["rcpt_tos"]
    assert (by_raw["state"], by_raw["attempts"], by_raw["mail_from"]) == ("pending", 0, None)


def test_every_column_type_of_a_company_reads_back_as_sqlalchemy_reads_it(engine):
    """Floats (PostgreSQL's numerics need the cursor's type code), booleans, JSON."""
    companies = Company.__table__
    by_name = select(*companies.columns).where(companies.c.name == bindparam("name"))
    with engine.begin() as conn:
        conn.execute(companies.insert(), dict(name="Acme", domains=["acme.it"], language="it",
                                              plan="gold", managers=["a@acme.it"],
                                              managers_copy=True, prepaid_hours=12.5,
                                              hours_low_threshold=None, active=False))
        raw = hotsql.run(conn, by_name, {"name": "Acme"})
        expected = dict(conn.execute(by_name, {"name": "Acme"}).one()._mapping)
    assert raw.mapping(raw.one()) == expected
    assert (expected["prepaid_hours"], expected["managers_copy"]) == (12.5, True)


def test_an_update_with_literals_and_returning_acts_once(engine):
    """The statement's own literals ('pending', +1) are sent with the caller's values;
    the second run finds the row no longer pending."""
    with engine.begin() as conn:
        spool_id = hotsql.run(conn, INSERT, dict(dedupe_key="k", door="smtp", rcpt_tos=[],
                                                 size=1, received_at=WHEN)).scalar_one()
        first = hotsql.run(conn, PICK, {"spool_id": spool_id}).scalars()
        second = hotsql.run(conn, PICK, {"spool_id": spool_id}).first()
    assert first == [1] and second is None


def test_a_unique_key_taken_is_sqlalchemys_integrity_error(engine):
    """The pipeline runs a message again after a concurrent insert by catching
    IntegrityError: the raw path must raise that, not the driver's own class."""
    row = dict(dedupe_key="same", door="smtp", rcpt_tos=[], size=1, received_at=WHEN)
    with engine.begin() as conn:
        hotsql.run(conn, INSERT, row)
        with pytest.raises(IntegrityError):
            hotsql.run(conn, INSERT, row)


def test_a_database_that_cannot_be_used_is_sqlalchemys_operational_error(home):
    """An outage gives OperationalError, on which the doors answer 451 and the
    workers back off; on PostgreSQL the lost connection is not reused."""
    engine = db.make_engine(home.db_url, busy_timeout_ms=100)
    row = dict(dedupe_key="k", door="smtp", rcpt_tos=[], size=1, received_at=WHEN)
    # The connection is open and in its transaction when the database goes.
    with pytest.raises(OperationalError), engine.begin() as conn, dbs.unavailable(home.db_url):
        hotsql.run(conn, INSERT, row)
    with engine.begin() as conn:  # the database is back: so is the engine
        assert hotsql.run(conn, INSERT, row).scalar_one() > 0


def test_a_statement_with_expanding_parameters_is_refused(engine):
    """An IN list is rendered per call by SQLAlchemy: not a statement to compile once."""
    with engine.begin() as conn, pytest.raises(ValueError, match="expanding"):
        hotsql.run(conn, BY_KEYS, {"keys": ["a", "b"]})


def test_first_gives_the_sessions_object_and_its_changes_are_written(engine):
    """``db.first`` makes the object from the row itself, as the ORM makes those it
    loads: the same object for the same row twice in a session, as with the ORM's
    identity map, and a change to it written at the commit."""
    companies = Company.__table__
    by_name = select(Company).where(Company.name == bindparam("name"))
    with engine.begin() as conn:
        conn.execute(companies.insert(), dict(name="Acme", domains=["acme.it"], language="it",
                                              plan="gold", managers=[], managers_copy=False,
                                              prepaid_hours=3.0, active=True))
    with db.session_scope(engine) as session:
        acme = db.first(session, by_name, name="Acme")
        assert (acme.language, acme.domains, acme.prepaid_hours) == ("it", ["acme.it"], 3.0)
        assert db.first(session, by_name, name="Acme") is acme
        assert session.get(Company, acme.id) is acme
        assert db.first(session, by_name, name="Nobody") is None
        acme.prepaid_hours = 1.5
    with db.session_scope(engine) as session:
        assert db.first(session, by_name, name="Acme").prepaid_hours == 1.5
