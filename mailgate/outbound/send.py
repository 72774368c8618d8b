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
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import aliased
from sqlmodel import select

from mailgate.config import OutboundConfig
from mailgate.db import TRANSIENT_ERRORS, claim_row, session_scope
from mailgate.durations import parse_duration
from mailgate.models import Outbox

log = logging.getLogger("mailgate.outbound")

FIRST_RETRY = timedelta(seconds=30)
LONGEST_RETRY = timedelta(hours=1)
SEND_LEASE = timedelta(minutes=5)


class MaildirTransport:
    """Delivers into a Maildir; the file name derives from the outbox id, so a
    repeated attempt after a crash replaces its own file instead of adding a copy."""

    def __init__(self, root: Path):
        self.root = root
        for sub in ("tmp", "new", "cur"):
            (root / sub).mkdir(parents=True, exist_ok=True)

    def send(self, row: Outbox) -> None:
        """Write ``row`` into ``new/``."""
        name = f"{int(row.created_at.timestamp())}.mg{row.id}.{socket.gethostname()}"
        tmp = self.root / "tmp" / name
        with open(tmp, "wb") as fh:
            fh.write(row.message.replace(b"\r\n", b"\n"))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.root / "new" / name)


class SmtpTransport:
    """Relays through an SMTP server, with STARTTLS and AUTH when configured."""

    def __init__(self, config: OutboundConfig, timeout: float = 30.0):
        self.config = config
        self.timeout = timeout

    def send(self, row: Outbox) -> None:
        """Send ``row``; raises on any refusal so the worker retries."""
        cfg = self.config
        with smtplib.SMTP(cfg.host, cfg.port, timeout=self.timeout) as client:
            if cfg.starttls:
                client.starttls(context=ssl.create_default_context())
            if cfg.username:
                client.login(cfg.username, cfg.password or "")
            client.sendmail(row.mail_from, [row.to], row.message)


def make_transport(config: OutboundConfig):
    """The transport ``[outbound] transport`` names."""
    if config.transport == "smtp":
        return SmtpTransport(config)
    return MaildirTransport(config.maildir)


def backoff(attempts: int) -> timedelta:
    """Delay before the next attempt: 30 s doubling per attempt, at most one hour."""
    # The exponent is capped before multiplying: 2**n for large n would overflow.
    return min(FIRST_RETRY * 2 ** min(max(attempts - 1, 0), 12), LONGEST_RETRY)


def drain(engine: Engine, transport, config: OutboundConfig, now: datetime,
          batch: int = 100, stop: Callable[[], bool] = lambda: False) -> int:
    """Send the due rows, oldest first, until ``stop()``; returns how many were handled."""
    with session_scope(engine) as session:
        due = session.exec(
            select(Outbox.id)
            .where(Outbox.state == "queued", Outbox.next_attempt_at <= now, ~_waits_for_older())
            .order_by(Outbox.id)
            .limit(batch)
        ).all()
    for row_id in due:
        if stop():
            break
        _attempt(engine, transport, config, row_id, now)
    return len(due)


def _waits_for_older():
    """True for a row with an older queued mail about the same ticket to the same
    address: after a relay outage the backoffs of the two may fall due in either order,
    and the customer must not read "resolved" before "we are on it".  The row goes in
    the first drain after the older one is sent (or has failed for good)."""
    older = aliased(Outbox)
    return (
        select(older.id)
        .where(older.ticket_number == Outbox.ticket_number, older.to == Outbox.to,
               older.state == "queued", older.id < Outbox.id)
        .exists()
    )


def _attempt(engine: Engine, transport, config: OutboundConfig, row_id: int,
             now: datetime) -> None:
    # Claim the row with a lease (its next attempt moves past the send), send with no
    # transaction open, then record the result.  Another worker skips a leased row; if
    # this process dies while sending, the lease runs out and the row is tried again.
    with session_scope(engine) as session:
        claimed = claim_row(session, Outbox, row_id, Outbox.state == "queued",
                            Outbox.next_attempt_at <= now, next_attempt_at=now + SEND_LEASE)
        row = session.get(Outbox, row_id) if claimed else None
    if row is None:
        return
    try:
        transport.send(row)
    except Exception as exc:  # noqa: BLE001 - one unsendable mail must not stop the rest
        changes = _failed_attempt(row, exc, config, now)
    else:
        changes = {"state": "sent", "sent_at": now, "last_error": None}
        log.info("sent outbox=%s to=%s template=%s", row.id, row.to, row.template)
    _record(engine, row_id, changes)


def _record(engine: Engine, row_id: int, changes: dict) -> None:
    """Write the attempt's result, retrying while the database is busy or away.

    The mail has left: if its ``sent`` were lost, the lease would run out and the mail
    would go a second time.  So the result is retried for up to half the lease; only
    a database away for longer than that can still cause a repeat.
    """
    deadline = time.monotonic() + SEND_LEASE.total_seconds() / 2
    delay = 0.1
    while True:
        try:
            with session_scope(engine) as session:
                session.execute(update(Outbox).where(Outbox.id == row_id)
                                .values(attempts=Outbox.attempts + 1, **changes))
            return
        except TRANSIENT_ERRORS as exc:
            if time.monotonic() + delay > deadline:
                raise
            log.warning("outbox=%s: cannot record the attempt yet (%s); retrying",
                        row_id, type(exc).__name__)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def _failed_attempt(row: Outbox, exc: Exception, config: OutboundConfig, now: datetime) -> dict:
    error = f"{type(exc).__name__}: {exc}"[:2000]
    if now - row.created_at >= parse_duration(config.max_age):
        log.error("giving up outbox=%s to=%s: %s", row.id, row.to, error)
        return {"state": "failed", "last_error": error}
    log.warning("outbox=%s to=%s attempt %s failed: %s", row.id, row.to, row.attempts + 1, error)
    return {"last_error": error, "next_attempt_at": now + backoff(row.attempts + 1)}
