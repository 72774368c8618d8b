"""A staff member's mail on a ticket: authenticate, run the commands, answer.

Staff run their day from their mail client (SPEC §6): command lines at the top, the
text below goes to the customer as ``reply`` unless ``#note`` keeps it internal.
Nothing is applied and nothing reaches the customer unless the mail is authenticated
and every command is valid; the sender is then told why with ``command_error``.
"""

from __future__ import annotations

from sqlmodel import Session, select

from mailgate import i18n, mailcommands, quotes, staffauth, tickets
from mailgate.message import ParsedMail
from mailgate.models import Article, Company, Ticket
from mailgate.notify import Notice
from mailgate.outbound import autoreply
from mailgate.run import Result, Run
from mailgate.senders import Sender
from mailgate.spool import PROCESSED


def handle(run: Run, sender: Sender, ticket: Ticket, company: Company | None) -> Result:
    """Apply a staff mail to ``ticket``."""
    cfg = run.svc.config
    article_id = run.add_article(ticket)
    verdict = staffauth.authenticate(cfg.staff, run.mail, run.raw, run.row.mail_from)
    if not verdict.ok:
        return _refuse(run, sender, ticket, company, article_id, [], verdict.reason)
    lines, text = mailcommands.split(quotes.new_part(run.mail.text))
    commands = mailcommands.Run(
        run.session, run.svc.policy, ticket, company, sender.address, run.now, run.row.id,
        run.svc.policy.timezone(company.name if company else None), cfg.sla.warn_at,
        rules=run.svc.rules, sales_address=run.mailbox.sales_address)
    plan = mailcommands.plan(commands, lines)
    if plan.errors:
        return _refuse(run, sender, ticket, company, article_id, plan.errors, "")
    applied = plan.apply()
    tickets.set_internal(run.session, article_id, commands.internal)
    replied = not commands.internal and bool(text.strip())
    if replied and ticket.first_response_at is None:
        ticket.first_response_at = run.now
    _announce(run, commands, company, "" if commands.internal else text)
    for follow_up in commands.follow_ups:
        follow_up(run, ticket, company)
    if replied:
        _reply(run, sender, ticket, company, text)
    _hours_low(run, ticket, company, commands.hours_logged)
    if lines and cfg.staff.transcript == "always":
        _to_sender(run, sender, ticket, company, "command_result", applied=applied)
    tickets.record(run.session, ticket, "staff_mail", run.now, actor=sender.address,
                   detail=f"{verdict.reason}; {len(applied)} command(s); "
                          f"{'replied to the customer' if replied else 'nothing sent'}",
                   spool_id=run.row.id)
    return Result(PROCESSED, f"staff mail: {len(applied)} command(s)", ticket.number)


def _refuse(run: Run, sender: Sender, ticket: Ticket, company: Company | None,
            article_id: int, errors: list[str], auth_failure: str) -> Result:
    """Keep the mail as an internal article, apply nothing, tell the sender why."""
    tickets.set_internal(run.session, article_id, True)
    kind = "staff_auth_failed" if auth_failure else "commands_refused"
    why = auth_failure or "; ".join(errors)
    tickets.record(run.session, ticket, kind, run.now, actor=sender.address, detail=why,
                   spool_id=run.row.id)
    _to_sender(run, sender, ticket, company, "command_error", errors=errors,
               auth_failure=auth_failure, commands_help=mailcommands.help_lines())
    return Result(PROCESSED, f"staff mail refused: {why}", ticket.number, [why])


def _to_sender(run: Run, sender: Sender, ticket: Ticket, company: Company | None,
               template: str, **extra) -> None:
    ctx = run.notifier.context(ticket, company, run.mail, **extra)
    notice = Notice(template, sender.address, run.svc.config.staff.language, ctx, run.mail)
    run.notifier.to_staff(notice, ticket)


def _announce(run: Run, commands: mailcommands.Run, company: Company | None,
              note: str) -> None:
    """The phase mails of the status changes the commands made."""
    lang = company.language if company else "en"
    answering = _last_customer_mail(run.session, commands.ticket, run.svc)
    for transition in commands.transitions:
        if transition.template:
            ctx = run.notifier.context(
                commands.ticket, company, run.mail, note=note,
                auto_close_days=run.svc.config.tickets.auto_close_days,
                confirm_words=i18n.confirm_words(lang, run.svc.config.tickets.confirm_words)[:3])
            run.notifier.to_people(transition.template, commands.ticket, company, ctx,
                                   answering)


def _reply(run: Run, sender: Sender, ticket: Ticket, company: Company | None, text: str) -> None:
    """The staff text to the customer: a person's answer, not an automatic mail."""
    lang = company.language if company else "en"
    answering = _last_customer_mail(run.session, ticket, run.svc)
    ctx = run.notifier.context(ticket, company, run.mail, text=text,
                               status_label=i18n.status_label(ticket.status, lang),
                               staff_name=sender.name)
    for address in tickets.participants(run.session, ticket):
        if run.svc.policy.staff_member(address):
            continue
        why_not = autoreply.bouncing(run.session, address)
        if why_not:
            tickets.record(run.session, ticket, "mail_suppressed", run.now,
                           detail=f"reply not sent: {why_not}")
            continue
        notice = Notice("reply", address, lang, ctx, answering, automatic=False)
        run.notifier.queue(notice, ticket, auto_submitted=None)


def _last_customer_mail(session: Session, ticket: Ticket, svc) -> ParsedMail | None:
    """The customer's latest mail on the ticket, for In-Reply-To/References."""
    for article in session.exec(select(Article).where(
            Article.ticket_id == ticket.id, Article.direction == "in",
            Article.message_id.is_not(None)).order_by(Article.id.desc())):
        if not svc.policy.staff_member(article.from_addr):
            return ParsedMail(message_id=article.message_id)
    return None


def _hours_low(run: Run, ticket: Ticket, company: Company | None, logged: float) -> None:
    """``hours_low`` to the managers when this mail's #time crossed the threshold."""
    if not logged or company is None or company.prepaid_hours is None:
        return
    threshold = company.hours_low_threshold
    balance = company.prepaid_hours - tickets.hours_used(run.session, company.id)
    if threshold is None or not balance < threshold <= balance + logged:
        return
    ctx = run.notifier.context(ticket, company, run.mail, balance=balance,
                               threshold=threshold, spent=logged,
                               prepaid=company.prepaid_hours)
    for manager in company.managers:
        run.notifier.to_customer(Notice("hours_low", manager, company.language, ctx), ticket,
                                 "auto-generated")
    tickets.record(run.session, ticket, "hours_low", run.now,
                   detail=f"{balance:.2f} h left of {company.prepaid_hours:.2f}")
