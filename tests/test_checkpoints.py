"""SQLite copies its WAL back into the database in a checkpoint, run by the commit that
takes the WAL past a threshold.  The listener's group commit leaves that to the
pipeline's and the outbox's commits (``db.checkpoint_later``), so that no ``250``
waits for it; on its own (``serve --intake-only``) it still checkpoints, later."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mailgate import db, spool
from mailgate.spool import Incoming
from tests import dbs
from tests.helpers import make_home

pytestmark = pytest.mark.skipif(dbs.POSTGRESQL, reason="SQLite's write-ahead log only")

MB = 1 << 20
NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def incoming(n: int, size: int = MB) -> Incoming:
    raw = f"Message-ID: <big{n}@acme.it>\r\nFrom: a@acme.it\r\n\r\n".encode() + b"x" * size
    return Incoming(raw, "smtp", "a@acme.it", ["hd@example.com"], NOW)


def sizes(home) -> tuple[int, int]:
    """The database file's and its WAL's sizes in bytes (no WAL yet: 0)."""
    wal = home.db_path.with_name(home.db_path.name + "-wal")
    return home.db_path.stat().st_size, wal.stat().st_size if wal.exists() else 0


def test_the_listeners_commits_leave_the_checkpoint_to_the_next_pipeline_commit(tmp_path):
    home = make_home(tmp_path)
    engine = db.make_engine(home.db_url)
    before, _ = sizes(home)
    for n in range(6):  # 6 MB: the WAL is past CHECKPOINT_PAGES (4 MB) after the 4th
        spool.intake_many(engine, [incoming(n)])
    database, wal = sizes(home)
    assert database < before + MB, "the listener's commit copied the WAL back"
    assert wal > 6 * MB
    with engine.begin() as conn:  # any other writer's commit, as the pipeline's
        conn.exec_driver_sql("UPDATE spool SET notes = 'seen' WHERE id = 1")
    assert sizes(home)[0] > before + 6 * MB
    with engine.connect() as conn:  # the pooled connection is back to the default
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 1000
    assert home.query("SELECT count(*) FROM spool") == [(6,)]


def test_intake_alone_still_checkpoints_past_its_own_threshold(tmp_path, monkeypatch):
    monkeypatch.setattr(db, "INTAKE_CHECKPOINT_PAGES", 2048)  # 8 MB, to keep it quick
    home = make_home(tmp_path)
    engine = db.make_engine(home.db_url)
    before, _ = sizes(home)
    for n in range(6):
        spool.intake_many(engine, [incoming(n)])
    assert sizes(home)[0] < before + MB
    for n in range(6, 10):  # past 8 MB of WAL
        spool.intake_many(engine, [incoming(n)])
    assert sizes(home)[0] > before + 8 * MB
