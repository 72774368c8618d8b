"""The ``mailgate`` command line (SPEC §10).

Exit statuses follow sysexits(3): 64 usage, 78 configuration, 75 temporary failure.
Every listing takes ``--json``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from mailgate import logs
from mailgate.configfile import RawConfig, resolve_path

if TYPE_CHECKING:
    from mailgate import bootstrap
    from mailgate import config as config_mod

EX_USAGE, EX_DATAERR, EX_TEMPFAIL, EX_CONFIG = 64, 65, 75, 78


class Context:
    """Lazily loaded configuration and services for the chosen config file."""

    def __init__(self, path: Path):
        self.path = path
        self._svc = None
        self.log_floor = logging.NOTSET  # a command may want fewer lines than [logging]

    def config(self) -> config_mod.Config:
        from mailgate import config as config_mod

        try:
            config = config_mod.load(self.path)
        except config_mod.ConfigError as exc:
            _fail(EX_CONFIG, *exc.problems)
        logs.setup(config.logging.format, config.logging.level, floor=self.log_floor)
        return config

    def services(self) -> bootstrap.Services:
        from mailgate import bootstrap
        from mailgate.config import ConfigError

        if self._svc is None:
            try:
                self._svc = bootstrap.build(self.config())
            except ConfigError as exc:
                _fail(EX_CONFIG, *exc.problems)
        return self._svc

    def ready_services(self) -> bootstrap.Services:
        """Services on a schema at head, with companies and staff synchronised."""
        from sqlalchemy.exc import OperationalError

        from mailgate import db
        from mailgate.senders import sync

        svc = self.services()
        try:
            current, head = db.schema_state(svc.engine)
            if current != head:
                _fail(EX_CONFIG, f"database schema is at {current or 'nothing'}, the code "
                      f"needs {head}: run 'mailgate db upgrade'")
            with db.session_scope(svc.engine) as session:
                sync(session, svc.policy)
        except OperationalError as exc:
            _fail(EX_TEMPFAIL, f"database unavailable: {str(exc.orig).splitlines()[0]}")
        return svc


def _fail(code: int, *lines: str):
    for line in lines:
        click.echo(f"mailgate: {line}", err=True)
    sys.exit(code)


def _emit(data, as_json: bool, columns: list[str]) -> None:
    """Print ``data`` as JSON or as a text table of ``columns``."""
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    for item in data:
        click.echo("  ".join(str(item.get(c, "")) for c in columns))


class _Group(click.Group):
    """click's group with sysexits(3) statuses: a usage error exits 64, not 2."""

    def main(self, args=None, **extra):
        try:
            status = super().main(args=args, standalone_mode=False, **extra)
        except click.UsageError as exc:
            exc.show()
            sys.exit(EX_USAGE)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        except Exception as exc:
            # Only a command that imported SQLAlchemy can raise its errors; deliver's
            # hand-off does not import it at all (handoff.py).
            sa_exc = sys.modules.get("sqlalchemy.exc")
            if sa_exc is None or not isinstance(exc, sa_exc.OperationalError):
                raise
            hint = " (has 'mailgate db upgrade' been run?)" if "no such" in str(exc.orig) else ""
            _fail(EX_TEMPFAIL, f"database error: {str(exc.orig).splitlines()[0]}{hint}")
        sys.exit(status if isinstance(status, int) else 0)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-c", "--config", "config_path", metavar="PATH",
              help="Config file (default $MAILGATE_CONFIG, then /etc/mailgate/config.toml).")
@click.version_option(package_name="mailgate", prog_name="mailgate")
@click.pass_context
def main(ctx: click.Context, config_path: str | None) -> None:
    """mailgate: help-desk mail in, tickets out, customers informed."""
    logs.setup()  # text until the configuration's [logging] is known
    ctx.obj = Context(resolve_path(config_path))


@main.command()
@click.option("--intake-only", is_flag=True,
              help="Accept and spool mail but process nothing (maintenance).")
@click.pass_obj
def serve(obj: Context, intake_only: bool) -> None:
    """Run the daemon: SMTP listener, pipeline and outbox workers."""
    import asyncio

    from mailgate.daemon import Daemon

    svc = obj.ready_services()
    daemon = Daemon(svc, process=not intake_only, config_path=obj.path)
    sys.exit(asyncio.run(daemon.run()))


def _settle(svc: bootstrap.Services) -> list:
    """Process what is pending and send what is due: the doors that work without the
    daemon (deliver, poll --once, import) leave nothing waiting for it."""
    from mailgate import pipeline
    from mailgate.outbound import send

    results = pipeline.process_pending(svc)
    cfg = svc.config.outbound
    send.drain(svc.engine, send.make_transport(cfg), cfg, svc.clock())
    return results


@main.command()
@click.option("--sender", "-f", help="Envelope sender ('' for the null sender of a bounce).")
@click.option("--recipient", "-r", "recipients", multiple=True,
              help="Envelope recipient (repeatable); default: $ORIGINAL_RECIPIENT or "
                   "$RECIPIENT as set by Postfix, else the first mailbox.")
@click.option("--spool-only", is_flag=True, help="Store the message; let the daemon process it.")
@click.pass_obj
def deliver(obj: Context, sender: str | None, recipients: tuple[str, ...],
            spool_only: bool) -> None:
    """Take one message on standard input from an MTA (exit 0, 65, 67 or 75)."""
    from mailgate.inbound import pipe

    try:
        _deliver(obj, sender, recipients, spool_only)
    except SystemExit:
        raise
    except Exception as exc:  # noqa: BLE001 - rt-mailgate's rule: unknown trouble is a tempfail
        _fail(pipe.EX_TEMPFAIL, f"cannot take the message now ({pipe.first_line(exc)})")


def _deliver(obj: Context, sender: str | None, recipients: tuple[str, ...],
             spool_only: bool) -> None:
    from mailgate.inbound import pipe

    # The MTA quotes our output in its log and its bounces: warnings and the one line
    # that says why, nothing else.
    obj.log_floor = logging.WARNING
    logging.getLogger().setLevel(logging.WARNING)
    if sender is None:
        sender = os.environ.get("SENDER")
    if not recipients:
        env_rcpt = os.environ.get("ORIGINAL_RECIPIENT") or os.environ.get("RECIPIENT")
        recipients = (env_rcpt,) if env_rcpt else ()
    raw = _hand_over(obj.path, sender, list(recipients))
    svc = obj.ready_services()
    if raw is None:
        raw = _read_stdin(svc.config.smtp.max_message_size)
    outcome = pipe.deliver(svc, raw, sender=sender, recipients=list(recipients))
    if outcome.code != pipe.EX_OK:
        _fail(outcome.code, outcome.reason)
    if not spool_only:
        try:
            _settle(svc)
        except Exception as exc:  # noqa: BLE001 - stored already: the daemon finishes it
            logging.getLogger("mailgate.pipe").warning("left for the daemon: %s",
                                                       pipe.first_line(exc))


def _hand_over(path: Path, sender: str | None, recipients: list[str]) -> bytes | None:
    """Give the message to the running daemon and exit with its answer (handoff.py).
    Returns the message read when no daemon took it, for deliver to store itself, and
    None when the file cannot be read without validating it: the full load then says
    what is wrong (exit 78) before standard input is read."""
    from mailgate.inbound import handoff

    try:
        light = RawConfig(path)
        limit = light.max_message_size()
    except (OSError, ValueError):  # TOMLDecodeError is a ValueError
        return None
    raw = _read_stdin(limit)
    if sender is None or not recipients:
        return raw  # LMTP needs the envelope; the pipe door's defaults fill it in
    outcome = handoff.hand_over(handoff.socket_path(light), raw, sender, recipients)
    if outcome is None:
        return raw
    if outcome.code != handoff.EX_OK:
        _fail(outcome.code, outcome.reason)
    sys.exit(handoff.EX_OK)


def _read_stdin(limit: int) -> bytes:
    """The message on standard input; exits 65 or 75 when it cannot be taken."""
    from mailgate.inbound import pipe

    raw = pipe.read_message(sys.stdin.buffer, limit)
    if isinstance(raw, pipe.PipeOutcome):
        _fail(raw.code, raw.reason)
    return raw


@main.command("import")
@click.argument("path", type=click.Path(path_type=Path))
@click.pass_obj
def import_(obj: Context, path: Path) -> None:
    """Import every message of a Maildir or mbox at PATH (safe to run twice)."""
    from collections import Counter

    from sqlalchemy.exc import OperationalError

    from mailgate.inbound import importer

    svc = obj.ready_services()
    try:
        box = importer.open_mailbox(path)
    except importer.NotAMailbox as exc:
        _fail(EX_DATAERR, str(exc))
    tally: Counter = Counter()
    items = importer.messages(box)
    with click.progressbar(items, length=len(box), label="importing", file=sys.stderr,
                           hidden=not sys.stderr.isatty()) as bar:
        try:
            for raw in bar:
                importer.import_one(svc, raw, tally)
        except OperationalError as exc:
            _fail(EX_TEMPFAIL, f"database unavailable after {sum(tally.values())} messages "
                  f"({exc.orig}); run the import again to continue")
    _settle(svc)
    order = ["new tickets", "threaded", "sales", "ignored", "failed", "already present"]
    parts = [f"{tally[k]} {k}" for k in order] + [
        f"{n} {k}" for k, n in tally.items() if k not in order]
    click.echo(f"{path}: {sum(tally.values())} messages: " + ", ".join(parts))


@main.command()
@click.option("--once", is_flag=True, help="Poll every account once, process, and exit.")
@click.pass_obj
def poll(obj: Context, once: bool) -> None:
    """Fetch mail from the [[imap]] accounts (without --once: keep watching, like serve
    with the SMTP listener off)."""
    from mailgate.inbound import imap

    svc = obj.ready_services()
    if not svc.config.imap:
        _fail(EX_CONFIG, f"{obj.path}: no [[imap]] account configured")
    if not once:
        import asyncio

        from mailgate.daemon import Daemon

        sys.exit(asyncio.run(Daemon(svc, listen=False, config_path=obj.path).run()))
    trouble = 0
    for account in svc.config.imap:
        try:
            got = imap.poll_once(svc, account)
        except Exception as exc:  # noqa: BLE001 - one account's trouble is reported, not fatal
            trouble += 1
            click.echo(f"mailgate: {account.key}: {exc}", err=True)
            continue
        click.echo(f"{account.key}: {got.fetched} fetched, {got.spooled} new, "
                   f"{got.duplicates} already received, {got.left} left on the server")
        trouble += bool(got.left)
    _settle(svc)
    if trouble:
        sys.exit(EX_TEMPFAIL)


@main.command("check-config")
@click.pass_obj
def check_config(obj: Context) -> None:
    """Validate the configuration, rules and templates; exit 78 on any error."""
    from mailgate.checks import check_all

    config = obj.config()
    errors, warnings = check_all(config)
    for line in warnings:
        click.echo(f"warning: {line}", err=True)
    if errors:
        _fail(EX_CONFIG, *errors)
    click.echo(f"{obj.path}: ok")


@main.group("db")
def db_group() -> None:
    """Database schema."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@click.pass_obj
def db_upgrade(obj: Context, revision: str) -> None:
    """Apply the Alembic migrations up to REVISION."""
    from mailgate import db

    svc = obj.services()
    db.upgrade(svc.engine, revision)
    current, _head = db.schema_state(svc.engine)
    click.echo(f"schema at {current}")


@main.group()
def tickets() -> None:
    """Tickets."""


@tickets.command("list")
@click.option("--company")
@click.option("--status")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def tickets_list(obj: Context, company: str | None, status: str | None, as_json: bool) -> None:
    """List tickets, newest first."""
    from mailgate import db, views

    with db.session_scope(obj.services().engine) as session:
        data = views.list_tickets(session, company, status)
    _emit(data, as_json, ["number", "status", "priority", "company", "requester", "subject"])


@tickets.command("show")
@click.argument("number", type=int)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def tickets_show(obj: Context, number: int, as_json: bool) -> None:
    """Show ticket NUMBER with its articles and events."""
    from mailgate import db, views

    with db.session_scope(obj.services().engine) as session:
        data = views.show_ticket(session, number)
    if data is None:
        _fail(1, f"no ticket {number}")
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    for key in ("number", "subject", "status", "priority", "company", "requester", "created_at"):
        click.echo(f"{key}: {data[key]}")
    click.echo(f"participants: {', '.join(data['participants'])}")
    for art in data["articles"]:
        click.echo(f"\n--- {art['direction']} {art['created_at']} {art['from']}: {art['subject']}")
        click.echo(art["text"])
    click.echo("\nevents:")
    for ev in data["events"]:
        click.echo(f"  {ev['at']} {ev['kind']} {ev['actor']} {ev['detail']}")


@main.command()
@click.option("--company", help="Only this company's tickets.")
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), help="Tickets created since DATE.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def stats(obj: Context, company: str | None, since, as_json: bool) -> None:
    """Tickets by status and priority, take-charge and resolution times, SLA breaches."""
    from datetime import UTC

    from mailgate import db
    from mailgate import stats as stats_mod

    svc = obj.services()
    with db.session_scope(svc.engine) as session:
        data = stats_mod.compute(session, svc.policy, svc.clock(), company=company,
                                 since=since.replace(tzinfo=UTC) if since else None)
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    click.echo(f"tickets: {data['tickets']}  SLA breaches: {data['sla_breaches']}")
    click.echo(f"by status: {data['by_status']}")
    click.echo(f"by priority: {data['by_priority']}")
    for key in ("take_charge_hours", "resolution_hours"):
        spread = data[key]
        click.echo(f"{key}: median {spread['median']} p90 {spread['p90']} "
                   f"(of {spread['count']}, business hours)")
    for row in data["companies"]:
        click.echo(f"{row['name']}: {row['time_logged_hours']:.2f} h logged, "
                   f"balance {row['balance_hours']}")
    complaints = data["complaints"]
    click.echo(f"complaints: {complaints['tickets']}  by status: {complaints['by_status']}  "
               f"take-charge median {complaints['take_charge_hours']['median']}  "
               f"SLA breaches: {complaints['sla_breaches']}")


@main.command()
@click.argument("template")
@click.option("--lang", default="en", show_default=True)
@click.option("--ticket", "number", type=int, help="Render about this ticket.")
@click.option("--html", is_flag=True, help="Print the HTML part instead of the text.")
@click.pass_obj
def render(obj: Context, template: str, lang: str, number: int | None, html: bool) -> None:
    """Preview TEMPLATE: its subject and text, with a sample or a real ticket."""
    from mailgate.outbound import samples

    svc = obj.services()
    if not svc.templates.exists("en", template):
        _fail(EX_USAGE, f"no template {template!r} in {svc.config.paths.templates}/en")
    ctx = samples.full_context(template)
    if number is not None:
        ctx.update(_ticket_context(svc, number))
    rendered = svc.templates.render(template, lang, ctx)
    click.echo(f"Subject: {rendered.subject}\n")
    click.echo(rendered.html if html else rendered.text, nl=False)


def _ticket_context(svc: bootstrap.Services, number: int) -> dict:
    """The variables a mail about ticket ``number`` would get, as the pipeline builds them."""
    from sqlmodel import select

    from mailgate import db
    from mailgate.message import ParsedMail
    from mailgate.models import Company, Ticket
    from mailgate.notify import Notifier

    with db.session_scope(svc.engine) as session:
        ticket = session.exec(select(Ticket).where(Ticket.number == number)).first()
        if ticket is None:
            _fail(1, f"no ticket {number}")
        company = session.get(Company, ticket.company_id) if ticket.company_id else None
        mail = ParsedMail(subject=ticket.subject, from_addr=ticket.requester)
        notifier = Notifier(svc, session, svc.config.mailbox[0], svc.clock())
        return notifier.context(ticket, company, mail)


@main.group("spool")
def spool_group() -> None:
    """Received messages."""


@spool_group.command("list")
@click.option("--failed", is_flag=True, help="Only messages whose processing failed.")
@click.option("--state", type=click.Choice(["pending", "processed", "ignored", "failed"]))
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def spool_list(obj: Context, failed: bool, state: str | None, as_json: bool) -> None:
    """List spooled messages, oldest first."""
    from mailgate import db, views

    with db.session_scope(obj.services().engine) as session:
        data = views.list_spool(session, "failed" if failed else state)
    _emit(data, as_json, ["id", "state", "door", "ticket", "message_id", "outcome"])


@spool_group.command("retry")
@click.argument("ids", nargs=-1, type=int)
@click.pass_obj
def spool_retry(obj: Context, ids: tuple[int, ...]) -> None:
    """Re-run failed messages (all, or the given IDS) through the pipeline."""
    from mailgate import pipeline, spool

    svc = obj.ready_services()
    for spool_id in spool.retry(svc.engine, list(ids)):
        result = pipeline.process(svc, spool_id)
        state = result.state if result else "taken by another worker"
        click.echo(f"{spool_id}: {state} {result.outcome if result else ''}".rstrip())


@main.group("outbox")
def outbox_group() -> None:
    """Outbound mail."""


@outbox_group.command("list")
@click.option("--state", type=click.Choice(["queued", "sent", "failed"]))
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def outbox_list(obj: Context, state: str | None, as_json: bool) -> None:
    """List outbound mail, oldest first."""
    from mailgate import db, views

    with db.session_scope(obj.services().engine) as session:
        data = views.list_outbox(session, state)
    _emit(data, as_json, ["id", "state", "attempts", "ticket", "to", "template", "subject"])
