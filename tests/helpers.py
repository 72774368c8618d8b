"""Test helpers: a throw-away mailgate home (config, rules, database) and mail builders."""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

from tests import dbs

PROJECT = Path(__file__).resolve().parents[1]
MAILGATE = [sys.executable, "-m", "mailgate"]

COMPANIES = """
[[company]]
name = "Acme Srl"
domains = ["acme.it"]
language = "it"
plan = "standard"
managers = ["boss@acme.it"]

[[company]]
name = "Beta Kft"
domains = ["beta.hu"]
language = "hu"
plan = "standard"

[[company]]
name = "Gamma OOO"
domains = ["gamma.ru"]
language = "ru"
plan = "standard"
"""

STAFF = """
[[staff]]
address = "alice@example.com"
name = "Alice Rossi"
"""

SLA = """
[plan.standard]
default_priority = "P3"
"""


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config_text(port: int, extra: str = "", protocol: str = "smtp") -> str:
    """A config with three mailboxes, one per unknown-sender policy."""
    return f"""
[database]
url = "sqlite:///var/mailgate.db"

[paths]
rules = "rules"
templates = "{PROJECT / 'templates'}"

[smtp]
host = "127.0.0.1"
port = {port}
protocol = "{protocol}"
max_message_size = 200000

[[mailbox]]
address = "hd@example.com"
aliases = ["support@example.com"]
unknown_sender = "sales"
sales_address = "sales@example.com"

[[mailbox]]
address = "create@example.com"
unknown_sender = "create"

[[mailbox]]
address = "reject@example.com"
unknown_sender = "reject"

[staff]
notify = "staff@example.com"
{extra}
"""


@dataclass
class Home:
    """A mailgate installation in a temporary folder, on the database of this run
    (SQLite in ``var/``, or a PostgreSQL database of its own: see tests/dbs.py)."""

    root: Path
    port: int
    database: str | None = None  # a URL other than the default SQLite file

    @property
    def db_url(self) -> str:
        """The database's URL, usable from any working directory."""
        return self.database or f"sqlite:///{self.db_path}"

    def use_database(self, url: str) -> None:
        """Point the home at the database ``url`` (several instances on one database)."""
        self.config.write_text(re.sub(r'(?m)^url = ".*"$', f'url = "{url}"',
                                      self.config.read_text(), count=1))
        self.database = url

    @property
    def config(self) -> Path:
        return self.root / "config.toml"

    @property
    def db_path(self) -> Path:
        return self.root / "var" / "mailgate.db"

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run ``mailgate -c CONFIG ARGS`` and return the finished process."""
        proc = subprocess.run([*MAILGATE, "-c", str(self.config), *args], capture_output=True,
                              text=True, timeout=60, cwd=self.root)
        if check and proc.returncode != 0:
            raise AssertionError(f"mailgate {args} exited {proc.returncode}: {proc.stderr}")
        return proc

    def json(self, *args: str):
        """The parsed ``--json`` output of a CLI listing."""
        return json.loads(self.cli(*args, "--json").stdout)

    def query(self, sql: str, *params) -> list[tuple]:
        """Rows of ``sql`` (``?`` placeholders), run on the home's database and
        committed; the statement may also write."""
        return dbs.run_sql(self.db_url, sql, params)

    def database_unavailable(self):
        """A context in which the database cannot be used (see dbs.unavailable)."""
        return dbs.unavailable(self.db_url)

    def wait_settled(self, spooled: int, timeout: float = 20.0, outbox: bool = True) -> None:
        """Wait until ``spooled`` spool rows are processed and (with ``outbox``) every
        queued mail is sent."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.database or self.db_path.exists():
                done = self.query("SELECT count(*) FROM spool WHERE state != 'pending'")[0][0]
                queued = self.query("SELECT count(*) FROM outbox WHERE state = 'queued'")[0][0]
                if done >= spooled and not (outbox and queued):
                    return
            time.sleep(0.05)
        raise AssertionError(f"not settled after {timeout}s: {self.query('SELECT * FROM spool')}")

    def outbox_mails(self) -> list[EmailMessage]:
        """Every mail the Maildir transport delivered, oldest first."""
        folder = self.root / "var" / "outbox" / "new"
        files = sorted(folder.iterdir(), key=lambda p: int(p.name.split(".mg")[1].split(".")[0]))
        return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
                for p in files]

    def mails_to(self, address: str) -> list[EmailMessage]:
        """Delivered mails whose To is ``address``."""
        return [m for m in self.outbox_mails() if address in str(m["To"])]


def make_home(root: Path, port: int | None = None, extra: str = "",
              upgrade: bool = True, protocol: str = "smtp") -> Home:
    """Write config and rules under ``root`` and (with the CLI) bring the schema to head."""
    home = Home(root, port or free_port())
    (root / "rules").mkdir(parents=True, exist_ok=True)
    (root / "rules" / "companies.toml").write_text(COMPANIES)
    (root / "rules" / "staff.toml").write_text(STAFF)
    (root / "rules" / "sla.toml").write_text(SLA)
    home.config.write_text(config_text(home.port, extra, protocol))
    if dbs.POSTGRESQL:
        home.use_database(dbs.new_postgres_database())
    if upgrade:
        home.cli("db", "upgrade")
    return home


def start_serve(home: Home, *args: str) -> subprocess.Popen:
    """Start ``mailgate serve`` and wait until it accepts connections."""
    log = open(home.root / "serve.log", "ab")  # noqa: SIM115 - the daemon keeps it open
    proc = subprocess.Popen([*MAILGATE, "-c", str(home.config), "serve", *args],
                            stdout=log, stderr=log, stdin=subprocess.DEVNULL, cwd=home.root,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError((home.root / "serve.log").read_text())
        try:
            socket.create_connection(("127.0.0.1", home.port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise AssertionError("mailgate serve did not start listening")


@contextmanager
def serving(home: Home, *args: str):
    """``mailgate serve`` for the ``with`` block; SIGTERM must then end it with 0."""
    proc = start_serve(home, *args)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=30)
            assert code == 0, f"serve exited {code}: {(home.root / 'serve.log').read_text()}"


def mail(sender: str, subject: str, body: str = "Hello,\nplease help.\n", *,
         to: str = "hd@example.com", cc: str | None = None, message_id: str | None = None,
         in_reply_to: str | None = None, references: str | None = None,
         headers: dict[str, str] | None = None) -> EmailMessage:
    """A plain mail as a customer's client would send it."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    if cc:
        msg["Cc"] = cc
    msg["Subject"] = subject
    msg["Message-ID"] = message_id or make_msgid(domain=sender.rpartition("@")[2].strip(">"))
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    if references:
        msg["References"] = references
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    return msg


def flood(homes: list[Home], count: int, *, connections: int = 4, prefix: str = "",
          tolerate_errors: bool = False) -> set[str]:
    """Send ``count`` new-ticket mails spread over ``homes``, ``connections`` SMTP
    connections each; the Message-IDs that got a 250.  With ``tolerate_errors`` a
    connection that breaks (a killed daemon) just stops."""
    acked: set[str] = set()
    lock = threading.Lock()
    step = len(homes) * connections

    def worker(offset: int) -> None:
        home = homes[offset % len(homes)]
        try:
            with smtplib.SMTP("127.0.0.1", home.port, timeout=30) as client:
                for i in range(offset, count, step):
                    msg = mail(f"{prefix}user{i}@acme.it", f"flood {i}")
                    client.send_message(msg)
                    with lock:
                        acked.add(msg["Message-ID"])
        except (smtplib.SMTPException, OSError):
            if not tolerate_errors:
                raise

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(step)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    return acked
