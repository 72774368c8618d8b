"""mailgate behind a real Postfix on loopback, configured as a sysadmin would.

Two ways in, each checked the way a sysadmin would: the tickets (``mailgate tickets
list``), the spool rows (``mailgate spool list``) and Postfix's own log.

* LMTP: ``transport_maps`` sends ``example.com`` to ``lmtp:inet:127.0.0.1:PORT`` where
  ``mailgate serve`` listens with ``protocol = "lmtp"``.
* pipe: ``transport_maps`` sends ``example.com`` to ``gwpipe:``, a pipe(8) transport
  (``flags=DRhu null_sender= user=nobody argv=WRAPPER ${sender} ${recipient}``, one
  recipient per delivery) whose wrapper runs ``mailgate deliver``; its exit status
  tells Postfix to retry (75) or bounce (67).

Mail for other domains (the bounces to the customer) goes to an aiosmtpd sink.
Postfix, the homes and the sink live under /tmp folders, not pytest's tmp_path: users
postfix and nobody cannot enter that one.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from tests import dbs
from tests.helpers import Home, free_port, mail, make_home, serving
from tests.servers.postfix import Postfix

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not Postfix.available(),
                       reason="postfix is not installed (apt-get install postfix)"),
    pytest.mark.skipif(os.geteuid() != 0,
                       reason="the Postfix test instance needs root (it runs the pipe as nobody)"),
]

CUSTOMER = "mario@acme.it"
TIMEOUT = 30.0


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def scratch():
    """``scratch(prefix)``: a fresh 0755 folder under /tmp, removed at the end."""
    made: list[str] = []

    def make(prefix: str) -> Path:
        path = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
        os.chmod(path, 0o755)
        made.append(path)
        return Path(path)

    yield make
    for path in made:
        shutil.rmtree(path, ignore_errors=True)


def _nobody_runs(python: str) -> subprocess.CompletedProcess:
    return subprocess.run(["runuser", "-u", "nobody", "--", python, "-c", "import mailgate.cli"],
                          capture_output=True, text=True, timeout=60, cwd="/")


# Test sessions running at once share the folders' modes: each registers here, and the
# last one to finish restores them (else the first to finish would lock the others out).
_GRANTS = Path("/tmp/mailgate-tests.nobody-o+x.json")


@contextmanager
def _grants():
    """The shared record ``{"holders": [pid], "modes": {folder: original mode}}``."""
    with open(_GRANTS.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state = (json.loads(_GRANTS.read_text()) if _GRANTS.exists()
                 else {"holders": [], "modes": {}})
        state["holders"] = [pid for pid in state["holders"] if _alive(pid)]
        yield state
        if state["holders"]:
            _GRANTS.write_text(json.dumps(state))
        else:
            _GRANTS.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def python_for_nobody():
    """This interpreter, made runnable by user nobody (the pipe's user) for the module.

    A pyenv interpreter lives under /root, mode 0700, so nobody cannot even start it.
    When ``runuser -u nobody -- PYTHON`` fails, the folders on the interpreter's path
    that lack it get o+x (enter only, no listing), and their original modes are put
    back when the last test session using them ends.
    """
    python = sys.executable
    paths = [Path(python), Path(os.path.realpath(python))]
    folders = sorted({d for p in paths for d in p.parents}, key=lambda d: len(d.parts))
    with _grants() as state:
        state["holders"].append(os.getpid())
        if _nobody_runs(python).returncode != 0:
            for folder in folders:
                mode = stat.S_IMODE(folder.stat().st_mode)
                if not mode & stat.S_IXOTH:
                    state["modes"].setdefault(str(folder), mode)
                    os.chmod(folder, mode | stat.S_IXOTH)
    try:
        check = _nobody_runs(python)
        if check.returncode != 0:
            pytest.fail(f"user nobody cannot run {python} (needed by the pipe): {check.stderr}")
        yield python
    finally:
        with _grants() as state:
            state["holders"] = [pid for pid in state["holders"] if pid != os.getpid()]
            if not state["holders"]:
                for folder, mode in state.pop("modes").items():
                    # A checkout removed since (a killed session left its record).
                    with suppress(FileNotFoundError):
                        os.chmod(folder, mode)


class _Collect:
    """aiosmtpd handler keeping every mail: (envelope sender, recipients, bytes)."""

    def __init__(self) -> None:
        self.mails: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope):
        self.mails.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 2.0.0 Ok: kept"


@dataclass
class Sink:
    """The RELAYHOST: where Postfix sends mail for other domains (bounces, here)."""

    port: int
    handler: _Collect

    @property
    def relayhost(self) -> str:
        return f"[127.0.0.1]:{self.port}"

    def wait_bounce(self, to: str, about: str) -> bytes:
        """The delivery status notification to ``to`` that mentions ``about``."""
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            for sender, rcpts, content in self.handler.mails:
                if sender in ("", "<>") and to in rcpts and about.encode() in content:
                    return content
            time.sleep(0.1)
        raise AssertionError(f"no bounce to {to} about {about}: {self.handler.mails}")


@pytest.fixture(scope="module")
def sink():
    handler = _Collect()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(),
                            server_hostname="sink.test")
    controller.start()
    try:
        yield Sink(controller.port, handler)
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def postfixes():
    """``start(dir, **kw)``: a started Postfix; every one is stopped at the end."""
    started: list[Postfix] = []

    def start(dir: Path, **kw) -> Postfix:
        server = Postfix()
        started.append(server)
        server.start(dir, free_port(), **kw)
        return server

    yield start
    for server in started:
        server.stop()


@dataclass
class Chain:
    """A mailgate home behind a Postfix instance."""

    home: Home
    postfix: Postfix


@pytest.fixture(scope="module")
def lmtp_chain(scratch, sink, postfixes):
    """Postfix relaying example.com over LMTP to a running ``mailgate serve``."""
    home = make_home(scratch("mg-home."), protocol="lmtp")
    with serving(home):
        postfix = postfixes(scratch("mg-pf.") / "pf", relayhost=sink.relayhost,
                            transports={"example.com": f"lmtp:inet:127.0.0.1:{home.port}"})
        yield Chain(home, postfix)


@pytest.fixture(scope="module")
def pipe_chain(scratch, sink, postfixes, python_for_nobody):
    """Postfix delivering example.com through the pipe to ``mailgate deliver`` (as nobody).

    The home, its database (with its -wal/-shm) and the outbound Maildir under var/
    belong to nobody, who runs the pipe.
    """
    root = scratch("mg-home.")
    home = make_home(root)
    # as on an installation in service: the rules are already in the database (any
    # command does that, here one with nothing to do), so a pipe delivery only writes
    # its spool row
    home.cli("spool", "retry")
    subprocess.run(["chown", "-R", "nobody:", str(root)], check=True)
    pf_dir = scratch("mg-pf.") / "pf"
    pf_dir.mkdir()
    wrapper = pf_dir / "mailgate-deliver"
    wrapper.write_text(f"""#!/bin/sh
# Postfix pipe(8) -> mailgate deliver, as user nobody; argv: SENDER RECIPIENT
# mailgate's answers pass through: 0 delivered, 65/67 bounce, 75/78 retry later.
# Any other status (python missing or not executable, killed) must not bounce: 75.
cd '{root}' || exit 75
'{python_for_nobody}' -m mailgate -c '{home.config}' deliver --sender "$1" --recipient "$2"
rc=$?
case $rc in 0|65|67|75|78) exit $rc ;; esac
echo "mailgate deliver ended with status $rc: will retry" >&2
exit 75
""")
    wrapper.chmod(0o755)
    postfix = postfixes(pf_dir, relayhost=sink.relayhost, pipe_cmd=wrapper,
                        transports={"example.com": "gwpipe:"})
    yield Chain(home, postfix)


# ---------------------------------------------------------------- helpers


def spool_rows(home: Home, msg) -> list[dict]:
    """``mailgate spool list`` rows for ``msg``'s Message-ID."""
    mid = msg["Message-ID"].strip("<>")
    return [r for r in home.json("spool", "list") if (r["message_id"] or "").strip("<>") == mid]


def wait_processed(home: Home, msg, timeout: float = TIMEOUT) -> dict:
    """The spool row of ``msg`` once it left the pending state."""
    deadline = time.monotonic() + timeout
    while True:
        rows = spool_rows(home, msg)
        if rows and rows[0]["state"] != "pending":
            return rows[0]
        if time.monotonic() > deadline:
            raise AssertionError(f"{msg['Subject']!r} not processed: {rows}")
        time.sleep(0.1)


def tickets_about(home: Home, subject: str) -> list[dict]:
    return [t for t in home.json("tickets", "list") if t["subject"] == subject]


# ---------------------------------------------------------------- LMTP


def test_lmtp_each_message_is_one_ticket_and_postfix_logs_sent(lmtp_chain):
    home, postfix = lmtp_chain.home, lmtp_chain.postfix
    single = mail(CUSTOMER, "Printer down (via Postfix LMTP)")
    double = mail(CUSTOMER, "VPN down (to two of our addresses)", cc="support@example.com")
    q1 = postfix.send(single, CUSTOMER, ["hd@example.com"])
    q2 = postfix.send(double, CUSTOMER, ["hd@example.com", "support@example.com"])

    sent = [postfix.wait_log(rf"{q}: to=<{rcpt}>.*status=sent")[0]
            for q, rcpt in [(q1, "hd@example.com"), (q2, "hd@example.com"),
                            (q2, "support@example.com")]]
    for line in sent:
        assert "postfix/lmtp[" in line
        assert f"relay=127.0.0.1[127.0.0.1]:{home.port}" in line
        assert "250 2.0.0 Ok: queued as" in line

    for msg in (single, double):
        row = wait_processed(home, msg)
        assert row["door"] == "lmtp" and row["state"] == "processed"
        assert row["mail_from"] == CUSTOMER
        [ticket] = tickets_about(home, msg["Subject"])
        assert ticket["company"] == "Acme Srl" and ticket["number"] == row["ticket"]
    [row] = spool_rows(home, double)
    assert sorted(row["rcpt_tos"]) == ["hd@example.com", "support@example.com"]


def test_lmtp_unknown_address_is_bounced_by_postfix(lmtp_chain, sink):
    home, postfix = lmtp_chain.home, lmtp_chain.postfix
    msg = mail(CUSTOMER, "To a wrong address", to="nobody@example.com")
    queue_id = postfix.send(msg, CUSTOMER, ["nobody@example.com"])

    [line] = postfix.wait_log(rf"{queue_id}: to=<nobody@example.com>.*status=bounced")
    assert "dsn=5.1.1" in line
    assert "550 5.1.1 <nobody@example.com>: no such mailbox here" in line
    assert "in reply to RCPT TO command" in line
    dsn = sink.wait_bounce(CUSTOMER, "nobody@example.com")
    assert b"5.1.1" in dsn
    assert spool_rows(home, msg) == []


# ---------------------------------------------------------------- pipe


def test_pipe_database_locked_is_deferred_then_delivered_once(pipe_chain):
    home, postfix = pipe_chain.home, pipe_chain.postfix
    msg = mail(CUSTOMER, "Mail server down (while the database is locked)")
    with home.database_unavailable():
        queue_id = postfix.send(msg, CUSTOMER, ["hd@example.com"])
        # each try waits out deliver's 5 s busy timeout, then exits 75
        deferred = postfix.wait_log(rf"{queue_id}: to=<hd@example.com>.*status=deferred")
        assert "relay=gwpipe" in deferred[0] and "dsn=4.3.0" in deferred[0]
        assert ("mailgate: cannot store the message now" in deferred[0]  # SQLite locked
                or "mailgate: database unavailable" in deferred[0])  # PostgreSQL refusing
        if not dbs.POSTGRESQL:  # a database refusing connections cannot be read either
            assert spool_rows(home, msg) == []
    postfix.flush()

    [line] = postfix.wait_log(rf"{queue_id}: to=<hd@example.com>.*status=sent")
    assert "relay=gwpipe" in line and "delivered via gwpipe service" in line
    postfix.wait_log(rf"{queue_id}: removed")
    assert queue_id not in postfix.queue()
    # deliver exits 0 once the ticket is made and the answer written: nothing to wait for
    [row] = spool_rows(home, msg)
    assert row["door"] == "pipe" and row["state"] == "processed"
    assert row["mail_from"] == CUSTOMER and row["rcpt_tos"] == ["hd@example.com"]
    [ticket] = tickets_about(home, msg["Subject"])
    assert ticket["company"] == "Acme Srl" and ticket["number"] == row["ticket"]
    replies = [m for m in home.mails_to(CUSTOMER) if m["In-Reply-To"] == msg["Message-ID"]]
    assert len(replies) == 1
    assert f"[#{ticket['number']}]" in replies[0]["Subject"]
    # what the pipe's flags=DRhu add to the message that mailgate stores
    [(raw,)] = home.query("SELECT raw FROM spool_raw WHERE spool_id = ?", row["id"])
    head = raw.split(b"\n\n", 1)[0].splitlines()
    assert head[:2] == [b"Return-Path: <mario@acme.it>", b"Delivered-To: hd@example.com"]


def test_pipe_unknown_recipient_exits_67_and_postfix_bounces(pipe_chain, sink):
    home, postfix = pipe_chain.home, pipe_chain.postfix
    msg = mail(CUSTOMER, "To nobody we know", to="else@example.com")
    queue_id = postfix.send(msg, CUSTOMER, ["else@example.com"])

    [line] = postfix.wait_log(rf"{queue_id}: to=<else@example.com>.*status=bounced")
    assert "relay=gwpipe" in line and "dsn=5.1.1" in line
    assert "mailgate: no mailbox here for else@example.com" in line
    dsn = sink.wait_bounce(CUSTOMER, "else@example.com")
    assert b"5.1.1" in dsn
    assert spool_rows(home, msg) == []


def test_pipe_mail_to_two_of_our_addresses_is_one_ticket(pipe_chain):
    home, postfix = pipe_chain.home, pipe_chain.postfix
    msg = mail(CUSTOMER, "Backup failed (hd and support)", cc="support@example.com")
    queue_id = postfix.send(msg, CUSTOMER, ["hd@example.com", "support@example.com"])

    # one recipient per pipe call (for Delivered-To): two deliveries of one message
    for rcpt in ("hd@example.com", "support@example.com"):
        postfix.wait_log(rf"{queue_id}: to=<{rcpt}>.*relay=gwpipe.*status=sent")
    [row] = spool_rows(home, msg)
    assert row["state"] == "processed"
    assert len(tickets_about(home, msg["Subject"])) == 1
    replies = [m for m in home.mails_to(CUSTOMER) if m["In-Reply-To"] == msg["Message-ID"]]
    assert len(replies) == 1


def test_pipe_null_sender_reaches_mailgate_as_a_bounce(pipe_chain):
    """With ``null_sender=`` the pipe passes ``""`` (not MAILER-DAEMON) for ``<>``."""
    home, postfix = pipe_chain.home, pipe_chain.postfix
    msg = mail("postmaster@acme.it", "Undelivered Mail Returned to Sender")
    queue_id = postfix.send(msg, "", ["hd@example.com"])

    postfix.wait_log(rf"{queue_id}: to=<hd@example.com>.*relay=gwpipe.*status=sent")
    [row] = spool_rows(home, msg)
    assert row["mail_from"] == "" and row["state"] == "ignored"
    assert row["outcome"].startswith("bounce")
    assert tickets_about(home, msg["Subject"]) == []


def test_pipe_hands_the_mail_to_a_daemon_running_as_the_pipes_user(pipe_chain,
                                                                    python_for_nobody):
    """The pipe and ``serve`` as one user (nobody, as ``user=mailgate`` in production):
    deliver gives the mail to the daemon over its socket, and the daemon processes it."""
    home, postfix = pipe_chain.home, pipe_chain.postfix
    log_path = home.root / "serve-nobody.log"
    with open(log_path, "wb") as log:
        daemon = subprocess.Popen([python_for_nobody, "-m", "mailgate", "-c", str(home.config),
                                   "serve"], user="nobody", group="nogroup", extra_groups=[],
                                  cwd=home.root, stdout=log,
                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        wait_for_socket(home.root / "var" / "deliver.sock", daemon, log_path)
        msg = mail(CUSTOMER, "Printer jammed (through the daemon)")
        queue_id = postfix.send(msg, CUSTOMER, ["hd@example.com"])
        postfix.wait_log(rf"{queue_id}: to=<hd@example.com>.*relay=gwpipe.*status=sent")
        row = wait_processed(home, msg)
    finally:
        daemon.terminate()
        assert daemon.wait(timeout=30) == 0, log_path.read_text()
    assert row["door"] == "pipe" and row["state"] == "processed"
    # The daemon, not deliver, processed it: its own log says so.
    mid = msg["Message-ID"]
    assert re.search(rf"message-id={re.escape(mid)} door=pipe .*outcome='created'",
                     log_path.read_text())
    [ticket] = tickets_about(home, msg["Subject"])
    [reply] = [m for m in home.mails_to(CUSTOMER) if m["In-Reply-To"] == mid]
    assert reply["Subject"].startswith(f"[#{ticket['number']}] ")


def wait_for_socket(path: Path, daemon: subprocess.Popen, log_path: Path) -> None:
    """Wait until ``serve`` listens on deliver's socket."""
    deadline = time.monotonic() + TIMEOUT
    while not path.is_socket():
        assert daemon.poll() is None, log_path.read_text()
        assert time.monotonic() < deadline, f"no {path}: {log_path.read_text()}"
        time.sleep(0.05)
