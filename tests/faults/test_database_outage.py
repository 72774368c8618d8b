"""The database disappears under load: PostgreSQL stopped, the SQLite file made
unwritable.  For the duration every door answers tempfail (SMTP and LMTP ``451``, the
pipe exit 75), never a 250 it cannot keep and never a 5xx that would bounce the mail;
afterwards the senders retry, and everything is processed exactly once.

The SMTP door is a ``serve`` that also processes; the LMTP door a second ``serve
--intake-only`` on the same database; the pipe ``mailgate deliver``.  Short: 5 s of
outage; long: 60 s.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import smtplib
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage

import pytest
import sqlalchemy

from tests.faults.traffic import processed, smtp_reply, wait_for
from tests.helpers import (
    MAILGATE,
    PROJECT,
    Home,
    free_port,
    mail,
    make_home,
    serving,
    start_serve,
)
from tests.ledger import count

pytestmark = pytest.mark.e2e

SERVERS = PROJECT / "tests" / "servers"
TEMPFAIL = {"smtp": 451, "lmtp": 451, "pipe": 75}
ACCEPTED = {"smtp": 250, "lmtp": 250, "pipe": 0}
GAP = {"smtp": 0.05, "lmtp": 0.05, "pipe": 0.3}  # seconds between two mails of a door


@dataclass
class Attempt:
    """One delivery attempt: which door, when it started and ended, what it got."""

    door: str
    start: float
    end: float
    code: int
    message_id: str


@dataclass
class Doors:
    """The three doors of one installation and what every attempt on them got."""

    smtp: Home
    lmtp: Home
    attempts: list[Attempt] = field(default_factory=list)
    mails: dict[str, tuple[str, EmailMessage]] = field(default_factory=dict)

    def send(self, door: str, msg: EmailMessage) -> int:
        """Deliver ``msg`` through ``door``; the reply code or exit status."""
        if door == "pipe":
            proc = subprocess.run(
                [*MAILGATE, "-c", str(self.smtp.config), "deliver", "--spool-only",
                 "--recipient", "hd@example.com"],
                input=bytes(msg), capture_output=True, timeout=120, cwd=self.smtp.root)
            return proc.returncode
        if door == "lmtp":
            return lmtp_reply(self.lmtp.port, msg)
        return smtp_reply(self.smtp.port, msg)

    def load(self, door: str, stop: threading.Event) -> None:
        """New mail through ``door`` until ``stop``, each attempt recorded."""
        n = 0
        while not stop.is_set():
            msg = mail(f"{door}{n}@acme.it", f"{door} {n}", message_id=f"<{door}.{n}@load.test>")
            self.mails[msg["Message-ID"]] = (door, msg)
            self.attempt(door, msg)
            n += 1
            stop.wait(GAP[door])

    def attempt(self, door: str, msg: EmailMessage) -> None:
        """One delivery of ``msg`` through ``door``, recorded with its times."""
        start = time.monotonic()
        code = self.send(door, msg)
        self.attempts.append(Attempt(door, start, time.monotonic(), code, msg["Message-ID"]))

    def accepted(self) -> set[str]:
        """Message-IDs that some attempt got accepted."""
        return {a.message_id for a in self.attempts if a.code == ACCEPTED[a.door]}

    def retry(self, timeout: float) -> None:
        """The senders try again what was not accepted, as MTAs do after a 4xx."""
        deadline = time.monotonic() + timeout
        while left := [mid for mid in self.mails if mid not in self.accepted()]:
            assert time.monotonic() < deadline, f"{len(left)} mails still refused"
            for mid in left:
                self.attempt(*self.mails[mid])
            time.sleep(0.5)


def lmtp_reply(port: int, msg: EmailMessage) -> int:
    """The reply code an LMTP delivery of ``msg`` gets (0: no session at all)."""
    try:
        with smtplib.LMTP("127.0.0.1", port, timeout=30) as client:
            client.send_message(msg)
            return 250
    except smtplib.SMTPResponseException as exc:
        return exc.smtp_code
    except (smtplib.SMTPException, OSError):
        return 0


def run_outage(doors: Doors, down, up, seconds: float) -> tuple[float, float]:
    """Load on every door; ``down()`` for ``seconds``, then ``up()``; the window."""
    stop = threading.Event()
    loaders = [threading.Thread(target=doors.load, args=(d, stop)) for d in TEMPFAIL]
    for loader in loaders:
        loader.start()
    try:
        wait_for(lambda: len(doors.accepted()) >= 10, 60, "mail accepted before the outage")
        down()
        went = time.monotonic()
        try:
            time.sleep(seconds)
        finally:
            back = time.monotonic()
            up()
        time.sleep(1)
    finally:
        stop.set()
        for loader in loaders:
            loader.join(timeout=120)
    return went, back


def check_doors(doors: Doors, went: float, back: float) -> dict[str, int]:
    """Every door answered tempfail for the duration and never refused for good;
    returns the count of tempfails per door."""
    # An attempt's answer comes right after its commit (or its failure), at its end; a
    # second of grace for one whose transaction began just before the outage.
    inside = [a for a in doors.attempts if went + 1.0 < a.end < back]
    for door in TEMPFAIL:
        got = {a.code for a in inside if a.door == door}
        assert got == {TEMPFAIL[door]}, f"{door} answered {got} while the database was away"
    codes = {(a.door, a.code) for a in doors.attempts}
    assert codes <= {(d, TEMPFAIL[d]) for d in TEMPFAIL} | {(d, ACCEPTED[d]) for d in TEMPFAIL}
    return {d: sum(a.door == d and a.code == TEMPFAIL[d] for a in doors.attempts)
            for d in TEMPFAIL}


def outage_figures(doors: Doors, query, tempfails: dict[str, int], seconds: float):
    """The five figures of an outage test, with the tempfails per door."""
    figures = count(query, doors.mails, doors.accepted())
    figures.notes.update(outage_s=seconds, **{f"tempfail_{d}": n for d, n in tempfails.items()})
    return figures


def on_database(root, url: str, protocol: str = "lmtp") -> Home:
    """An installation whose database is ``url`` (the LMTP door of another one)."""
    home = make_home(root, upgrade=False, protocol=protocol)
    home.config.write_text(home.config.read_text().replace(
        'url = "sqlite:///var/mailgate.db"', f'url = "{url}"'))
    return home


# --- SQLite: the file becomes unwritable ----------------------------------------------

def chattr(flag: str, *paths) -> None:
    """``chattr +i``/``-i``: immutable even for root, which the tests run as."""
    existing = [str(p) for p in paths if os.path.exists(p)]
    subprocess.run(["chattr", flag, *existing], check=True, capture_output=True)


@pytest.fixture
def immutable_ok(tmp_path):
    """Skips unless ``chattr +i`` works here (root, a file system that has it)."""
    probe = tmp_path / "probe"
    probe.write_text("x")
    if os.geteuid() != 0 or not shutil.which("chattr"):
        pytest.skip("making the database unwritable needs root and chattr")
    try:
        chattr("+i", probe)
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"chattr +i does not work here: {exc.stderr.decode().strip()}")
    chattr("-i", probe)


def test_sqlite_unwritable_for_a_while_tempfails_every_door_then_loses_nothing(
        tmp_path, immutable_ok, scale, report):
    seconds = scale(5, 60)
    smtp_home = make_home(tmp_path / "smtp")
    doors = Doors(smtp_home, on_database(tmp_path / "lmtp", f"sqlite:///{smtp_home.db_path}"))
    # The database and its write-ahead log; not the -shm index, which SQLite maps into
    # memory: a write to a mapped page of an immutable file is a SIGBUS, an artefact of
    # chattr that a read-only remount or a permission change never causes.
    files = [smtp_home.db_path.with_name(smtp_home.db_path.name + suffix)
             for suffix in ("", "-wal")]
    try:
        with serving(doors.smtp), serving(doors.lmtp, "--intake-only"):
            went, back = run_outage(doors, lambda: chattr("+i", *files),
                                    lambda: chattr("-i", *files), seconds)
            tempfails = check_doors(doors, went, back)
            doors.retry(timeout=120)
            processed(doors.smtp, len(doors.mails), timeout=scale(120, 600))
    finally:
        chattr("-i", *files)
    report(outage_figures(doors, doors.smtp.query, tempfails, seconds))


# --- PostgreSQL: the server stops ---------------------------------------------------------

@pytest.fixture
def own_postgres():
    """A PostgreSQL cluster of this test's own, to stop and start: (up, down, url)."""
    if os.geteuid() != 0 or not glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"):
        pytest.skip("stopping a PostgreSQL server needs root and a local PostgreSQL")
    folder = tempfile.mkdtemp(prefix="mg-pgf.", dir="/tmp")
    os.chmod(folder, 0o755)
    port = str(free_port())

    def up() -> str:
        return subprocess.run([SERVERS / "postgres-up.sh", folder, port], check=True,
                              capture_output=True, text=True, timeout=120).stdout.strip()

    def down() -> None:
        subprocess.run([SERVERS / "postgres-down.sh", folder], check=True, timeout=120)

    url = up()
    try:
        yield up, down, url
    finally:
        subprocess.run([SERVERS / "postgres-down.sh", folder, "--purge"], timeout=120)


def test_postgresql_stopped_for_a_while_tempfails_every_door_then_loses_nothing(
        tmp_path, own_postgres, scale, report):
    up, down, url = own_postgres
    seconds = scale(5, 60)
    doors = Doors(on_database(tmp_path / "smtp", url, "smtp"), on_database(tmp_path / "lmtp", url))
    doors.smtp.cli("db", "upgrade")
    engine = sqlalchemy.create_engine(url)

    def query(sql: str) -> list[tuple]:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(sqlalchemy.text(sql))]

    try:
        with serving(doors.smtp), serving(doors.lmtp, "--intake-only"):
            went, back = run_outage(doors, down, up, seconds)
            tempfails = check_doors(doors, went, back)
            doors.retry(timeout=120)
            wait_for(lambda: query("SELECT count(*) FROM spool WHERE state = 'pending'")
                     == [(0,)], scale(120, 600), "every spooled mail processed")
        report(outage_figures(doors, query, tempfails, seconds))
    finally:
        engine.dispose()


def test_sigterm_while_the_pipeline_waits_for_the_database_stops_the_daemon(
        tmp_path, own_postgres):
    """A stop that comes while the pipeline backs off from an unavailable database
    ends ``serve`` with 0, as systemd expects, and does not wait for the database."""
    up, down, url = own_postgres
    home = on_database(tmp_path, url, "smtp")
    home.cli("db", "upgrade")
    log = home.root / "serve.log"
    proc = start_serve(home)
    try:
        down()
        wait_for(lambda: "pipeline waits" in log.read_text(), 30,
                 "the pipeline backing off from the stopped database")
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        up()
    assert code == 0, log.read_text()
