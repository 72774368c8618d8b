"""Tickets that staff log for a customer's phone call: ``#for mario@acme.it``.

A staff member mails the help desk with ``#for ADDRESS`` among the command lines at
the top of the body, and optionally ``#origin phone|mail|web``, ``#priority P1``,
``#category …`` and ``#assign …``.  A ticket opens for that customer as if they had
written: requester the customer, origin ``phone`` unless ``#origin`` says otherwise,
the triage rules applied to the staff text (the commands decide over them), the
customer's ``auto_reply`` (so that they have the number) and ``staff_new_ticket``.
The staff text below the commands is the first article, from the staff member.

Only an authenticated staff mail may do this (``[staff] auth``, as for every staff
command): a mail that fails authentication, or whose commands are not all valid,
opens nothing, and its sender gets ``command_error``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace

from sqlmodel import select

from mailgate import approvals, mailcommands, quotes, senders, staffauth, tickets
from mailgate.mailcommands import CommandError
from mailgate.message import ParsedMail
from mailgate.models import Article, Ticket
from mailgate.notify import Notice
from mailgate.rules import triage
from mailgate.run import Result, Run
from mailgate.senders import STAFF, UNKNOWN, Sender
from mailgate.spool import PROCESSED

ORIGINS = ("phone", "mail", "web")
USAGE = {
    "for": ("#for mario@acme.it", "open a ticket for this customer (a phone call)"),
    "origin": (f"#origin {'|'.join(ORIGINS)}", "how the request reached us (default phone)"),
    "priority": ("#priority P1", "the priority, instead of the triage rules'"),
    "category": (f"#category {'|'.join(mailcommands.CATEGORIES)}", "the category"),
    "assign": ("#assign alice@example.com | #assign me", "the assignee"),
}
_COMMAND = re.compile(r"^#([a-z]+)\b\s*(.*)$", re.IGNORECASE)
_ADDRESS = re.compile(r"[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+")


@dataclass
class Order:
    """What the command lines of a ``#for`` mail ask for."""

    customer: Sender | None = None
    origin: str = "phone"
    priority: str | None = None
    category: str | None = None
    assignee: str | None = None


def asked(mail: ParsedMail, sender: Sender) -> bool:
    """True for a staff mail with a ``#for`` command line."""
    if sender.kind != STAFF:
        return False
    lines, _ = mailcommands.split(quotes.new_part(mail.text))
    return any(_parts(line)[0] == "for" for _, line in lines)


def open_for(run: Run, sender: Sender, new_ticket: Callable[..., Result]) -> Result:
    """Open the ticket the ``#for`` mail asks for with ``new_ticket`` (the pipeline's),
    or refuse it and tell the sender why."""
    cfg = run.svc.config
    verdict = staffauth.authenticate(cfg.staff, run.mail, run.raw, run.row.mail_from)
    if not verdict.ok:
        return _refuse(run, sender, [], verdict.reason)
    lines, text = mailcommands.split(quotes.new_part(run.mail.text))
    order, errors = _read(run, sender, lines)
    if not text.strip():
        errors.append("the request is missing: write what the customer asked below the "
                      "commands")
    if errors:
        return _refuse(run, sender, errors, "")
    customer = order.customer
    mail = replace(run.mail, from_addr=customer.address, from_name=customer.name, text=text,
                   html=None, in_reply_to=[], references=[])
    decided = triage(run.svc.rules, mail, recipients=run.row.rcpt_tos,
                     company=customer.company.name if customer.company else None)
    decided.priority = order.priority or decided.priority
    decided.category = order.category or decided.category
    decided.assignee = order.assignee or decided.assignee
    decided.origin, decided.auto_reply, decided.dedupe = order.origin, True, None
    note = f"logged by {sender.address} for {customer.address} (origin {order.origin})"
    result = new_ticket(replace(run, mail=mail), customer, decided, [note])
    _credit(run, sender, result.ticket, note)
    return result


def _credit(run: Run, sender: Sender, number: int, note: str) -> None:
    """The first article is the staff member's, as they wrote it."""
    ticket = run.session.exec(select(Ticket).where(Ticket.number == number)).one()
    article = run.session.exec(select(Article).where(
        Article.ticket_id == ticket.id, Article.spool_id == run.row.id)).one()
    article.from_addr, article.full_text = sender.address, run.mail.text
    run.session.add(article)
    tickets.record(run.session, ticket, "logged_for_customer", run.now, actor=sender.address,
                   detail=note, spool_id=run.row.id)


def _read(run: Run, sender: Sender, lines: list[tuple[int, str]]) -> tuple[Order, list[str]]:
    """The order of the command lines, and what is wrong with them.  ``#for`` is read
    first: the customer's company decides which priorities exist."""
    order, errors = Order(), []
    parsed = sorted(((n, line, *_parts(line)) for n, line in lines), key=lambda p: p[2] != "for")
    if sum(name == "for" for _, _, name, _ in parsed) > 1:
        errors.append("#for is given more than once")
    for number, line, name, args in parsed:
        reader = _READERS.get(name)
        try:
            if reader is None:
                raise CommandError(f"unknown here; one of {', '.join(USAGE)}")
            reader(run, sender, order, args)
        except CommandError as exc:
            errors.append(f"line {number}: {line}: {exc}")
    return order, errors


def _parts(line: str) -> tuple[str, str]:
    match = _COMMAND.match(line)
    return (match.group(1).lower(), match.group(2).strip()) if match else ("", line)


def _for(run: Run, sender: Sender, order: Order, args: str) -> None:
    address = args.lower()
    if not _ADDRESS.fullmatch(address):
        raise CommandError("needs the customer's mail address")
    who = senders.identify(run.session, run.svc.policy, address)
    if who.kind == STAFF:
        raise CommandError(f"{address} is a staff member, not a customer")
    if who.kind == UNKNOWN and run.mailbox.unknown_sender != "create":
        raise CommandError(f"{address} belongs to no contracted company")
    order.customer = who


def _origin(run: Run, sender: Sender, order: Order, args: str) -> None:
    if args.lower() not in ORIGINS:
        raise CommandError(f"needs one of {', '.join(ORIGINS)}")
    order.origin = args.lower()


def _priority(run: Run, sender: Sender, order: Order, args: str) -> None:
    company = order.customer.company if order.customer else None
    order.priority = mailcommands.priority_key(run.svc.policy, company, args)


def _category(run: Run, sender: Sender, order: Order, args: str) -> None:
    category = args.lower()
    if category not in mailcommands.CATEGORIES:
        raise CommandError(f"needs one of {', '.join(mailcommands.CATEGORIES)}")
    if approvals.needed(None, category) and order.customer:
        why_not = approvals.cannot_wait("new", order.customer.company)
        if why_not:
            raise CommandError(why_not)
    order.category = category


def _assign(run: Run, sender: Sender, order: Order, args: str) -> None:
    address = sender.address if args.lower() == "me" else args.lower()
    if run.svc.policy.staff_member(address) is None:
        raise CommandError(f"{address or '(nothing)'} is not a staff member")
    order.assignee = address


_READERS = {"for": _for, "origin": _origin, "priority": _priority, "category": _category,
            "assign": _assign}


def _refuse(run: Run, sender: Sender, errors: list[str], auth_failure: str) -> Result:
    """Open nothing; the sender gets ``command_error`` saying why."""
    why = auth_failure or "; ".join(errors)
    ctx = run.notifier.context(None, None, run.mail, errors=errors, auth_failure=auth_failure,
                               commands_help=[{"usage": u, "help": h} for u, h in USAGE.values()])
    notice = Notice("command_error", sender.address, run.svc.config.staff.language, ctx,
                    run.mail)
    run.notifier.to_staff(notice, None)
    return Result(PROCESSED, f"phone ticket refused: {why}", None, [why])
