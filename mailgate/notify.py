"""Which mails a change calls for, rendered and queued in the same transaction.

RFC 3834 §5: a mail that answers one is ``Auto-Submitted: auto-replied``; one sent by
a timer (deadline jobs) is ``auto-generated``.

Customer-facing automatic mail passes ``autoreply.refusal`` first (RFC 3834); a
refusal is recorded as an event on the ticket, so "why did the customer get no
answer?" has an answer.  Staff mail is internal and is not rate limited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, func, select
from sqlmodel import Session

from mailgate import msgids, tickets
from mailgate.bootstrap import Services
from mailgate.config import MailboxConfig
from mailgate.db import execute
from mailgate.message import ParsedMail
from mailgate.models import Company, Outbox, Ticket
from mailgate.outbound import autoreply
from mailgate.outbound.compose import Envelope, build
from mailgate.outbound.outbox import enqueue

# References grow with every reply; keep the thread's root and the latest ones.
MAX_REFERENCES = 20
# Characters of a received text that a mail about it quotes.  A 50 MB text would make
# every staff mail 50 MB twice over (text and HTML) and cost the daemon a gigabyte; the
# whole text stays on the ticket, and the raw message in the spool.
MAX_QUOTED_TEXT = 200_000
# Built once (db.execute): the loop guard's count.
_SENT_TODAY = select(func.count(Outbox.id)).where(
    Outbox.ticket_number == bindparam("number"), Outbox.to == bindparam("to"),
    Outbox.template == bindparam("template"), Outbox.created_at > bindparam("day_ago"))


@dataclass
class Notice:
    """A mail to queue: template, recipient, language and what it answers."""

    template: str
    to: str
    lang: str
    context: dict
    answering: ParsedMail | None = None
    automatic: bool = True


class Notifier:
    """Queues the mails of one pipeline run."""

    def __init__(self, svc: Services, session: Session, mailbox: MailboxConfig, now: datetime):
        self.svc, self.session, self.mailbox, self.now = svc, session, mailbox, now

    def context(self, ticket: Ticket | None, company: Company | None, mail: ParsedMail,
                **extra) -> dict:
        """The template variables for a mail about ``ticket`` answering ``mail``
        (plus ``extra`` ones); times are shown in the company's timezone."""
        ctx = {
            "received_subject": mail.subject,
            "sender": {"address": mail.from_addr, "name": mail.from_name},
            "text": quoted(mail.text),
            "company": company.name if company else None,
            "mailbox": self.mailbox.address,
            "ticket": None,
            "tag": "",
            **extra,
        }
        if ticket is not None:
            name = company.name if company else None
            plan = self.svc.policy.plan(company.plan if company else None)
            zone = self.svc.policy.timezone(name)
            ctx["tag"] = self.svc.tag.format(ticket.number)
            ctx["ticket"] = {
                "number": ticket.number, "subject": ticket.subject, "status": ticket.status,
                "priority": plan.label(ticket.priority), "origin": ticket.origin,
                "requester": ticket.requester, "assignee": ticket.assignee,
                "response_due": _local(ticket.response_due, zone),
                "eta": _local(ticket.eta, zone), "time_spent_hours": ticket.time_spent_hours,
            }
        return ctx

    def to_people(self, template: str, ticket: Ticket, company: Company | None,
                  ctx: dict, answering: ParsedMail | None = None,
                  auto_submitted: str = "auto-replied") -> None:
        """An automatic mail to the requester and the Cc participants, and a copy to
        the company's managers where ``managers_copy`` is set (SPEC §4)."""
        people = [a for a in tickets.participants(self.session, ticket)
                  if not self.svc.policy.staff_member(a)]
        if company is not None and company.managers_copy:
            people += [m for m in company.managers if m not in people]
        lang = company.language if company else "en"
        for address in people:
            self.to_customer(Notice(template, address, lang, ctx, answering), ticket,
                             auto_submitted)

    def to_customer(self, notice: Notice, ticket: Ticket | None,
                    auto_submitted: str = "auto-replied") -> None:
        """Queue an automatic customer mail unless RFC 3834 or the rate limit forbid it."""
        cfg = self.svc.config
        why_not = autoreply.refusal(
            self.session, notice.to, own=cfg.own_addresses, limit=cfg.outbound.auto_reply_limit,
            now=self.now, ticket_number=ticket.number if ticket is not None else None,
            ticket_limit=cfg.tickets.auto_mail_per_ticket)
        if why_not:
            if ticket is not None:
                tickets.record(self.session, ticket, "auto_mail_suppressed", self.now,
                               detail=f"{notice.template} not sent: {why_not}")
            return
        self.queue(notice, ticket, auto_submitted)

    def to_staff(self, notice: Notice, ticket: Ticket | None) -> None:
        """Queue an internal mail to staff (never to one of our own addresses), unless
        it is one too many of its kind about the ticket today (``looping``)."""
        if not notice.to or notice.to in self.svc.config.own_addresses:
            return
        notice.automatic = False
        why_not = self.looping(notice, ticket)
        if why_not:
            tickets.record(self.session, ticket, "auto_mail_suppressed", self.now,
                           detail=f"{notice.template} not sent: {why_not}")
            return
        self.queue(notice, ticket, "auto-generated")

    def looping(self, notice: Notice, ticket: Ticket | None) -> str | None:
        """Why a staff mail would be a loop: already ``tickets.auto_mail_per_ticket``
        mails of this template about the ticket to this address in a day.

        Staff mail is not rate limited like customers' (each reply on a busy ticket must
        reach staff), but two help desks whose staff address is the other's mailbox,
        joined by a hop that drops the RFC 3834 headers, would otherwise answer each
        other's notices for ever, one customer reply per round.
        """
        if ticket is None:
            return None
        limit = self.svc.config.tickets.auto_mail_per_ticket
        sent = execute(self.session, _SENT_TODAY, number=ticket.number, to=notice.to,
                       template=notice.template,
                       day_ago=self.now - autoreply.TICKET_WINDOW).scalar()
        if sent >= limit:
            return f"loop guard: {sent} {notice.template} mails to {notice.to} today"
        return None

    def queue(self, notice: Notice, ticket: Ticket | None, auto_submitted: str | None,
              attach: bytes | None = None) -> None:
        """Render ``notice``, build the message and put it in the outbox."""
        rendered = self.svc.templates.render(notice.template, notice.lang, notice.context)
        if ticket is not None:
            rendered.subject = self.svc.tag.tagged(rendered.subject, ticket.number)
        domain = self.svc.config.outbound.domain
        envelope = Envelope(
            from_=self.svc.config.outbound.from_, to=notice.to,
            message_id=msgids.make(domain, *(_ticket_key(ticket))),
            reply_to=self.mailbox.address, auto_submitted=auto_submitted,
            x_loop=self.svc.own.x_loop,
        )
        if notice.answering and notice.answering.message_id:
            envelope.in_reply_to = notice.answering.message_id
            refs = [*notice.answering.references, notice.answering.message_id]
            envelope.references = tuple(refs[:1] + refs[1:][-(MAX_REFERENCES - 1):])
        mail = build(envelope, rendered, self.now, attach)
        enqueue(self.session, mail, template=notice.template,
                ticket_number=ticket.number if ticket else None,
                automatic=notice.automatic, now=self.now)


def quoted(text: str) -> str:
    """``text`` as a mail quotes it: at most ``MAX_QUOTED_TEXT`` characters, and a line
    that says how much was left out."""
    if len(text) <= MAX_QUOTED_TEXT:
        return text
    return f"{text[:MAX_QUOTED_TEXT]}\n\n[... {len(text) - MAX_QUOTED_TEXT} more characters]\n"


def _local(when: datetime | None, zone) -> datetime | None:
    return when.astimezone(zone) if when else None


def _ticket_key(ticket: Ticket | None) -> tuple:
    return (ticket.number, ticket.token) if ticket is not None else ()
