"""The ``mailgate`` command line (SPEC §10).

Exit statuses follow sysexits(3): 64 usage, 78 configuration, 75 temporary failure.
Every listing takes ``--json``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from importlib.metadata import version
from pathlib import Path

import click
from sqlalchemy.exc import OperationalError

from mailgate import bootstrap, db, spool, views
from mailgate import config as config_mod
from mailgate.checks import check_all
from mailgate.config import ConfigError
from mailgate.senders import sync

EX_USAGE, EX_TEMPFAIL, EX_CONFIG = 64, 75, 78


class Context:
    """Lazily loaded configuration and services for the chosen config file."""

    def __init__(self, path: Path):
        self.path = path
        self._svc = None

    def config(self) -> config_mod.Config:
        try:
            return config_mod.load(self.path)
        except ConfigError as exc:
            _fail(EX_CONFIG, *exc.problems)

    def services(self) -> bootstrap.Services:
        if self._svc is None:
            try:
                self._svc = bootstrap.build(self.config())
            except ConfigError as exc:
                _fail(EX_CONFIG, *exc.problems)
        return self._svc

    def ready_services(self) -> bootstrap.Services:
        """Services on a schema at head, with companies and staff synchronised."""
        svc = self.services()
        try:
            current, head = db.schema_state(svc.engine)
            if current != head:
                _fail(EX_CONFIG, f"database schema is at {current or 'nothing'}, the code "
                      f"needs {head}: run 'mailgate db upgrade'")
            with db.session_scope(svc.engine) as session:
                sync(session, svc.policy)
        except OperationalError as exc:
            _fail(EX_TEMPFAIL, f"database unavailable: {exc.orig}")
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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-c", "--config", "config_path", metavar="PATH",
              help="Config file (default $MAILGATE_CONFIG, then /etc/mailgate/config.toml).")
@click.version_option(version("mailgate"), prog_name="mailgate")
@click.pass_context
def main(ctx: click.Context, config_path: str | None) -> None:
    """mailgate: help-desk mail in, tickets out, customers informed."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    # aiosmtpd logs every SMTP command at INFO; the pipeline's own line is enough.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    ctx.obj = Context(config_mod.resolve_path(config_path))


@main.command()
@click.option("--intake-only", is_flag=True,
              help="Accept and spool mail but process nothing (maintenance).")
@click.pass_obj
def serve(obj: Context, intake_only: bool) -> None:
    """Run the daemon: SMTP listener, pipeline and outbox workers."""
    from mailgate.daemon import Daemon

    svc = obj.ready_services()
    sys.exit(asyncio.run(Daemon(svc, process=not intake_only).run()))


@main.command("check-config")
@click.pass_obj
def check_config(obj: Context) -> None:
    """Validate the configuration, rules and templates; exit 78 on any error."""
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
    with db.session_scope(obj.services().engine) as session:
        data = views.list_tickets(session, company, status)
    _emit(data, as_json, ["number", "status", "priority", "company", "requester", "subject"])


@tickets.command("show")
@click.argument("number", type=int)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def tickets_show(obj: Context, number: int, as_json: bool) -> None:
    """Show ticket NUMBER with its articles and events."""
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
    with db.session_scope(obj.services().engine) as session:
        data = views.list_spool(session, "failed" if failed else state)
    _emit(data, as_json, ["id", "state", "door", "ticket", "message_id", "outcome"])


@spool_group.command("retry")
@click.argument("ids", nargs=-1, type=int)
@click.pass_obj
def spool_retry(obj: Context, ids: tuple[int, ...]) -> None:
    """Re-run failed messages (all, or the given IDS) through the pipeline."""
    from mailgate import pipeline

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
    with db.session_scope(obj.services().engine) as session:
        data = views.list_outbox(session, state)
    _emit(data, as_json, ["id", "state", "attempts", "ticket", "to", "template", "subject"])
