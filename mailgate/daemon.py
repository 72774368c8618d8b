"""``mailgate serve``: the asyncio loop with the listener, the IMAP watchers, the
pipeline worker and the outbox worker (or, with ``[processing] workers``, the
processes that do their work).

Intake and processing are separate: the listener only spools, the worker processes
pending rows in arrival order (so a reply is never handled before the mail that
opened its ticket).  SIGTERM drains: the listening socket closes, messages being
received finish, the worker finishes the row it has, and the process exits 0;
anything still pending waits in the spool for the next start.

Under systemd (``Type=notify``) it says READY=1 once the listener is bound and the
workers run, pings WATCHDOG=1 from the event loop, keeps STATUS= current, and says
STOPPING=1 on SIGTERM.  SIGHUP reloads rules, companies, staff and templates: the new
set is validated first and swapped in between two messages; an invalid one is logged
and the old one kept.  Connections are not touched by a reload.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import signal
import socket
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import func
from sqlalchemy.exc import OperationalError
from sqlmodel import select

from mailgate import bootstrap, config, jobs, pipeline, sdnotify, spool, workers
from mailgate.bootstrap import Services
from mailgate.checks import check_all
from mailgate.config import ConfigError
from mailgate.db import session_scope
from mailgate.durations import parse_duration
from mailgate.inbound import handoff
from mailgate.inbound.listener import LocalSocket, SpoolHandler, smtp_factory
from mailgate.intakefirst import IntakeFirst
from mailgate.metrics import Metrics
from mailgate.metrics import serve as metrics_http
from mailgate.models import Outbox, Spool
from mailgate.outbound import send
from mailgate.senders import sync
from mailgate.turns import Turns

log = logging.getLogger("mailgate.daemon")

IDLE_POLL = 5.0  # seconds between looks at the spool/outbox when nothing woke us
DB_BACKOFF = 5.0  # seconds to wait after the database refused work
DRAIN_TIMEOUT = 30.0  # seconds SIGTERM waits for messages being received (< TimeoutStopSec)
STATUS_INTERVAL = 5.0  # seconds between STATUS= updates when no work wakes them


class Daemon:
    """One running instance of ``mailgate serve``."""

    def __init__(self, svc: Services, *, process: bool = True, listen: bool | None = None,
                 config_path: Path | None = None):
        self.svc = svc
        self.config_path = config_path  # what SIGHUP reloads; None: no reload
        self.process = process
        self.listen = svc.config.smtp.enabled if listen is None else listen
        self.imap_stop = threading.Event()
        self.stopping = asyncio.Event()
        self.spooled = asyncio.Event()
        self.queued = asyncio.Event()
        # SQLite has one writer: the listener's commits go before the pipeline's.
        self.gate = IntakeFirst(enabled=svc.engine.dialect.name == "sqlite")
        # The in-process pipeline and the outbox take turns for their write
        # transactions on SQLite, as worker processes do (turns.py).
        self.pipeline_turn = Turns(svc.engine, self.gate)
        self.outbox_turn = Turns(svc.engine, self.gate, first=True)
        self.handler = SpoolHandler(svc, self._spooled, self.gate)
        self.pool: workers.Pool | None = None  # pipeline worker processes, if any
        # Weak: a closed connection's session goes with it (a set kept every one, and
        # grew with each connection, refused ones included).
        self.sessions: weakref.WeakSet = weakref.WeakSet()
        self.worked = asyncio.Event()  # wakes the STATUS= updater
        self.reloading: asyncio.Task | None = None
        self.metrics = Metrics(svc) if svc.config.metrics.enabled else None
        self.processed = 0

    async def run(self) -> int:
        """Serve until SIGTERM/SIGINT, then drain; returns the exit status."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop)
        if self.config_path is not None:
            loop.add_signal_handler(signal.SIGHUP, self._reload_soon)
        if self.process:
            await self._start_workers()  # before the doors open: READY means processing
        # deliver's socket first: whoever sees the TCP port open finds it there too
        local = LocalSocket(self.svc.config.paths.data / handoff.SOCKET_NAME)
        deliver_door = await local.open(self._factory("pipe"))
        servers = [deliver_door] if deliver_door is not None else []
        servers += [await self._listen()] if self.listen else []
        http = await self._serve_metrics() if self.metrics is not None else None
        tasks = [asyncio.create_task(self._imap_watcher(a)) for a in self.svc.config.imap]
        scheduler = None
        if self.process:
            tasks += [asyncio.create_task(self._processing()),
                      asyncio.create_task(self._outbox_worker())]
            scheduler = self._schedule()
        log.info("ready%s", "" if self.process else " (intake only: nothing is processed)")
        sdnotify.notify("READY=1", f"STATUS={await self._status()}")
        helpers = [asyncio.create_task(self._watchdog()), asyncio.create_task(self._status_loop())]
        await self.stopping.wait()
        log.info("stopping: draining")
        if scheduler is not None:
            scheduler.shutdown(wait=False)
        self.imap_stop.set()
        if http is not None:
            http.close()
        await self._drain(servers)
        local.remove()
        self.spooled.set()
        self.queued.set()
        await asyncio.gather(*tasks)
        if self.pool is not None:
            await asyncio.to_thread(self.pool.stop, DRAIN_TIMEOUT)
        for helper in helpers:
            helper.cancel()
        log.info("stopped")
        return 0

    def _stop(self) -> None:
        if not self.stopping.is_set():
            sdnotify.notify("STOPPING=1", "STATUS=stopping: draining")
        self.stopping.set()

    async def _watchdog(self) -> None:
        """WATCHDOG=1 at half systemd's interval, from the event loop itself: a loop
        that hangs stops the pings and systemd restarts the service."""
        interval = sdnotify.watchdog_interval()
        while interval:
            sdnotify.notify("WATCHDOG=1")
            await asyncio.sleep(interval / 2)

    async def _status_loop(self) -> None:
        """STATUS= after work (at most once a second) or every STATUS_INTERVAL."""
        while not self.stopping.is_set():
            await self._nap(self.worked, STATUS_INTERVAL)
            if not self.stopping.is_set():
                sdnotify.notify(f"STATUS={await self._status()}")
            await asyncio.sleep(1.0)

    async def _status(self) -> str:
        try:
            pending, queued = await asyncio.to_thread(self._counts)
        except OperationalError:
            return f"processed {self.processed}; database unavailable"
        return f"processed {self.processed}, pending {pending}, outbox queued {queued}"

    def _counts(self) -> tuple[int, int]:
        """Pending spool rows and queued outbound mails."""
        with session_scope(self.svc.engine) as session:
            pending = session.exec(select(func.count()).select_from(Spool)
                                   .where(Spool.state == spool.PENDING)).one()
            queued = session.exec(select(func.count()).select_from(Outbox)
                                  .where(Outbox.state == "queued")).one()
        return pending, queued

    def _reload_soon(self) -> None:
        """SIGHUP: one reload at a time; a HUP during a reload is folded into it."""
        if self.reloading is None or self.reloading.done():
            self.reloading = asyncio.create_task(self._reload())

    async def _reload(self) -> None:
        sdnotify.reloading()
        log.info("reloading rules, companies, staff and templates from %s", self.config_path)
        try:
            new = await asyncio.to_thread(self._validated)
            await asyncio.to_thread(self._sync, new)
            # One assignment swaps the whole set: each message, outbox round and jobs
            # round takes ``self.svc`` once when it starts and works on that set to its
            # end, so none ever sees old rules mixed with new ones.
            self.svc = replace(self.svc, policy=new.policy, rules=new.rules,
                               templates=new.templates)
            if self.pool is not None:
                self.pool.reload()  # validated above: the workers just re-read it
            log.info("reloaded: %d companies, %d staff, %d triage rules",
                     len(new.policy.companies), len(new.policy.staff), len(new.rules))
        except ConfigError as exc:
            for problem in exc.problems:
                log.error("reload refused, the old rules stay: %s", problem)
        except Exception:  # noqa: BLE001 - a failed reload must not end the daemon
            log.exception("reload failed, the old rules stay")
        if not self.stopping.is_set():
            sdnotify.notify("READY=1", f"STATUS={await self._status()}")

    def _validated(self) -> Services:
        """The new configuration's services, checked as ``check-config`` checks them."""
        new_config = config.load(self.config_path)
        errors, _warnings = check_all(new_config)
        if errors:
            raise ConfigError(errors)
        return bootstrap.build(new_config, engine=self.svc.engine, clock=self.svc.clock)

    def _sync(self, new: Services) -> None:
        with session_scope(self.svc.engine) as session:
            sync(session, new.policy)

    async def _serve_metrics(self) -> asyncio.AbstractServer:
        cfg = self.svc.config.metrics
        http = await metrics_http(self.metrics, cfg.host, cfg.port)
        log.info("metrics on http://%s:%s/metrics", cfg.host, http.sockets[0].getsockname()[1])
        return http

    def _factory(self, door: str | None = None):
        """A session factory whose sessions a drain can find (``self.sessions``)."""
        factory = smtp_factory(self.svc, self.handler, socket.gethostname(), door)

        def tracked():
            protocol = factory()
            self.sessions.add(protocol)
            return protocol

        return tracked

    async def _listen(self) -> asyncio.AbstractServer:
        cfg = self.svc.config.smtp
        server = await asyncio.get_running_loop().create_server(self._factory(), cfg.host,
                                                                cfg.port)
        port = server.sockets[0].getsockname()[1]
        log.info("listening for %s on %s:%s", cfg.protocol.upper(), cfg.host, port)
        return server

    async def _drain(self, servers: list[asyncio.AbstractServer]) -> None:
        """Stop accepting, let messages in DATA finish, then close idle sessions."""
        for server in servers:
            server.close()
        deadline = asyncio.get_running_loop().time() + DRAIN_TIMEOUT
        while self.handler.in_flight and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        for protocol in list(self.sessions):
            if protocol.transport is not None:
                protocol.transport.close()

    def _schedule(self) -> AsyncIOScheduler:
        """APScheduler runs the deadline jobs every ``[jobs] interval``; a round
        still running when the next is due is skipped, not doubled."""
        scheduler = AsyncIOScheduler()
        seconds = parse_duration(self.svc.config.jobs.interval).total_seconds()
        scheduler.add_job(self._jobs_round, "interval", seconds=seconds, max_instances=1,
                          coalesce=True, next_run_time=datetime.now(UTC))
        scheduler.start()
        return scheduler

    async def _jobs_round(self) -> None:
        try:
            await asyncio.to_thread(jobs.run_due, self.svc, self.svc.clock())
        except OperationalError as exc:
            log.error("database unavailable, deadline jobs wait: %s", exc)
        self.queued.set()

    async def _imap_watcher(self, account) -> None:
        """One IMAP account, watched in a thread of its own: imapclient blocks, and a
        watcher must not hold one of the threads that intake and the workers share."""
        from mailgate.inbound import imap  # imapclient loads only where an account is set

        loop = asyncio.get_running_loop()

        def wake() -> None:
            loop.call_soon_threadsafe(self._spooled)

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="imap") as pool:
            await loop.run_in_executor(pool, imap.watch, self.svc, account, self.imap_stop, wake)

    def _spooled(self) -> None:
        """A door committed a message: wake whoever processes."""
        self.spooled.set()
        if self.pool is not None:
            self.pool.wake()

    async def _processing(self) -> None:
        """Process in this process, or start the ``[processing] workers`` and follow
        what they report."""
        if self.pool is None:
            await self._pipeline_worker()
            return
        self.pool.wake()  # whatever was pending before the start
        while not self.stopping.is_set():
            reported = await asyncio.to_thread(self._reports)
            for seconds, _outcome in reported:
                if self.metrics is not None:
                    self.metrics.observe(seconds)
            self.processed += len(reported)
            await asyncio.to_thread(self.pool.revive)
            if reported:
                self.queued.set()
                self.worked.set()

    async def _start_workers(self) -> None:
        """Start the ``[processing] workers`` processes, if any, and wait until they are
        ready, so that the first mail does not wait for their start-up."""
        count = self.svc.config.processing.workers
        if not count or self.config_path is None:
            return
        cfg = self.svc.config.logging
        self.pool = workers.Pool(count, self.config_path, (cfg.format, cfg.level), self.gate)
        ready, expected = await asyncio.to_thread(self.pool.start), len(self.pool.processes)
        if ready < expected:
            log.warning("%d of %d worker processes ready after %.0fs; going on", ready,
                        expected, workers.READY_TIMEOUT)
        log.info("processing in %d worker processes, sending in one more", count)

    def _reports(self) -> list[tuple[float, str]]:
        """What the workers processed since the last look (waits up to a second)."""
        try:
            reported = self.pool.done.get(timeout=1.0)
        except queue.Empty:
            return []
        while True:
            try:
                reported += self.pool.done.get_nowait()
            except queue.Empty:
                return reported

    async def _pipeline_worker(self) -> None:
        while not self.stopping.is_set():
            try:
                ids = await asyncio.to_thread(spool.pending_ids, self.svc.engine)
                await self._process(ids)
            except OperationalError as exc:
                log.error("database unavailable, pipeline waits %ss: %s", DB_BACKOFF, exc)
                await self._nap(self.stopping, DB_BACKOFF)
                continue
            if not ids:
                await self._nap(self.spooled, IDLE_POLL)

    async def _process(self, ids: list[int]) -> None:
        """Process ``ids`` a batch (one transaction, in its turn) at a time, until done
        or stopping."""
        svc = replace(self.svc, turn=self.pipeline_turn)
        batches = pipeline.batches(svc, ids, self.gate.due, self.stopping.is_set)
        while True:
            done = await asyncio.to_thread(next, batches, None)
            if done is None:
                return
            for item in done:
                if self.metrics is not None:
                    self.metrics.observe(item.ms / 1000)
            self.processed += len(done)
            self.queued.set()
            self.worked.set()

    async def _outbox_worker(self) -> None:
        """Send what is due, in a thread of this process, or have the outbox process
        (outboxproc.py) send it when there are worker processes."""
        if self.pool is not None:
            while not self.stopping.is_set():  # the workers wake it after each batch
                await self._nap(self.queued, IDLE_POLL)  # the jobs queued mail
                self.pool.wake_outbox()
            return
        sender = send.Sender(self.svc.engine, send.make_transport(self.svc.config.outbound),
                             self.svc.config.outbound, self.outbox_turn)
        try:
            while not self.stopping.is_set():
                try:
                    handled = await asyncio.to_thread(sender.drain, self.svc.clock(),
                                                      self.stopping.is_set)
                except OperationalError as exc:
                    log.error("database unavailable, outbox waits %ss: %s", DB_BACKOFF, exc)
                    handled = 0
                # As in outboxproc: the next batch's claim may record this one's results.
                await self._nap(self.queued, send.GATHER if handled else IDLE_POLL)
        finally:
            await asyncio.to_thread(sender.flush)

    async def _nap(self, event: asyncio.Event, timeout: float) -> None:
        """Wait for ``event``, a stop, or ``timeout`` seconds; then clear ``event``."""
        waiters = [asyncio.create_task(event.wait()), asyncio.create_task(self.stopping.wait())]
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        for waiter in waiters:
            waiter.cancel()
        if event is not self.stopping:  # a stop, once come, stays: the loops end on it
            event.clear()
