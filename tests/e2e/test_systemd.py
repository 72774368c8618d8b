"""``mailgate serve`` under a stand-in for systemd: a real NOTIFY_SOCKET datagram socket
receives READY, STATUS, WATCHDOG, RELOADING and STOPPING; SIGHUP reloads the rules
without dropping connections and keeps the old set when the new one is invalid."""

from __future__ import annotations

import json
import os
import shutil
import signal
import smtplib
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from tests.helpers import COMPANIES, MAILGATE, Home, mail, make_home

pytestmark = pytest.mark.e2e

DELTA = COMPANIES + """
[[company]]
name = "Delta GmbH"
domains = ["delta.de"]
language = "en"
plan = "standard"
"""


class NotifySocket:
    """The datagram socket systemd would listen on; a thread collects what arrives."""

    def __init__(self):
        self.folder = tempfile.mkdtemp(prefix="mg-notify.", dir="/tmp")
        self.path = str(Path(self.folder) / "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.messages: list[tuple[float, dict[str, str]]] = []
        self.arrived = threading.Condition()
        self.closed = False
        self.thread = threading.Thread(target=self._collect, daemon=True)
        self.thread.start()

    def _collect(self) -> None:
        while not self.closed:
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            fields = dict(line.split("=", 1) for line in data.decode().split("\n") if line)
            with self.arrived:
                self.messages.append((time.monotonic(), fields))
                self.arrived.notify_all()

    def wait_for(self, key: str, value: str | None = None, *, after: int = 0,
                 timeout: float = 20.0) -> tuple[int, dict[str, str]]:
        """The first message from index ``after`` on that has ``key`` (= ``value``)."""
        deadline = time.monotonic() + timeout
        with self.arrived:
            while True:
                for i, (_at, fields) in enumerate(self.messages[after:], after):
                    if key in fields and (value is None or fields[key] == value):
                        return i, fields
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {key}={value} after #{after}: {self.messages}")
                self.arrived.wait(left)

    def count(self, key: str, since: float) -> int:
        with self.arrived:
            return sum(key in f for at, f in self.messages if at >= since)

    def close(self) -> None:
        self.closed = True
        self.thread.join(timeout=2)
        self.sock.close()
        shutil.rmtree(self.folder, ignore_errors=True)


class Served:
    """A ``mailgate serve`` started as systemd would: NOTIFY_SOCKET and WATCHDOG_USEC."""

    def __init__(self, home: Home, notify: NotifySocket):
        self.home, self.notify = home, notify
        self.log_path = home.root / "serve.log"
        log = open(self.log_path, "ab")  # noqa: SIM115 - the daemon keeps it open
        env = dict(os.environ, PYTHONUNBUFFERED="1", NOTIFY_SOCKET=notify.path,
                   WATCHDOG_USEC="1000000")
        self.proc = subprocess.Popen([*MAILGATE, "-c", str(home.config), "serve"],
                                     stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                     cwd=home.root, env=env)

    def log(self) -> str:
        return self.log_path.read_text()

    def hup(self) -> dict[str, str]:
        """SIGHUP; the RELOADING=1 message, once READY=1 followed it."""
        start = len(self.notify.messages)
        self.proc.send_signal(signal.SIGHUP)
        i, reloading = self.notify.wait_for("RELOADING", "1", after=start)
        self.notify.wait_for("READY", "1", after=i + 1)
        return reloading

    def send(self, sender: str, subject: str) -> str:
        msg = mail(sender, subject)
        with smtplib.SMTP("127.0.0.1", self.home.port, timeout=10) as client:
            client.send_message(msg)
        return msg["Message-ID"]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)


@pytest.fixture
def notify():
    sock = NotifySocket()
    yield sock
    sock.close()


def start(home: Home, notify: NotifySocket) -> Served:
    """Start serve; READY=1 must come, and the SMTP port must accept right after it."""
    served = Served(home, notify)
    try:
        notify.wait_for("READY", "1")
    except AssertionError:
        served.proc.kill()
        raise AssertionError(served.log()) from None
    socket.create_connection(("127.0.0.1", home.port), timeout=2).close()
    return served


@pytest.fixture
def served(tmp_path, notify):
    served = start(make_home(tmp_path), notify)
    yield served
    if served.proc.poll() is None:
        served.proc.kill()
        served.proc.wait(timeout=10)


def company_of(home: Home, message_id: str) -> str | None:
    """The company of the ticket the message opened (straight from the database: the
    CLI refuses to run while the rules on disk are invalid)."""
    rows = home.query("SELECT company.name FROM spool JOIN ticket ON ticket.number = "
                      "spool.ticket_number LEFT JOIN company ON company.id = ticket.company_id "
                      "WHERE spool.message_id = ?", message_id)
    return rows[0][0] if rows else None


def test_ready_status_watchdog_then_stopping_and_exit_0(tmp_path, notify):
    home = make_home(tmp_path, extra='[logging]\nformat = "json"\n')
    served = start(home, notify)
    _i, ready = notify.wait_for("READY", "1")
    assert ready["STATUS"].startswith("processed 0, pending 0, outbox queued 0")

    since = time.monotonic()
    time.sleep(2.0)
    assert notify.count("WATCHDOG", since) >= 2

    message_id = served.send("anna@acme.it", "printer on fire")
    home.wait_settled(1)
    notify.wait_for("STATUS", after=0, timeout=10)
    status_after = len(notify.messages)
    served.send("anna@acme.it", "second")
    home.wait_settled(2)
    _i, status = notify.wait_for("STATUS", after=status_after, timeout=10)
    assert status["STATUS"].startswith("processed ")

    start_at = len(notify.messages)
    assert served.stop() == 0
    notify.wait_for("STOPPING", "1", after=start_at, timeout=5)

    lines = [json.loads(line) for line in served.log().splitlines() if line.startswith("{")]
    processed = [r for r in lines if r.get("message_id") == message_id]
    assert len(processed) == 1, served.log()
    row = processed[0]
    assert row["logger"] == "mailgate.pipeline" and row["level"] == "info"
    assert (row["door"], row["sender"], row["outcome"]) == ("smtp", "anna@acme.it", "created")
    assert isinstance(row["ticket"], int) and isinstance(row["ms"], float)


def test_sighup_reloads_companies_without_dropping_a_connection(served):
    home = served.home
    before = served.send("carl@delta.de", "who are we?")
    home.wait_settled(1)
    assert company_of(home, before) is None  # unknown sender: forwarded to sales

    client = smtplib.SMTP("127.0.0.1", home.port, timeout=10)
    client.ehlo()
    (home.root / "rules" / "companies.toml").write_text(DELTA)
    reloading = served.hup()
    usec = int(reloading["MONOTONIC_USEC"])
    assert 0 < usec <= time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert "reloaded" in served.log()

    msg = mail("carl@delta.de", "now we are customers")
    client.send_message(msg)  # the connection opened before the reload still works
    client.quit()
    home.wait_settled(2)
    assert company_of(home, msg["Message-ID"]) == "Delta GmbH"
    assert served.stop() == 0


def test_invalid_rules_on_sighup_keep_the_old_set(served):
    home = served.home
    (home.root / "rules" / "companies.toml").write_text(DELTA + "\nthis is = = not toml\n")
    served.hup()
    assert served.proc.poll() is None
    log = served.log()
    assert "reload refused" in log and "companies.toml" in log, log
    assert "ERROR mailgate.daemon" in log

    acme = served.send("anna@acme.it", "still served")
    delta = served.send("carl@delta.de", "not yet")
    home.wait_settled(2)
    assert company_of(home, acme) == "Acme Srl"
    assert company_of(home, delta) is None

    (home.root / "rules" / "companies.toml").write_text(DELTA)
    served.hup()  # fixed: the next reload takes it
    fixed = served.send("carl@delta.de", "now")
    home.wait_settled(3)
    assert company_of(home, fixed) == "Delta GmbH"
    assert served.stop() == 0
