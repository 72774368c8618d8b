"""PostgreSQL: the schema migrates, and three ``mailgate serve`` instances sharing one
database take a flood of mail spread over them without a duplicate or a gap.

A throw-away cluster is started on loopback from ``tests/servers/postgres-up.sh``
(``$MAILGATE_TEST_DATABASE_URL`` points at an existing one instead).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy

from tests.helpers import PROJECT, flood, free_port, make_home, serving

pytestmark = pytest.mark.e2e

SERVERS = PROJECT / "tests" / "servers"
FLOOD = 3000


@pytest.fixture(scope="module")
def pg_server():
    """The SQLAlchemy URL of a PostgreSQL server (without a database name)."""
    url = os.environ.get("MAILGATE_TEST_DATABASE_URL")
    if url:
        yield url.rsplit("/", 1)[0]
        return
    if os.geteuid() != 0 or not glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"):
        pytest.skip("no MAILGATE_TEST_DATABASE_URL, and no local PostgreSQL to start as root")
    folder = tempfile.mkdtemp(prefix="mg-pg.", dir="/tmp")
    os.chmod(folder, 0o755)
    url = subprocess.run([SERVERS / "postgres-up.sh", folder, str(free_port())], check=True,
                         capture_output=True, text=True, timeout=120).stdout.strip()
    yield url.rsplit("/", 1)[0]
    subprocess.run([SERVERS / "postgres-down.sh", folder, "--purge"], check=True, timeout=60)


@pytest.fixture
def pg_url(pg_server):
    """A fresh database on the server for one test."""
    name = f"mg_{uuid.uuid4().hex[:10]}"
    admin = sqlalchemy.create_engine(f"{pg_server}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    admin.dispose()
    return f"{pg_server}/{name}"


def instance(root: Path, url: str):
    """A mailgate home on the shared database, with its own port and Maildir."""
    home = make_home(root, upgrade=False)
    home.config.write_text(home.config.read_text().replace(
        'url = "sqlite:///var/mailgate.db"', f'url = "{url}"'))
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
