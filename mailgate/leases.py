"""Named leases: one holder at a time across every instance on one database.

Used so that each IMAP account is polled by one instance at a time.  On PostgreSQL a
lease is a session-level advisory lock (``pg_try_advisory_lock``) taken on a
connection of its own and kept for as long as the holder works; the server drops it
when that connection ends, so a killed instance frees its leases at once.  Instances
that share a SQLite file share a host, so there a lease is an ``flock`` on a file
beside the database, which the kernel drops when the process dies.
"""

from __future__ import annotations

import fcntl
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError


def lock_key(name: str) -> int:
    """A signed 64-bit advisory-lock key for ``name``, the same in every instance."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@contextmanager
def held(engine: Engine, name: str) -> Iterator[bool]:
    """Try to take the lease ``name``; yields whether this process holds it.

    Never waits: a lease held elsewhere yields False at once.
    """
    if engine.dialect.name == "postgresql":
        with _advisory(engine, lock_key(name)) as mine:
            yield mine
    elif engine.url.database in (None, "", ":memory:"):
        yield True  # a private in-memory database has no other instance
    else:
        with _flocked(Path(engine.url.database), name) as mine:
            yield mine


@contextmanager
def _advisory(engine: Engine, key: int) -> Iterator[bool]:
    with engine.connect() as conn:
        mine = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())
        conn.commit()  # the lock belongs to the session, not to this transaction
        try:
            yield mine
        finally:
            if mine:
                # A connection that broke meanwhile has dropped the lock already.
                with suppress(DBAPIError):
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                    conn.commit()


@contextmanager
def _flocked(database: Path, name: str) -> Iterator[bool]:
    path = database.with_name(f"{database.name}.lease-{lock_key(name) & 0xFFFFFFFF:08x}")
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
