"""The outbox in a process of its own, beside the pipeline workers.

With ``[processing] workers`` the pipeline leaves the listener's process, and so does
the outbox: in a thread of that process it took a quarter to a third of its CPU, and
while it held the interpreter the event loop waited between two SMTP commands of
every session (bench/RESULTS.md).  The process sends whatever is due when a pipeline
worker has committed a batch or the jobs have queued mail (its pipe), and every
``IDLE_POLL`` seconds for the retries; it leaves on SIGTERM, once the rows it holds
are sent or given back and recorded (``send.Sender``), or when the daemon is gone.
"""

from __future__ import annotations

import logging
import os
from multiprocessing.connection import Connection
from multiprocessing.queues import Queue
from pathlib import Path

from sqlalchemy.exc import OperationalError

from mailgate import bootstrap, config
from mailgate.intakefirst import IntakeFirst
from mailgate.outbound import send
from mailgate.procs import back_off, started, woken
from mailgate.turns import Turns

IDLE_POLL = 5.0  # seconds between looks at the outbox when nothing woke it

log = logging.getLogger("mailgate.outbound")


def run(config_path: Path, wake: Connection, ready: Queue, log_setup: tuple[str, str],
        gate: IntakeFirst) -> None:
    """The outbox process's main loop (the target of its process)."""
    state = started(log_setup)
    svc = bootstrap.build(config.load(config_path))
    sender = send.Sender(svc.engine, send.make_transport(svc.config.outbound),
                         svc.config.outbound, Turns(svc.engine, gate, first=True))
    ready.put(os.getpid())
    log.info("outbox process %s sending", os.getpid())
    try:
        while not state.leaving():
            try:
                handled = sender.drain(svc.clock(), stop=state.leaving)
            except OperationalError as exc:
                back_off(log, "outbox", exc)
                continue
            # After a batch the next is usually on its way: a worker's wake-up within
            # send.GATHER lets its claim record this batch's results too.
            if not woken(wake, send.GATHER if handled else IDLE_POLL):
                return
    finally:
        sender.flush()
