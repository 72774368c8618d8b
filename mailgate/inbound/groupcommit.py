"""Group commit for the listener: concurrent sessions share one spool transaction.

A durable acknowledgement costs a disk flush, and a flush costs the same for one
message as for a hundred.  Messages that arrive while a commit is running wait for
the next one, which takes all of them together; a lone message is committed at once,
so nothing waits for a batch to fill.  Every session still gets its ``250`` only
after the transaction holding its message has committed.
"""

from __future__ import annotations

import asyncio
from contextlib import nullcontext

from sqlalchemy.engine import Engine

from mailgate import spool
from mailgate.intakefirst import IntakeFirst
from mailgate.spool import Incoming, Intake

MAX_BATCH = 256  # messages in one transaction (bounds its memory and its duration)


class GroupCommit:
    """Queue messages from any number of sessions; commit them in batches."""

    def __init__(self, engine: Engine, gate: IntakeFirst | None = None):
        self.engine = engine
        self.gate = gate  # pipeline workers give way while a commit is due
        self.waiting: list[tuple[Incoming, asyncio.Future]] = []
        self.committer: asyncio.Task | None = None

    async def submit(self, item: Incoming) -> Intake:
        """Store ``item``; returns once it is committed, raises what the commit raised."""
        future = asyncio.get_running_loop().create_future()
        self.waiting.append((item, future))
        if self.committer is None or self.committer.done():
            self.committer = asyncio.create_task(self._commit_all())
        return await future

    async def _commit_all(self) -> None:
        """Commit what waits, batch after batch, until nothing does."""
        while self.waiting:
            batch, self.waiting = self.waiting[:MAX_BATCH], self.waiting[MAX_BATCH:]
            try:
                with self.gate.committing() if self.gate else nullcontext():
                    stored = await asyncio.to_thread(spool.intake_many, self.engine,
                                                     [item for item, _ in batch])
            except Exception as exc:  # noqa: BLE001 - every session of the batch is told
                for _, future in batch:
                    if not future.done():  # a session whose client left is cancelled
                        future.set_exception(exc)
                continue
            for (_, future), intake in zip(batch, stored, strict=True):
                if not future.done():
                    future.set_result(intake)
