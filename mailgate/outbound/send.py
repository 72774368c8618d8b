"""The outbox worker: send queued mail through the configured transport.

``maildir`` writes each message into a Maildir (tmp/ then rename into new/, as the
Maildir convention requires for atomic delivery); ``smtp`` hands it to a relay.  A
failure is retried with exponential backoff until ``outbound.max_age``, then the row
is marked ``failed`` and kept for ``mailgate outbox list``.  Mails about one ticket to
one address leave in the order they were written, whatever their backoffs.
"""

from __future__ import annotations

import logging
import os
import smtplib
import socket
import ssl
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext, suppress
from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import bindparam, func, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import aliased
from sqlmodel import select

from mailgate import runs
from mailgate.config import OutboundConfig
from mailgate.db import TRANSIENT_ERRORS, claim_rows
from mailgate.durations import parse_duration
from mailgate.models import Outbox

log = logging.getLogger("mailgate.outbound")

FIRST_RETRY = timedelta(seconds=30)
LONGEST_RETRY = timedelta(hours=1)
SEND_LEASE = timedelta(minutes=5)
# Mails claimed together and recorded together: two turns of the write lock (turns.py)
# for the batch.  Each turn may wait for a worker's batch transaction (~50 ms), so with
# 20 the outbox sent at most ~200 mails/s and fell behind two workers (bench/RESULTS.md,
# ninth round), and with 100 it still fell behind them after a flood (eleventh round).
SEND_BATCH = 400
# ... and at most this many bytes of messages, which the claim reads into memory: a
# sales forward carries the whole message it forwards.
SEND_BYTES = 16 * 1024 * 1024
# Seconds a sender waits after a batch for mail to the next one, whose claim records
# the batch's results in the same transaction (``Sender``).
GATHER = 0.02


class Transport:
    """How queued mail leaves: ``send`` takes one row at a time and raises when it
    could not go; ``finish`` completes what ``send`` left for the end of the batch."""

    def finish(self) -> dict[int, Exception]:
        """Complete the rows sent since the last call; the ones that failed, by id."""
        return {}


class MaildirTransport(Transport):
    """Delivers into a Maildir (maildir(5)): a file written in ``tmp/`` and flushed to
    disk is renamed into ``new/``, so a reader never sees half a message.  The file name
    derives from the outbox id, so a repeated attempt after a crash replaces its own
    file instead of adding a copy.

    ``send`` writes a batch's files and ``finish`` flushes and delivers them, then
    flushes ``new/`` once for all the renames.  Files written before the first fsync
    let the fsyncs share the metadata blocks they write: in a micro-benchmark that was
    half the system CPU of a file; in the whole outbox, within the noise
    (bench/RESULTS.md).
    """

    def __init__(self, root: Path):
        self.host = socket.gethostname()
        self.pending: list[tuple[int, BinaryIO, str]] = []
        for sub in ("tmp", "new", "cur"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        # Strings, not Paths: the Path joins cost about 50 µs a mail (cProfile).
        self.tmp, self.new = os.path.join(root, "tmp"), os.path.join(root, "new")

    def send(self, row: Outbox) -> None:
        """Write ``row`` into ``tmp/``; ``finish`` delivers it."""
        name = f"{int(row.created_at.timestamp())}.mg{row.id}.{self.host}"
        fh = open(os.path.join(self.tmp, name), "wb")  # noqa: SIM115 - closed by finish
        try:
            fh.write(row.message.replace(b"\r\n", b"\n"))
            fh.flush()
        except BaseException:
            fh.close()
            raise
        self.pending.append((row.id, fh, name))

    def finish(self) -> dict[int, Exception]:
        """fsync each file written, rename it into ``new/``, then fsync ``new/``: a
        rename not yet on disk would be lost in a crash, with the row marked sent."""
        pending, self.pending = self.pending, []
        failed: dict[int, Exception] = {}
        delivered = []
        for row_id, fh, name in pending:
            try:
                with fh:
                    os.fsync(fh.fileno())
                os.replace(os.path.join(self.tmp, name), os.path.join(self.new, name))
                delivered.append(row_id)
            except OSError as exc:
                failed[row_id] = exc
        if delivered:
            try:
                _fsync_folder(self.new)
            except OSError as exc:
                failed |= dict.fromkeys(delivered, exc)
        return failed


def _fsync_folder(path: str) -> None:
    """Flush a folder's entries (the names renamed into it) to disk."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class SmtpTransport(Transport):
    """Relays through an SMTP server, with STARTTLS and AUTH when configured.

    The mails of a batch share one session (RFC 5321 §3.3: a session may carry any
    number of transactions) instead of a connection, a TLS handshake and a login each;
    ``finish`` ends it.  After any error the session is dropped and the next mail
    opens a new one, so that one refused mail leaves the others a clean state.
    """

    def __init__(self, config: OutboundConfig, timeout: float = 30.0):
        self.config = config
        self.timeout = timeout
        self.client: smtplib.SMTP | None = None

    def send(self, row: Outbox) -> None:
        """Send ``row``; raises on any refusal so the worker retries."""
        try:
            self.client = self.client or self._connect()
            self.client.sendmail(row.mail_from, [row.to], row.message)
        except BaseException:
            self._close(polite=False)
            raise

    def finish(self) -> dict[int, Exception]:
        """End the batch's session (QUIT); every mail was accepted or failed already."""
        self._close(polite=True)
        return {}

    def _connect(self) -> smtplib.SMTP:
        cfg = self.config
        client = smtplib.SMTP(cfg.host, cfg.port, timeout=self.timeout)
        try:
            if cfg.starttls:
                client.starttls(context=ssl.create_default_context())
            if cfg.username:
                client.login(cfg.username, cfg.password or "")
        except BaseException:
            client.close()
            raise
        return client

    def _close(self, polite: bool) -> None:
        client, self.client = self.client, None
        if client is not None:
            with suppress(smtplib.SMTPException, OSError):
                if polite:
                    client.quit()
            client.close()


def make_transport(config: OutboundConfig) -> Transport:
    """The transport ``[outbound] transport`` names."""
    if config.transport == "smtp":
        return SmtpTransport(config)
    return MaildirTransport(config.maildir)


def backoff(attempts: int) -> timedelta:
    """Delay before the next attempt: 30 s doubling per attempt, at most one hour."""
    # The exponent is capped before multiplying: 2**n for large n would overflow.
    return min(FIRST_RETRY * 2 ** min(max(attempts - 1, 0), 12), LONGEST_RETRY)


class Sender:
    """Sends the outbox batch after batch, for one process.

    The results of a batch are recorded in the transaction that claims the next one,
    or on their own once nothing more is due (``flush``): on SQLite every transaction
    is a turn of the one write lock (turns.py), which the listener's commits and the
    pipeline's batches wait for.  Until then the batch's rows stay leased, so nothing
    sends them again and no later mail about the same ticket overtakes them.
    """

    def __init__(self, engine: Engine, transport: Transport, config: OutboundConfig,
                 turn: Callable[[], AbstractContextManager] = nullcontext):
        self.engine, self.transport, self.config, self.turn = engine, transport, config, turn
        self.unrecorded: dict[int, dict] = {}  # results of the last batch, not yet written

    def drain(self, now: datetime, stop: Callable[[], bool] = lambda: False) -> int:
        """Send the rows due at ``now``, oldest first, up to ``SEND_BATCH`` of them,
        until ``stop()``; record the last results once none is due.  Returns how
        many were due."""
        with self.engine.connect() as conn:
            due = conn.execute(_DUE, {"now": now, "most": SEND_BATCH}).all()
        for row_ids in runs.bounded(due, SEND_BATCH, SEND_BYTES):
            if stop():
                break
            rows = _write(self.engine, self.unrecorded, self.turn, row_ids, now)
            self.unrecorded = {}  # written: a send that raises must not write them again
            self.unrecorded = _attempt(self.transport, self.config, rows, now, stop)
        if not due or stop():
            self.flush()
        return len(due)

    def flush(self) -> None:
        """Record the results not yet written."""
        if self.unrecorded:
            _write(self.engine, self.unrecorded, self.turn)
            self.unrecorded = {}


def drain(engine: Engine, transport: Transport, config: OutboundConfig, now: datetime,
          stop: Callable[[], bool] = lambda: False,
          turn: Callable[[], AbstractContextManager] = nullcontext) -> int:
    """Send the rows due at ``now`` (up to ``SEND_BATCH``) and record every result
    (``mailgate outbox send``); returns how many were due."""
    sender = Sender(engine, transport, config, turn)
    try:
        return sender.drain(now, stop)
    finally:
        sender.flush()


def _due_statement():
    """The rows due at ``:now``, oldest first, ``:most`` at most, with their sizes;
    built once at import: building it (its alias and subquery) cost 1.6 ms a batch
    under cProfile, more than the rest of a small batch's statements
    (bench/RESULTS.md, twelfth round).

    A row with an older queued mail about the same ticket to the same address waits:
    after a relay outage the backoffs of the two may fall due in either order, and the
    customer must not read "resolved" before "we are on it".  The row goes in the
    first drain after the older one is sent (or has failed for good)."""
    older = aliased(Outbox)
    waits_for_older = (
        select(older.id)
        .where(older.ticket_number == Outbox.ticket_number, older.to == Outbox.to,
               older.state == "queued", older.id < Outbox.id)
        .exists()
    )
    return (select(Outbox.id, func.length(Outbox.message))
            .where(Outbox.state == "queued", Outbox.next_attempt_at <= bindparam("now"),
                   ~waits_for_older)
            .order_by(Outbox.id)
            .limit(bindparam("most")))


_DUE = _due_statement()


def _attempt(transport: Transport, config: OutboundConfig, rows: list, now: datetime,
             stop: Callable[[], bool]) -> dict[int, dict]:
    """Send the claimed ``rows`` with no transaction open; the changes that record
    each attempt, by row id."""
    # Another worker skips a leased row; if this process dies while sending, the
    # lease runs out and the rows not recorded as sent are tried again.  Core rows,
    # not ORM objects: the ORM's sessions and loading were most of the outbox's CPU
    # (bench/RESULTS.md), in the listener's process when there are no workers.
    outcomes: dict[int, Exception | None] = {}
    until = time.monotonic() + SEND_LEASE.total_seconds() / 4
    for row in rows:
        # A stopping daemon gives back what it has not sent yet (no attempt counted),
        # and so does a batch slowed by a stalling relay: a row goes out only while its
        # lease has most of its time to run, with room to record the result after.
        if stop() or time.monotonic() > until:
            break
        outcomes[row.id] = _send_one(transport, row)
    outcomes |= transport.finish()
    return {row.id: _changes(row, outcomes[row.id], config, now) if row.id in outcomes
            else {"next_attempt_at": now, "attempts": row.attempts} for row in rows}


def _send_one(transport: Transport, row: Outbox) -> Exception | None:
    """Send ``row``; why it could not go, or None."""
    try:
        transport.send(row)
    except Exception as exc:  # noqa: BLE001 - one unsendable mail must not stop the rest
        return exc
    return None


def _changes(row: Outbox, error: Exception | None, config: OutboundConfig,
             now: datetime) -> dict:
    """The changes that record an attempt to send ``row`` (one more), sent unless
    ``error``."""
    if error is not None:
        changes = _failed_attempt(row, error, config, now)
    else:
        changes = {"state": "sent", "sent_at": now, "last_error": None}
        log.info("sent outbox=%s to=%s template=%s", row.id, row.to, row.template)
    return {**changes, "attempts": row.attempts + 1}


def _write(engine: Engine, results: dict[int, dict],
           turn: Callable[[], AbstractContextManager], claim: list[int] | None = None,
           now: datetime | None = None) -> list:
    """In one transaction, write the attempts' ``results`` (row id → changes), then
    claim the rows ``claim`` that are still due at ``now`` with a lease (their next
    attempt moves past the send); returns the claimed rows.

    With results to write, it is retried while the database is busy or away: the
    mails have left, and if their ``sent`` were lost, the lease would run out and they
    would go a second time.  So the results are retried for up to half the lease; only
    a database away for longer than that can still cause a repeat.
    """
    deadline = time.monotonic() + SEND_LEASE.total_seconds() / 2
    delay = 0.1
    while True:
        try:
            with turn(), engine.begin() as conn:
                for row_ids, changes in _grouped(results):
                    conn.execute(update(Outbox).where(Outbox.id.in_(row_ids)).values(**changes))
                if not claim:
                    return []
                return claim_rows(conn, Outbox, claim, Outbox.state == "queued",
                                  Outbox.next_attempt_at <= now,
                                  next_attempt_at=now + SEND_LEASE)
        except TRANSIENT_ERRORS as exc:
            if not results or time.monotonic() + delay > deadline:
                raise
            log.warning("outbox=%s: cannot record the attempts yet (%s); retrying",
                        ",".join(map(str, results)), type(exc).__name__)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def _grouped(results: dict[int, dict]) -> list[tuple[list[int], dict]]:
    """The results as (row ids, changes) with one entry per distinct change: the sent
    rows of a batch are recorded by one UPDATE."""
    groups: dict[tuple, tuple[list[int], dict]] = {}
    for row_id, changes in results.items():
        groups.setdefault(tuple(sorted(changes.items())), ([], changes))[0].append(row_id)
    return list(groups.values())


def _failed_attempt(row: Outbox, exc: Exception, config: OutboundConfig, now: datetime) -> dict:
    error = f"{type(exc).__name__}: {exc}"[:2000]
    if now - row.created_at >= parse_duration(config.max_age):
        log.error("giving up outbox=%s to=%s: %s", row.id, row.to, error)
        return {"state": "failed", "last_error": error}
    log.warning("outbox=%s to=%s attempt %s failed: %s", row.id, row.to, row.attempts + 1, error)
    return {"last_error": error, "next_attempt_at": now + backoff(row.attempts + 1)}
