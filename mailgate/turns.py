"""Pipeline workers and the outbox take turns for their transactions on SQLite.

SQLite has one writer.  Two worker processes that both begin a transaction meet in
SQLite's busy handler, which sleeps 1, 2, 5, 10, 25 … ms between tries
(sqlite3.c, ``sqliteDefaultBusyCallback``) whatever the other is doing: the waiting
worker sleeps past the moment the lock came free, and two workers processed less than
one (bench/RESULTS.md).  Here the transactions queue on an ``flock`` beside the
database instead: the kernel wakes the next worker the moment the lock is released,
and parsing (which runs before the transaction) overlaps with the other worker's
transaction.  The outbox's claim and record transactions take the same turns: beside
a worker that holds the write lock most of the time, the outbox slept in the busy
handler and the worker then waited for the outbox (bench/RESULTS.md).  Inside its
turn a writer still lets a due intake commit go first (``IntakeFirst``).

PostgreSQL locks rows, not the database: there the turn is open to everyone.  The
kernel drops the lock of a process that dies, so a killed worker blocks nobody.
"""

from __future__ import annotations

import fcntl
from collections.abc import Callable
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path

from sqlalchemy.engine import Engine

from mailgate.intakefirst import IntakeFirst


class Turns:
    """The turn of one writer: a worker process, the daemon's own pipeline thread, or
    its outbox worker."""

    def __init__(self, engine: Engine, gate: IntakeFirst):
        self.gate = gate
        database = engine.url.database
        self.handle = None
        if engine.dialect.name == "sqlite" and database and database != ":memory:":
            self.handle = open(Path(f"{database}-turn"), "a+b")  # noqa: SIM115 - for life

    @contextmanager
    def __call__(self, meanwhile: Callable[[], bool] | None = None):
        """Wait for this worker's turn, let a due intake commit go, and hold the turn
        for the block (the pipeline's transaction).

        While the turn is taken by another writer, ``meanwhile`` is called again and
        again (a worker parses the messages of its next batch): work that has to be
        done anyway fills the wait instead of following it.  Once it returns False
        (nothing left to do) the wait goes on asleep.
        """
        if self.handle is None:
            yield
            return
        self._take(meanwhile)
        try:
            self.gate.give_way(meanwhile)
            yield
        finally:
            fcntl.flock(self.handle, fcntl.LOCK_UN)

    def _take(self, meanwhile: Callable[[], bool] | None) -> None:
        """Lock the turn, working on ``meanwhile`` while another writer holds it."""
        while meanwhile is not None:
            try:
                fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if not meanwhile():
                    break
        fcntl.flock(self.handle, fcntl.LOCK_EX)


def no_turn(meanwhile: Callable[[], bool] | None = None) -> AbstractContextManager:
    """The turn of a writer that takes none (the doors that run without the daemon)."""
    return nullcontext()
