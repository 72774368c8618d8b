"""PostgreSQL: the schema migrates, and three ``mailgate serve`` instances sharing one
database take a flood of mail spread over them without a duplicate or a gap.

The server is the one of tests/dbs.py: a throw-away cluster on loopback, or
``$MAILGATE_TEST_DATABASE_URL``; these tests run on it whichever database the rest of
the suite uses.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
import sqlalchemy

from tests import dbs
from tests.helpers import Home, flood, make_home, serving

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(
    dbs.POSTGRESQL, reason="on PostgreSQL in the first (SQLite) pass already")]

FLOOD = 3000


@pytest.fixture(scope="module")
def pg_server():
    """The SQLAlchemy URL of a PostgreSQL server (without a database name)."""
    if why := dbs.postgres_unavailable():
        pytest.skip(why)
    return dbs.postgres_server()


@pytest.fixture
def pg_url(pg_server):
    """A fresh database on the server for one test."""
    return dbs.new_postgres_database()


def instance(root: Path, url: str) -> Home:
    """A mailgate home on the shared database, with its own port and Maildir."""
    home = make_home(root, upgrade=False)
    home.use_database(url)
    return home


def test_three_instances_share_one_database_without_duplicates_or_gaps(pg_url, tmp_path):
    homes = [instance(tmp_path / f"i{n}", pg_url) for n in range(3)]
    homes[0].cli("db", "upgrade")
    engine = sqlalchemy.create_engine(pg_url)
    with serving(homes[0]), serving(homes[1]), serving(homes[2]):
        acked = flood(homes, FLOOD)
        deadline = time.monotonic() + 600
        with engine.connect() as conn:
            while conn.execute(sqlalchemy.text(
                    "SELECT count(*) FROM spool WHERE state = 'pending' "
                    "UNION ALL SELECT count(*) FROM outbox WHERE state = 'queued'")).all() != [
                    (0,), (0,)]:
                assert time.monotonic() < deadline, "not settled"
                time.sleep(0.5)
                conn.commit()
    assert len(acked) == FLOOD
    with engine.connect() as conn:
        rows = conn.execute(sqlalchemy.text(
            "SELECT message_id, state, ticket_number, attempts FROM spool")).all()
        numbers = [n for (n,) in conn.execute(sqlalchemy.text("SELECT number FROM ticket"))]
        replies = conn.execute(sqlalchemy.text(
            "SELECT ticket_number, count(*) FROM outbox WHERE template = 'auto_reply' "
            "GROUP BY ticket_number")).all()
    assert {r.message_id for r in rows} == acked
    assert all(r.state == "processed" and r.attempts == 1 for r in rows)
    assert sorted(numbers) == list(range(10000, 10000 + FLOOD))  # unique, no gap
    assert sorted(r.ticket_number for r in rows) == sorted(numbers)
    assert len(replies) == FLOOD and {count for _, count in replies} == {1}
    # Each outbox row was sent once: every instance writes the rows it sent to its own
    # Maildir, and together they hold each auto reply and staff mail exactly once.
    files = [p.name for h in homes for p in (h.root / "var" / "outbox" / "new").iterdir()]
    assert len(files) == len(set(files)) == 2 * FLOOD
    engine.dispose()
    shutil.rmtree(tmp_path, ignore_errors=True)
