"""What the tests of the request flows (approvals, phone tickets, complaints, quotes and
projects) share: reading the outbox of a Desk, and a running daemon spoken to over SMTP.

Everything is read through public surfaces (``Desk.view``/``Desk.outbox`` in process,
``mailgate tickets show --json`` and the outbound Maildir end to end), so the tests
run the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

import email
import email.policy
import smtplib
import threading
from dataclasses import dataclass
from email.message import EmailMessage

from sqlalchemy.exc import OperationalError
from sqlmodel import select

from mailgate import correlate, pipeline
from mailgate.db import session_scope
from mailgate.models import Outbox
from tests.desk import Desk
from tests.helpers import Home

ALICE = "alice@example.com"
MARIO = "mario@acme.it"
BOSS = "boss@acme.it"
STAFF = "staff@example.com"
NO_AUTH = 'auth = "none"\n'


def body(msg: EmailMessage) -> str:
    """The text part of an outbound mail."""
    return msg.get_body(preferencelist=("plain",)).get_content()


def queued(desk: Desk, to: str) -> list[tuple[str, EmailMessage]]:
    """``(template, mail)`` of every mail queued to ``to``, oldest first (through the
    ORM, so on either database)."""
    with session_scope(desk.svc.engine) as session:
        rows = list(session.exec(select(Outbox).where(Outbox.to == to).order_by(Outbox.id)))
    return [(r.template, email.message_from_bytes(r.message, policy=email.policy.default))
            for r in rows]


def sent(desk: Desk, to: str, template: str) -> list[EmailMessage]:
    """The mails of ``template`` queued to ``to``, oldest first."""
    return [msg for name, msg in queued(desk, to) if name == template]


def templates_to(desk: Desk, to: str) -> list[str]:
    """The templates of the mails queued to ``to``, oldest first."""
    return [name for name, _ in queued(desk, to)]


def events(shown: dict, kind: str) -> list[dict]:
    """The events of one kind of a ``tickets show`` view."""
    return [e for e in shown["events"] if e["kind"] == kind]


@dataclass
class Served:
    """A running ``mailgate serve`` and the number of messages sent to it."""

    home: Home
    count: int = 0

    def send(self, msg: EmailMessage | bytes, sender: str | None = None,
             to: str = "hd@example.com") -> None:
        """Deliver over SMTP and wait until the daemon processed it and sent its mails."""
        with smtplib.SMTP("127.0.0.1", self.home.port, timeout=10) as client:
            if isinstance(msg, bytes):
                client.sendmail(sender, [to], msg)
            else:
                client.send_message(msg)
        self.count += 1
        self.home.wait_settled(self.count)

    def show(self, number: int = 10000) -> dict:
        """``mailgate tickets show N --json``."""
        return self.home.json("tickets", "show", str(number))

    def mails(self, to: str, subject_part: str = "") -> list[EmailMessage]:
        """Delivered mails to ``to`` whose subject holds ``subject_part``."""
        return [m for m in self.home.mails_to(to) if subject_part in str(m["Subject"])]


def at_once(desk: Desk, monkeypatch, first: int, second: int) -> dict:
    """Process spool rows ``first`` and ``second`` as two workers would on PostgreSQL,
    interleaved: the first finds its ticket, then waits (at most 3 s) until the second
    has found its own.  Reading tickets unlocked, both then act on what they read; with
    the lock, the second waits for the first's transaction instead.

    Returns each row's Result, or the OperationalError its transaction met (PostgreSQL
    ends a deadlock by failing one of the two; a worker backs off and runs it again).
    """
    first_has_read, second_has_read = threading.Event(), threading.Event()
    real_thread, outcomes = correlate.thread, {}

    def thread(session, parsed, *args):
        match = real_thread(session, parsed, *args)
        if threading.current_thread() is worker:
            first_has_read.set()
            second_has_read.wait(timeout=3)
        else:
            second_has_read.set()
        return match

    def process(spool_id: int) -> None:
        try:
            outcomes[spool_id] = pipeline.process(desk.svc, spool_id)
        except OperationalError as exc:
            outcomes[spool_id] = exc

    monkeypatch.setattr(correlate, "thread", thread)
    worker = threading.Thread(target=process, args=(first,))
    worker.start()
    assert first_has_read.wait(timeout=30)
    process(second)
    worker.join()
    monkeypatch.setattr(correlate, "thread", real_thread)
    return outcomes
