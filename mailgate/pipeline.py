"""The pipeline: one spooled message, one transaction (SPEC §3).

parse → classify → identify → thread → authorize → apply → notify.  The message is
read and parsed before the transaction begins (a spooled message never changes); the
spool row is claimed by its first statement (``spool.claim``), so the ticket,
its article, events, outbox rows and the row's final state commit together: a crash
before the commit leaves the row pending and it is processed again from scratch;
after, it is never processed again.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session

from mailgate import (
    bizhours,
    correlate,
    customermail,
    flows,
    monitor,
    phone,
    returned,
    senders,
    spool,
    staffmail,
    tickets,
)
from mailgate.authorize import authorize
from mailgate.bootstrap import Services
from mailgate.classify import AUTO_REPLY, BOUNCE, classify
from mailgate.config import MailboxConfig
from mailgate.db import session_scope
from mailgate.message import ParsedMail, parse
from mailgate.models import Spool, Ticket
from mailgate.notify import Notice, Notifier
from mailgate.rules import Triage, triage
from mailgate.run import Result, Run
from mailgate.senders import STAFF, UNKNOWN, Sender

log = logging.getLogger("mailgate.pipeline")


# A batch's transaction ends after this many messages or seconds, whichever comes
# first, or as soon as intake has a commit due (``svc.turn.due``).  One commit (one
# disk flush, one BEGIN, one turn) then serves several messages; the bounds keep the
# database's write lock, and a PostgreSQL counter row, from being held for long.
BATCH_SIZE = 16
BATCH_SECONDS = 0.05
# Parsed messages waiting for a batch hold their bytes and their tree in memory.
BATCH_BYTES = 8 * 1024 * 1024
# PostgreSQL ends a deadlock by failing one of the transactions (SQLSTATE 40P01; 40001
# for a serialization failure): two workers that each locked a ticket the other then
# needs (correlate.py).  The other goes on, so the failed one runs again at once, as
# PostgreSQL's manual advises, rather than backing off as from an outage.
CONFLICTS = ("40P01", "40001")
CONFLICT_RETRIES = 3


@dataclass
class Prepared:
    """A pending message read and parsed before its transaction, or why it could not be."""

    spool_id: int
    raw: bytes = b""
    mail: ParsedMail | None = None
    error: str | None = None
    # Processed in a savepoint of its own: it raised once without one (``_one``).
    careful: bool = False


@dataclass
class Done:
    """A message processed in a batch, with the milliseconds it took."""

    spool_id: int
    result: Result
    ms: float


def process(svc: Services, spool_id: int) -> Result | None:
    """Process one pending spool row; None when another worker had it already.

    A database that is unavailable leaves the row pending (raises OperationalError
    to the caller, who backs off).  A unique key that another instance took in the
    meantime (the same new sender writing to two instances at once) is met by
    processing the message again once, from scratch: the second run finds the row
    the first could not create.  Any other error marks it failed with its traceback
    so that it can be retried once fixed.
    """
    item = prepare(svc, spool_id)
    if item is None:
        return None
    done = process_batch(svc, deque([item]))
    return done[0].result if done else None


def prepare(svc: Services, spool_id: int) -> Prepared | None:
    """Read and parse the pending row ``spool_id`` (None when it is not pending).

    This runs before the transaction: on SQLite its first statement, the claim, takes
    the database's one write lock, and intake waits for it until the commit.  A
    message the parser cannot take is marked failed in the batch's transaction.
    """
    raw = spool.pending_raw(svc.engine, spool_id)
    if raw is None:
        return None
    try:
        return Prepared(spool_id, raw, parse(raw))
    except Exception:  # noqa: BLE001 - kept with its traceback, never dropped
        return Prepared(spool_id, raw, error=traceback.format_exc(limit=20))


class Ahead:
    """The pending messages of a worker's run, read and parsed ahead of their batch's
    transaction, in arrival order."""

    def __init__(self, svc: Services, spool_ids: list[int]):
        self.svc = svc
        self.ids = deque(spool_ids)
        self.items: deque[Prepared] = deque()

    def fill(self, limit: int) -> bool:
        """Read and parse the next pending message, unless ``limit`` of them or
        ``BATCH_BYTES`` wait already (the first always goes); False when there was
        nothing to do."""
        if not self.ids or len(self.items) >= limit or (
                self.items and sum(len(item.raw) for item in self.items) >= BATCH_BYTES):
            return False
        item = prepare(self.svc, self.ids.popleft())
        if item is not None:
            self.items.append(item)
        return True


def process_batch(svc: Services, batch: deque[Prepared],
                  intake_due: Callable[[], bool] = lambda: False,
                  meanwhile: Callable[[], bool] | None = None) -> list[Done]:
    """Process prepared messages from the left of ``batch`` in one transaction until
    the batch is empty, ``BATCH_SIZE`` or ``BATCH_SECONDS`` is reached, or
    ``intake_due`` says that the listener waits to commit (``IntakeFirst.due``); what
    is left stays in ``batch``.

    Each message is processed as ``process`` describes: a failure marks it failed and
    undoes nothing of the others (see ``_one``).  A database that is unavailable rolls
    the whole transaction back (every message of it stays pending) and raises
    OperationalError; a transaction PostgreSQL failed to end a deadlock runs again.
    The log lines are written once the transaction has committed.
    ``meanwhile`` works while another writer has the turn (``Turns``).
    """
    conflicts = 0
    while True:
        taken: list[Prepared] = []
        try:
            done = _transaction(svc, batch, taken, intake_due, meanwhile)
        except _Again:
            # Rolled back: the messages it had taken go again, in the same order, the
            # one that raised now in a savepoint of its own.
            batch.extendleft(reversed(taken))
            continue
        except OperationalError as exc:
            conflicts += 1
            if getattr(exc.orig, "sqlstate", None) not in CONFLICTS or (
                    conflicts > CONFLICT_RETRIES):
                raise
            log.info("a transaction of %d message(s) met another one's locks (%s); "
                     "running it again", len(taken), exc.orig.sqlstate)
            batch.extendleft(reversed(taken))
            continue
        for item in done:
            _log_line(item.spool_id, item.result, item.ms)
        return done


def _transaction(svc: Services, batch: deque[Prepared], taken: list[Prepared],
                 intake_due: Callable[[], bool],
                 meanwhile: Callable[[], bool] | None) -> list[Done]:
    """One transaction of ``process_batch``; what it took from ``batch`` goes in
    ``taken``."""
    done: list[Done] = []
    with svc.turn(meanwhile), session_scope(svc.engine) as session:
        started = time.monotonic()
        while batch:
            item = batch.popleft()
            taken.append(item)
            began = time.monotonic()
            result = _one(svc, session, item)
            # Each message starts from what the database holds, as in a transaction of
            # its own: no object one message loaded is taken, stale, by the next.
            session.expunge_all()
            if result is not None:
                done.append(Done(item.spool_id, result, (time.monotonic() - began) * 1000))
            if (len(done) >= BATCH_SIZE or time.monotonic() - started >= BATCH_SECONDS
                    or intake_due()):
                break
    return done


def _one(svc: Services, session: Session, item: Prepared) -> Result | None:
    """One message in the batch's transaction.

    Messages go without a savepoint each: a SAVEPOINT, its RELEASE and the ORM's
    bookkeeping of them were 4 % of the pipeline's instructions (bench/RESULTS.md), and
    failures are rare.  A message that raises rolls the whole transaction back
    (``_Again``); in the next one it runs in a savepoint of its own, where a failure
    undoes only its own work and marks it failed, and a unique key that a concurrent
    instance took is met by running it once more.
    """
    if not item.careful and item.error is None:
        try:
            # Its last statement (spool.record_outcome) flushes what it changed through
            # the ORM, before expunge_all forgets it.
            return _claimed_run(svc, session, item.spool_id, item.raw, item.mail)
        except OperationalError:
            raise
        except Exception as exc:  # noqa: BLE001 - run again in a savepoint, never lost
            item.careful = True
            raise _Again from exc
    try:
        if item.error is not None:
            raise MessageUnreadable(item.error)
        try:
            with session.begin_nested():
                return _claimed_run(svc, session, item.spool_id, item.raw, item.mail)
        except IntegrityError:
            log.info("spool=%s met a concurrent insert; processing it again", item.spool_id)
            with session.begin_nested():
                return _claimed_run(svc, session, item.spool_id, item.raw, item.mail)
    except OperationalError:
        raise
    except Exception as exc:  # noqa: BLE001 - kept with its traceback, never dropped
        error = exc.args[0] if isinstance(exc, MessageUnreadable) else None
        spool.fail(session, item.spool_id, error or traceback.format_exc(limit=20))
        log.exception("spool=%s failed", item.spool_id)
        return Result(spool.FAILED, "failed")


class _Again(Exception):
    """A message raised outside a savepoint: the batch's transaction starts again."""


class MessageUnreadable(Exception):
    """The parser raised on the message; its traceback is the argument."""


def _log_line(spool_id: int, result: Result, ms: float) -> None:
    """The one line per processed message (SPEC §10); its fields also go as ``extra``
    so that JSON logs carry them as keys."""
    fields = {"spool": spool_id, "message_id": result.message_id, "door": result.door,
              "sender": result.sender, "ticket": result.ticket, "outcome": result.outcome,
              "ms": round(ms, 1)}
    log.info("spool=%s message-id=%s door=%s sender=%s ticket=%s outcome=%r ms=%.1f",
             *fields.values(), extra=fields)


def batches(svc: Services, spool_ids: list[int],
            intake_due: Callable[[], bool] = lambda: False,
            stop: Callable[[], bool] = lambda: False) -> Iterator[list[Done]]:
    """Process the pending rows ``spool_ids`` in order, a batch at a time (see
    ``process_batch``); yields what each transaction processed.  Stops between two
    transactions once ``stop`` says so (what is left stays pending)."""
    # The next batch's messages are parsed while another writer has the turn, up to
    # a second batch: on SQLite the worker would otherwise wait idle, then parse.
    ahead = Ahead(svc, spool_ids)
    while not stop():
        if not ahead.items:
            while ahead.fill(BATCH_SIZE):
                pass
            if not ahead.items:
                return
        yield process_batch(svc, ahead.items, intake_due,
                            lambda: ahead.fill(2 * BATCH_SIZE))


def process_pending(svc: Services) -> list[Result]:
    """Process every pending row now (the doors that run without the daemon)."""
    results = []
    while ids := spool.pending_ids(svc.engine):
        for done in batches(svc, ids):
            results += [item.result for item in done]
    return results


def _claimed_run(svc: Services, session: Session, spool_id: int, raw: bytes,
                 mail: ParsedMail) -> Result | None:
    row = spool.claim(session, spool_id)
    if row is None:
        # Another worker or instance has it: this one read and parsed it for nothing
        # (workers.take keeps that rare).
        log.debug("spool=%s was claimed by another worker first", spool_id)
        return None
    now = svc.clock()
    mailbox = _mailbox(svc, row)
    run = Run(svc, session, row, raw, mail, mailbox, now, Notifier(svc, session, mailbox, now))
    result = steps(run)
    result.message_id, result.sender = run.mail.message_id, run.mail.from_addr
    result.door = row.door
    row.state, row.outcome, row.ticket_number = result.state, result.outcome, result.ticket
    row.notes, row.processed_at = "\n".join(result.notes) or None, now
    spool.record_outcome(session, row)
    return result


def _mailbox(svc: Services, row: Spool) -> MailboxConfig:
    """The mailbox the message was delivered to (the first one for imports)."""
    for address in row.rcpt_tos:
        box = svc.config.mailbox_for(address)
        if box:
            return box
    return svc.config.mailbox[0]


def steps(run: Run) -> Result:
    """Classify, identify, thread, authorize, then apply and notify."""
    verdict = classify(run.mail, run.row.mail_from, run.svc.own)
    if verdict.kind in (BOUNCE, AUTO_REPLY):
        return returned.handle(run, verdict)
    if not verdict.normal:
        return Result(spool.IGNORED, f"{verdict.kind}: {verdict.reason}")
    sender = senders.identify(run.session, run.svc.policy, run.mail.from_addr, run.mail.from_name)
    if phone.asked(run.mail, sender):  # #for: staff log a ticket for a customer
        return phone.open_for(run, sender, new_ticket)
    asked = customermail.manager_request(run, sender)
    if asked == "tickets":
        return customermail.send_list(run, sender)
    if asked == "stats":
        return customermail.send_stats(run, sender)
    match = correlate.thread(run.session, run.mail, run.svc.tag, run.svc.config.outbound.domain)
    if not match:
        return new_or_unknown(run, sender, [])
    allowed = authorize(run.session, sender, match)
    if allowed.allowed:
        return add_to_ticket(run, sender, match.ticket, f"via {match.via}: {allowed.reason}")
    result = new_or_unknown(run, sender, [f"not added to #{match.ticket.number}: {allowed.reason}"])
    outcome = f"opened #{result.ticket} instead" if result.ticket else result.outcome
    tickets.record(run.session, match.ticket, "refused", run.now, actor=sender.address,
                   detail=f"mail {run.mail.message_id} refused ({allowed.reason}); {outcome}",
                   spool_id=run.row.id)
    return result


def new_or_unknown(run: Run, sender: Sender, notes: list[str]) -> Result:
    """A new ticket (or a repeat of a monitoring alert), unless the sender is unknown,
    no triage rule claims the mail, and the mailbox says otherwise."""
    decided = triage(run.svc.rules, run.mail, company=sender.company.name if sender.company
                     else None, recipients=run.row.rcpt_tos)
    if decided.hits:
        notes.append(f"triage rules: {', '.join(decided.hits)}")
    if sender.kind == UNKNOWN and not decided.hits and run.mailbox.unknown_sender != "create":
        return unknown_sender(run, sender, notes)
    repeat = monitor.open_alert(run, sender, decided)
    if repeat is not None:
        return monitor.add_repeat(run, sender, repeat, decided, notes)
    return new_ticket(run, sender, decided, notes)


def new_ticket(run: Run, sender: Sender, decided: Triage, notes: list[str]) -> Result:
    """Open a ticket as the triage rules say, answer with ``auto_reply``, tell staff."""
    svc, session, mail = run.svc, run.session, run.mail
    senders.remember(session, sender, run.now)
    plan = svc.policy.plan(sender.company.plan if sender.company else None)
    number = tickets.next_number(session, svc.config.tickets.first_number)
    subject = svc.tag.clean(mail.subject) or mail.subject
    priority = decided.priority or plan.default_priority
    due, warn_at = bizhours.sla_times(svc.policy, sender.company.name if sender.company else None,
                                      priority, run.now, svc.config.sla.warn_at)
    ticket = tickets.open_ticket(session, number, mail, subject=subject,
                                 company_id=sender.company_id, priority=priority,
                                 origin=decided.origin or "mail", now=run.now,
                                 response_due=due, response_warn_at=warn_at)
    monitor.apply_triage(run, ticket, decided)
    run.add_article(ticket)
    _add_copies(run, ticket)
    ctx = run.notifier.context(ticket, sender.company, mail)
    lang = sender.company.language if sender.company else "en"
    if decided.auto_reply:
        run.notifier.to_customer(Notice("auto_reply", mail.from_addr, lang, ctx, mail), ticket)
    _tell_staff(run, ticket, "staff_new_ticket", ctx)
    flows.opened(run, ticket, sender.company, decided)  # approval, complaint
    return Result(spool.PROCESSED, "created", ticket.number, notes)


def add_to_ticket(run: Run, sender: Sender, ticket: Ticket, why: str) -> Result:
    """Add the mail to ``ticket``: staff mail runs commands, customer mail may close
    or reopen it."""
    senders.remember(run.session, sender, run.now)
    _add_copies(run, ticket)
    company = senders.company(run.session, ticket.company_id)
    if sender.kind == STAFF:
        return staffmail.handle(run, sender, ticket, company)
    return customermail.handle(run, sender, ticket, company, why)


def unknown_sender(run: Run, sender: Sender, notes: list[str]) -> Result:
    """``unknown_sender`` = sales: forward and answer ``not_contracted``; reject: drop."""
    if run.mailbox.unknown_sender == "reject":
        notes.append(f"{sender.address} belongs to no contracted company")
        return Result(spool.IGNORED, "rejected: unknown sender", None, notes)
    ctx = run.notifier.context(None, None, run.mail)
    forward = Notice("sales_forward", run.mailbox.sales_address, run.svc.config.staff.language,
                     ctx, automatic=False)
    run.notifier.queue(forward, None, "auto-generated", attach=run.raw)
    run.notifier.to_customer(Notice("not_contracted", sender.address, "en", ctx, run.mail), None)
    return Result(spool.PROCESSED, "sales", None, notes)


def _add_copies(run: Run, ticket: Ticket) -> None:
    """Everyone in To/Cc who is not us takes part in the ticket from now on."""
    own = run.svc.config.own_addresses
    for address in [*run.mail.to, *run.mail.cc]:
        if address not in own:
            tickets.add_participant(run.session, ticket, address)


def _tell_staff(run: Run, ticket: Ticket, template: str, ctx: dict) -> None:
    to = ticket.assignee or run.svc.config.staff.notify
    if to:
        notice = Notice(template, to, run.svc.config.staff.language, ctx, run.mail)
        run.notifier.to_staff(notice, ticket)
