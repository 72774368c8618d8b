"""Pipeline worker processes: processing on the cores that intake leaves free.

Python runs one thread of Python code at a time per process, so a daemon whose
listener, group commit and pipeline share a process uses one core however many the
machine has.  With ``[processing] workers = N`` (N > 0) ``serve`` starts N processes
that only claim pending spool rows and run the pipeline on them, and one more that
sends the outbox (outboxproc.py); the main process keeps the doors and the scheduled
jobs.  The claim in the pipeline's transaction (spool.claim) is what keeps two
workers off one message.  While mail arrives, the workers beyond all cores but one
rest (``steady_count``), and join once intake has been quiet for a moment.

Each worker wakes the outbox process after each batch, reports the messages of each
batch on a queue (for the metrics and STATUS=), re-reads rules and templates
when the main process has validated a reload and counts up the shared
``generation`` (a counter, not a signal: a worker still starting up would die of a
SIGHUP), finishes its message and leaves on SIGTERM or when the main process is
gone, so a killed daemon leaves no orphan working on.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import signal
import time
from contextlib import suppress
from dataclasses import replace
from multiprocessing.connection import Connection
from multiprocessing.queues import Queue
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from mailgate import bootstrap, config, outboxproc, pipeline, spool
from mailgate.hands import SLOTS, Hands
from mailgate.intakefirst import IntakeFirst
from mailgate.procs import back_off, poke, started, woken
from mailgate.turns import Turns

READY_TIMEOUT = 60.0  # seconds the daemon waits for its workers to start
IDLE_WAIT = 1.0  # seconds a worker waits for a wake-up before it looks at the spool
REST = 0.05  # seconds between an extra worker's looks at intake while mail arrives
# Seconds before a worker looks again at rows another one could take: then it takes
# them itself (``share``).
TAKE_OVER = 0.2

log = logging.getLogger("mailgate.workers")


def run(config_path: Path, index: int, count: int, wake: Connection, ready: Queue,
        done: Queue, generation: Synchronized, log_setup: tuple[str, str],
        gate: IntakeFirst, outbox: Connection, hands: Hands) -> None:
    """The main loop of worker ``index`` of ``count`` (the target of its process);
    ``outbox`` wakes the outbox process after each batch; ``hands`` says which rows
    the workers have taken."""
    state = started(log_setup)
    done.cancel_join_thread()  # a report not read by a stopping daemon is not waited for
    seen = generation.value
    svc = bootstrap.build(config.load(config_path))
    svc = replace(svc, turn=Turns(svc.engine, gate))
    ready.put(os.getpid())
    steady = steady_count(count)
    # An extra worker stops between two transactions once mail arrives again.
    stop = state.leaving if index < steady else lambda: state.leaving() or not gate.quiet()
    hands.release(index)  # a predecessor that was killed may have left rows held
    before: set[int] = set()
    while not state.leaving():
        if generation.value != seen:
            seen = generation.value
            svc = _reloaded(svc, config_path)
        active = count if gate.quiet() else steady
        if index >= active:  # an extra worker while mail arrives
            time.sleep(REST)
            continue
        try:
            free, plan = take(svc.engine, hands, index, active, before)
            try:
                for batch in pipeline.batches(svc, plan, gate.due, stop):
                    poke(outbox)
                    # One report a batch: each put is a pickle, a pipe write and a
                    # wake-up of the daemon's event loop.
                    done.put([(item.ms / 1000, item.result.outcome) for item in batch])
            finally:
                hands.release(index)
            if state.leaving():
                return
        except OperationalError as exc:
            back_off(log, "worker", exc)
            continue
        before = set(free)
        if not plan and not woken(wake, TAKE_OVER if free else IDLE_WAIT):
            return


def steady_count(count: int) -> int:
    """How many of ``count`` workers run while mail arrives: all but one of the cores
    this process may use, at least one.  The others are extra: they join once intake
    is quiet (``IntakeFirst.quiet``), to work off what a flood left pending.

    The listener needs a core while mail arrives: beside two workers on 2 cores the
    ``250``s waited two to eight times longer at p99 (bench/RESULTS.md).  Once the
    flood has arrived, that core would otherwise stay idle while one worker works
    through the backlog alone.
    """
    return max(1, min(count, len(os.sched_getaffinity(0)) - 1))


def _reloaded(svc, config_path: Path):
    """The services with new rules and templates, or the old ones if those fail."""
    try:
        new = bootstrap.build(config.load(config_path), engine=svc.engine)
    except Exception:  # noqa: BLE001 - the main process validated it; keep working anyway
        log.exception("worker %s: reload failed, the old rules stay", os.getpid())
        return svc
    return replace(svc, policy=new.policy, rules=new.rules, templates=new.templates)


def take(engine: Engine, hands: Hands, index: int, active: int,
         before: set[int]) -> tuple[list[int], list[int]]:
    """The pending rows that no other worker holds, and those of them that worker
    ``index`` of the ``active`` ones takes now (held for it in ``hands``, see
    ``share``); ``before`` are the free rows of its previous look."""
    held = hands.others(index)
    free = [i for i in spool.pending_ids(engine, SLOTS + len(held)) if i not in held]
    return free, hands.hold(index, share(free, index, active, before))


def share(free: list[int], index: int, count: int, before: set[int]) -> list[int]:
    """The rows ``free`` (pending, held by no worker) that worker ``index`` of the
    ``count`` that work now takes: its own (id modulo count), so that two workers
    that look at once do not both read and parse the same messages; when it has none
    of its own, the rows that were free at its previous look (``before``) already:
    their worker had the time to take them and did not, being busy or gone, and mail
    does not wait for it.  While mail arrives only the steady workers work
    (``steady_count``), and they share all the rows."""
    mine = [i for i in free if i % count == index]
    return mine or [i for i in free if i in before]


class Pool:
    """The worker processes of one ``serve``, and its outbox process."""

    def __init__(self, count: int, config_path: Path, log_setup: tuple[str, str],
                 gate: IntakeFirst):
        # spawn, not fork: the main process has threads (asyncio's executor, IMAP
        # watchers) and a forked child would inherit their locks in any state.
        context = multiprocessing.get_context("spawn")
        self.context = context
        self.ready: Queue = context.Queue()
        self.done: Queue = context.Queue()
        self.generation = context.Value("i", 0)
        # The outbox's pipe lasts as long as the pool: the workers write to it, and an
        # outbox process that is revived reads the same one.
        reader, self.outbox_waker = context.Pipe(duplex=False)
        os.set_blocking(self.outbox_waker.fileno(), False)
        self.outbox_args = (config_path, reader, self.ready, log_setup, gate)
        self.args = (config_path, self.ready, self.done, self.generation, log_setup, gate,
                     self.outbox_waker, Hands(count, context))
        self.wakers: list[Connection] = [None] * count
        self.processes = [*(self._process(n) for n in range(count)), self._outbox()]

    def _process(self, n: int):
        """Worker ``n`` with a pipe of its own for wake-ups; a pipe, not a shared Event,
        because a process killed inside Event.set() leaves its lock held for good."""
        reader, self.wakers[n] = self.context.Pipe(duplex=False)
        os.set_blocking(self.wakers[n].fileno(), False)
        config_path, *rest = self.args
        return self.context.Process(target=run, name=f"mailgate-worker-{n}", daemon=True,
                                    args=(config_path, n, len(self.wakers), reader, *rest))

    def _outbox(self):
        """The outbox process (outboxproc.py)."""
        return self.context.Process(target=outboxproc.run, name="mailgate-outbox", daemon=True,
                                    args=self.outbox_args)

    def wake(self) -> None:
        """Tell every worker that there is mail (never blocks: a full pipe has news)."""
        for waker in self.wakers:
            poke(waker)

    def wake_outbox(self) -> None:
        """Tell the outbox process that there may be mail to send."""
        poke(self.outbox_waker)

    def start(self, timeout: float = READY_TIMEOUT) -> int:
        """Start the workers and wait until each has read its configuration (or has
        died, or ``timeout`` passed); returns how many are ready."""
        for process in self.processes:
            process.start()
        deadline, ready = time.monotonic() + timeout, set()
        while time.monotonic() < deadline and any(
                p.pid not in ready and p.exitcode is None for p in self.processes):
            with suppress(queue.Empty):
                ready.add(self.ready.get(timeout=0.2))
        return len(ready)

    def reload(self) -> None:
        """Have every worker re-read rules and templates before its next message."""
        with self.generation.get_lock():
            self.generation.value += 1

    def revive(self) -> None:
        """Replace a worker that died (it should not; it is logged as an error)."""
        for n, process in enumerate(self.processes):
            if process.exitcode is not None:
                log.error("%s ended with %s; starting another", process.name, process.exitcode)
                self.processes[n] = self._process(n) if n < len(self.wakers) else self._outbox()
                self.processes[n].start()

    def stop(self, timeout: float) -> None:
        """SIGTERM; each finishes its message; a worker stuck past ``timeout`` is killed
        (its message stays pending and is processed again at the next start)."""
        for process in self.processes:
            if process.is_alive():
                os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in self.processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
