"""Intake first: a message waiting for its acknowledgement goes before the next
pipeline transaction.

SQLite has one writer at a time, and its lock is not fair: a pipeline worker that
begins its next transaction as soon as the last one commits keeps the listener's
group commit waiting (its busy handler sleeps and tries again) for seconds under
load, while the client waits for its 250.  The listener counts itself in ``waiting``
while it has a commit to make; a worker about to begin a transaction first waits
until nobody is counted, for at most ``LONGEST_YIELD`` so that a flood cannot stop
processing altogether.  The count lives in shared memory (the workers are other
processes) without a lock: only the listener's event loop writes it.

PostgreSQL locks rows, not the database: intake never waits for the pipeline there,
and the gate stays open.
"""

from __future__ import annotations

import multiprocessing
import time
from contextlib import contextmanager

LONGEST_YIELD = 0.25  # seconds a worker gives way before it takes its turn anyway
POLL = 0.001


class IntakeFirst:
    """The count of commits the listener has due, shared with the worker processes."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.waiting = multiprocessing.get_context("spawn").RawValue("i", 0)

    @contextmanager
    def committing(self):
        """Counted as waiting for the database for the block (the listener's commit)."""
        self.waiting.value += 1
        try:
            yield
        finally:
            self.waiting.value -= 1

    def give_way(self) -> None:
        """Wait while the listener has a commit to make (SQLite only)."""
        if not self.enabled:
            return
        deadline = time.monotonic() + LONGEST_YIELD
        while self.waiting.value > 0 and time.monotonic() < deadline:
            time.sleep(POLL)
