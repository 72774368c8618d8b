"""What the daemon's child processes share: how they learn to stop, and the pipes
that wake them."""

from __future__ import annotations

import logging
import os
import signal
import time
from contextlib import suppress
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

from mailgate import logs

DB_BACKOFF = 5.0  # seconds a child waits after the database refused work


@dataclass
class Signals:
    """What a child's SIGTERM handler sets, read between two pieces of work."""

    stop: bool = False
    parent: int = field(default_factory=os.getppid)

    def leaving(self) -> bool:
        """True once SIGTERM came or the main process is gone."""
        return self.stop or os.getppid() != self.parent


def woken(wake: Connection, timeout: float) -> bool:
    """Wait up to ``timeout`` for a wake-up and swallow all that came; False when the
    main process is gone (its end of the pipe closed: EOF)."""
    try:
        while wake.poll(timeout):
            wake.recv_bytes()
            timeout = 0
    except (EOFError, OSError):
        return False
    return True


def poke(waker: Connection) -> None:
    """Wake the process that reads the other end of ``waker``; never blocks (a full
    pipe has the news already) and never fails (a process gone is revived and reads
    the same pipe)."""
    with suppress(BlockingIOError, BrokenPipeError):
        waker.send_bytes(b"!")


def started(log_setup: tuple[str, str]) -> Signals:
    """What a child does first: log as the daemon does, note SIGTERM (read between two
    pieces of work) and leave SIGINT to the main process, which decides when to stop."""
    logs.setup(*log_setup)
    state = Signals()
    signal.signal(signal.SIGTERM, lambda *_: setattr(state, "stop", True))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return state


def back_off(log: logging.Logger, who: str, error: Exception) -> None:
    """Wait ``DB_BACKOFF`` seconds after the database refused work, and say so."""
    log.error("database unavailable, %s waits %ss: %s", who, DB_BACKOFF, error)
    time.sleep(DB_BACKOFF)
