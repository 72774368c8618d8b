"""Which pending rows each pipeline worker has taken in hand, in shared memory.

The claim in the pipeline's transaction (spool.claim) is what keeps two workers off
one message.  But a worker reads and parses its messages before that transaction
begins (pipeline.Ahead), so two workers that pick the same row both read and parse
it, and one throws its work away when it loses the claim: twice the parsing, and
twice the memory for a 25 MB message.  Each worker therefore writes the ids it is
about to read in its own row of a shared table, and the others leave those alone.

The table is an economy, not a lock: a worker killed while it holds ids leaves them
held until its successor starts (``release``), and of two workers that take the same
id at the same moment at least one drops it (``hold``); the claim decides all the
same.  Each worker writes only its own row, so the table needs no lock that a killed
process could leave taken.
"""

from __future__ import annotations

from collections.abc import Iterable

SLOTS = 100  # ids a worker holds at most: one spool.pending_ids() at a time


class Hands:
    """One row of ``SLOTS`` ids for each of ``count`` workers; 0 is an empty slot
    (spool ids start at 1)."""

    def __init__(self, count: int, context):
        self.table = context.RawArray("q", count * SLOTS)

    def others(self, index: int) -> set[int]:
        """The ids that the workers other than ``index`` hold."""
        row = slice(index * SLOTS, (index + 1) * SLOTS)
        held = set(self.table[:row.start]) | set(self.table[row.stop:])
        held.discard(0)
        return held

    def hold(self, index: int, ids: Iterable[int]) -> list[int]:
        """Hold ``ids`` (the first ``SLOTS`` of them) for worker ``index`` instead of
        what it held; returns those it keeps.  An id that another worker holds as well
        is dropped: each wrote its row before it read the others', so of two workers
        that took the same id at the same moment at least one sees the other (when
        both do, neither keeps it, and it is taken again at the next look)."""
        ids = list(ids)[:SLOTS]
        self._write(index, ids)
        others = self.others(index)
        kept = [i for i in ids if i not in others]
        if len(kept) < len(ids):
            self._write(index, kept)
        return kept

    def _write(self, index: int, ids: list[int]) -> None:
        start = index * SLOTS
        self.table[start:start + SLOTS] = ids + [0] * (SLOTS - len(ids))

    def release(self, index: int) -> None:
        """Worker ``index`` holds nothing (its run ended, or it starts afresh)."""
        self._write(index, [])
