"""Intake first: a message waiting for its acknowledgement goes before the next
pipeline transaction.

SQLite has one writer at a time, and its lock is not fair: a pipeline worker that
begins its next transaction as soon as the last one commits keeps the listener's
group commit waiting (its busy handler sleeps and tries again) for seconds under
load, while the client waits for its 250.  The listener counts itself in ``waiting``
while it has a commit to make; a worker about to begin a transaction first lets that
one commit go (it waits until ``commits`` moves on, or nobody waits any more), then
takes its turn: under a flood the two alternate, so that neither intake nor
processing stops, and a 250 waits for at most one pipeline transaction.
``LONGEST_YIELD`` bounds the wait should the listener be stuck.  The counters live
in shared memory (the workers are other processes) without a lock: only the
listener's event loop writes them.

PostgreSQL locks rows, not the database: intake never waits for the pipeline there,
and the gate stays open.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable
from contextlib import contextmanager

LONGEST_YIELD = 0.25  # seconds a worker gives way before it takes its turn anyway
POLL = 0.001
# Intake is quiet once nothing waits to commit and the last commit is this old.
QUIET = 0.2


class IntakeFirst:
    """The count of commits the listener has due, shared with the worker processes."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        context = multiprocessing.get_context("spawn")
        self.waiting = context.RawValue("i", 0)
        self.commits = context.RawValue("L", 0)
        # time.monotonic() of the last commit: CLOCK_MONOTONIC is one clock for all
        # the processes of the machine.
        self.last_commit = context.RawValue("d", 0.0)

    @contextmanager
    def committing(self):
        """Counted as waiting for the database for the block (the listener's commit)."""
        self.waiting.value += 1
        try:
            yield
        finally:
            self.last_commit.value = time.monotonic()
            self.commits.value += 1
            self.waiting.value -= 1

    def quiet(self) -> bool:
        """True when the listener has no commit due and made none for ``QUIET``
        seconds: no mail is arriving, on any database."""
        return not self.waiting.value and time.monotonic() - self.last_commit.value >= QUIET

    def due(self) -> bool:
        """True while the listener waits to commit (SQLite only): a pipeline batch
        commits after the message it is on, and the next one gives way."""
        return self.enabled and self.waiting.value > 0

    def give_way(self, meanwhile: Callable[[], bool] | None = None) -> None:
        """Let the commit the listener has due go first (SQLite only); ``meanwhile``
        is called while it waits, as long as it has work (``Turns``)."""
        if not self.enabled or not self.waiting.value:
            return
        commits, deadline = self.commits.value, time.monotonic() + LONGEST_YIELD
        while (self.waiting.value and self.commits.value == commits
               and time.monotonic() < deadline):
            if meanwhile is None or not meanwhile():
                meanwhile = None
                time.sleep(POLL)
