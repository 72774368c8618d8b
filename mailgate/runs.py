"""Runs of items bounded in number and in bytes: what one IMAP fetch or one outbox
claim holds in memory at once."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def bounded(items: Iterable[tuple[T, int]], most: int, most_bytes: int) -> Iterator[list[T]]:
    """The items of ``items`` ((item, size) pairs), in order, in runs of at most
    ``most`` items and ``most_bytes`` bytes; an item larger than that alone is a run
    of its own."""
    run: list[T] = []
    total = 0
    for item, size in items:
        if run and (len(run) >= most or total + size > most_bytes):
            yield run
            run, total = [], 0
        run.append(item)
        total += size
    if run:
        yield run
