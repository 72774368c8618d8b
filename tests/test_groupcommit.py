"""Group commit: concurrent sessions' messages share transactions, each is stored once,
and a failed commit fails every message of its batch (so each gets a 451), never some.
In-process, on the database of this run."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlalchemy import event

from mailgate import db
from mailgate.inbound.groupcommit import GroupCommit
from mailgate.spool import Incoming
from tests.helpers import mail, make_home

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def incoming(n: int, message_id: str | None = None) -> Incoming:
    msg = mail(f"user{n}@acme.it", f"mail {n}", message_id=message_id)
    return Incoming(msg.as_bytes(), "smtp", f"user{n}@acme.it", ["hd@example.com"], NOW)


def engine_of(tmp_path):
    home = make_home(tmp_path)
    engine = db.make_engine(home.db_url)
    commits = []
    event.listen(engine, "commit", lambda conn: commits.append(1))
    return home, engine, commits


def test_concurrent_messages_share_commits_and_are_each_stored_once(tmp_path):
    home, engine, commits = engine_of(tmp_path)
    committer = GroupCommit(engine)
    same = "<twice@acme.it>"
    items = [incoming(n) for n in range(200)] + [incoming(900, same), incoming(901, same)]

    async def submit_all():
        return await asyncio.gather(*(committer.submit(item) for item in items))

    stored = asyncio.run(submit_all())
    assert len({s.spool_id for s in stored[:200]}) == 200
    assert [s.duplicate for s in stored[:200]] == [False] * 200
    assert stored[200].spool_id == stored[201].spool_id and stored[201].duplicate
    assert home.query("SELECT count(*) FROM spool") == [(201,)]
    assert 1 <= len(commits) <= 10  # a commit per batch, not per message


def test_a_failed_commit_fails_its_whole_batch_and_the_next_one_works(tmp_path):
    home, engine, _commits = engine_of(tmp_path)
    committer = GroupCommit(engine)

    async def submit_all(items):
        return await asyncio.gather(*(committer.submit(i) for i in items),
                                    return_exceptions=True)

    with home.database_unavailable():
        failed = asyncio.run(submit_all([incoming(n) for n in range(5)]))
    assert all(isinstance(f, Exception) for f in failed)
    assert home.query("SELECT count(*) FROM spool") == [(0,)]
    stored = asyncio.run(submit_all([incoming(n) for n in range(5)]))
    assert [s.duplicate for s in stored] == [False] * 5
