"""What a robot's mail does: a bounce marks its failed addresses, an auto-reply is noted.

Neither ever opens a ticket or gets an answer (RFC 3834 §2, RFC 3464).  A bounce of
one of our mails names the ticket through the returned mail's Message-ID (ours carry
the ticket's number and token), and lands there as an event; each failed address is
marked as bouncing, so no more mail goes to it until it writes again.
"""

from __future__ import annotations

from sqlmodel import select

from mailgate import bounces, correlate, msgids, tickets
from mailgate.classify import BOUNCE, Classification
from mailgate.models import Article, Contact, Ticket
from mailgate.run import Result, Run
from mailgate.spool import IGNORED


def handle(run: Run, verdict: Classification) -> Result:
    """Record a bounce or an auto-reply where it belongs; open nothing, answer nothing."""
    if verdict.kind == BOUNCE:
        return _bounce(run, verdict)
    match = correlate.thread(run.session, run.mail, run.svc.tag, run.svc.config.outbound.domain)
    number = None
    if match is not None and verdict.kind == "auto_reply":
        tickets.record(run.session, match.ticket, "auto_reply_received", run.now,
                       actor=run.mail.from_addr, detail=f"{verdict.reason}: {run.mail.subject}",
                       spool_id=run.row.id)
        number = match.ticket.number
    return Result(IGNORED, f"{verdict.kind}: {verdict.reason}", number)


def _bounce(run: Run, verdict: Classification) -> Result:
    report = bounces.parse_bounce(run.raw, run.mail)
    for failed in report.recipients:
        _mark(run, failed)
    ticket = _ticket_of(run, report)
    if ticket is not None:
        detail = ", ".join(f"{r.address} ({r.status or 'failed'})" for r in report.recipients)
        tickets.record(run.session, ticket, "bounce", run.now, actor=run.mail.from_addr,
                       detail=f"undeliverable: {detail or 'no address named'}",
                       spool_id=run.row.id)
    marked = f"; {len(report.recipients)} address(es) marked bouncing" if report.recipients else ""
    return Result(IGNORED, f"bounce: {verdict.reason}{marked}",
                  ticket.number if ticket else None)


def _mark(run: Run, failed: bounces.FailedRecipient) -> None:
    contact = run.session.exec(select(Contact).where(Contact.address == failed.address)).first()
    if contact is None:
        contact = Contact(address=failed.address, created_at=run.now)
    contact.bouncing_since = run.now
    contact.bounce_reason = f"{failed.status} {failed.diagnostic}".strip()[:300]
    run.session.add(contact)


def _ticket_of(run: Run, report: bounces.BounceReport) -> Ticket | None:
    """The ticket of the returned mail: one of ours (token checked) or one received."""
    domain = run.svc.config.outbound.domain
    for message_id in filter(None, [report.original_message_id,
                                    *report.original_references[::-1]]):
        ours = msgids.parse(message_id, domain)
        if ours:
            ticket = run.session.exec(select(Ticket).where(Ticket.number == ours[0])).first()
            if ticket is not None and ticket.token == ours[1]:
                return ticket
            continue
        article = run.session.exec(
            select(Article).where(Article.message_id == message_id)).first()
        if article is not None:
            return run.session.get(Ticket, article.ticket_id)
    return None
