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

The outbox goes first.  ``flock`` is not fair: a worker that releases the turn and
takes it again, or one that tries for it between two messages it parses ahead, wins
over a process the kernel has yet to wake.  With two workers the outbox waited 88 % of
the time for a turn and its queue grew to the whole run's mail (bench/RESULTS.md,
ninth round).  So a writer that goes ``first`` holds a second lock while it waits
for the turn, and a worker that finds that lock held lets it go before trying: the
outbox's transactions (a claim, a record) are short, and a customer's answer should
not wait for the pipeline to run dry.

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
    its outbox worker (``first``: the others let it go before them)."""

    def __init__(self, engine: Engine, gate: IntakeFirst, *, first: bool = False):
        self.gate, self.first = gate, first
        database = engine.url.database
        self.handle = self.ahead = None
        if engine.dialect.name == "sqlite" and database and database != ":memory:":
            # Both for life: a lock file opened once is one open file description,
            # which is what flock locks (two Turns of one process exclude each other).
            self.handle = open(Path(f"{database}-turn"), "a+b")  # noqa: SIM115
            self.ahead = open(Path(f"{database}-turn-first"), "a+b")  # noqa: SIM115

    @contextmanager
    def __call__(self, meanwhile: Callable[[], bool] | None = None):
        """Wait for this worker's turn, let a due intake commit go, and hold the turn
        for the block (the pipeline's transaction).

        While the turn is taken by another writer, or one that goes first waits for
        it, ``meanwhile`` is called again and again (a worker parses the messages of
        its next batch): work that has to be done anyway fills the wait instead of
        following it.  Once it returns False (nothing left to do) the wait goes on
        asleep.
        """
        if self.handle is None:
            yield
            return
        if self.first:
            self._take_first()
        else:
            self._take(meanwhile)
        try:
            self.gate.give_way(meanwhile)
            yield
        finally:
            fcntl.flock(self.handle, fcntl.LOCK_UN)

    def _take_first(self) -> None:
        """Lock the turn, holding the ``ahead`` lock while waiting for it: the sign
        that makes the others let this writer go first."""
        fcntl.flock(self.ahead, fcntl.LOCK_EX)
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX)
        finally:
            fcntl.flock(self.ahead, fcntl.LOCK_UN)

    def _take(self, meanwhile: Callable[[], bool] | None) -> None:
        """Lock the turn once no writer that goes first waits for it, working on
        ``meanwhile`` while another writer holds it or waits."""
        while True:
            if self._first_waits():
                if meanwhile is not None and meanwhile():
                    continue
                # Asleep until the one that goes first has the turn (it lets go of
                # ``ahead`` then), and behind it for the turn itself.
                fcntl.flock(self.ahead, fcntl.LOCK_SH)
                fcntl.flock(self.ahead, fcntl.LOCK_UN)
            try:
                fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if meanwhile is None or not meanwhile():
                    break
        fcntl.flock(self.handle, fcntl.LOCK_EX)

    def _first_waits(self) -> bool:
        """True while a writer that goes first waits for the turn."""
        try:
            fcntl.flock(self.ahead, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(self.ahead, fcntl.LOCK_UN)
        return False


def no_turn(meanwhile: Callable[[], bool] | None = None) -> AbstractContextManager:
    """The turn of a writer that takes none (the doors that run without the daemon)."""
    return nullcontext()
