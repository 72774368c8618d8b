"""Named leases: one holder at a time across every instance on one database.

Used so that each IMAP account is polled by one instance at a time.  On PostgreSQL a
lease is a session-level advisory lock (``pg_try_advisory_lock``) taken on a
connection of its own and kept for as long as the holder works; the server drops it
when that connection ends, so a killed instance frees its leases at once.  The same
holds for a server restart or a terminated backend: the holder then no longer holds
its lease, whatever it believes, and asks ``Lease.lost`` before each round of work.
Instances that share a SQLite file share a host, so there a lease is an ``flock`` on
a file beside the database, which the kernel drops only when the process dies.
"""

from __future__ import annotations

import fcntl
import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError


def lock_key(name: str) -> int:
    """A signed 64-bit advisory-lock key for ``name``, the same in every instance."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class Lease:
    """A lease asked for: true when this process took it."""

    def __init__(self, mine: bool, alive: Callable[[], bool] = lambda: True):
        self.mine, self._alive = mine, alive

    def __bool__(self) -> bool:
        return self.mine

    def lost(self) -> bool:
        """True when this process took the lease and holds it no more: on PostgreSQL,
        the connection that holds the lock has ended (a server restart, a terminated
        backend), and another instance may have taken the lease since."""
        return self.mine and not self._alive()


@contextmanager
def held(engine: Engine, name: str) -> Iterator[Lease]:
    """Try to take the lease ``name``; yields a ``Lease``, true when this process
    holds it.

    Never waits: a lease held elsewhere yields a false one at once.
    """
    if engine.dialect.name == "postgresql":
        with _advisory(engine, lock_key(name)) as lease:
            yield lease
    elif engine.url.database in (None, "", ":memory:"):
        yield Lease(True)  # a private in-memory database has no other instance
    else:
        with _flocked(Path(engine.url.database), name) as mine:
            yield Lease(mine)


@contextmanager
def _advisory(engine: Engine, key: int) -> Iterator[Lease]:
    with engine.connect() as conn:
        mine = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())
        conn.commit()  # the lock belongs to the session, not to this transaction

        ended = []

        def alive() -> bool:
            """The session, and with it the lock, still exists."""
            if not ended:
                try:
                    conn.execute(text("SELECT 1"))
                    conn.commit()
                except DBAPIError as exc:
                    ended.append(exc)
                    with suppress(SQLAlchemyError):
                        conn.rollback()  # SQLAlchemy's bookkeeping of the broken link
            return not ended

        try:
            yield Lease(mine, alive)
        finally:
            if mine and not ended:
                # A connection that broke meanwhile has dropped the lock already.
                with suppress(SQLAlchemyError):
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
