"""``mailgate deliver`` with the daemon running: the message goes over the daemon's
local LMTP socket (handoff.py), and the exit status is still the whole answer.

To prove that the daemon, not deliver, stored a message, deliver runs with a
database URL that cannot work: only a hand-off can then exit 0.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess

import pytest

from tests.helpers import MAILGATE, mail, serving, start_serve

pytestmark = pytest.mark.e2e

NO_DATABASE = {"MAILGATE_DATABASE_URL": "sqlite:////nonexistent/folder/mailgate.db"}


def deliver(home, raw: bytes, *args: str, env: dict | None = None):
    return subprocess.run([*MAILGATE, "-c", str(home.config), "deliver", *args], input=raw,
                          capture_output=True, timeout=120, cwd=home.root,
                          env={**os.environ, **(env or {})})


def socket_of(home):
    return home.root / "var" / "deliver.sock"


def test_the_daemon_stores_and_processes_what_deliver_hands_over(home):
    msg = mail("mario@acme.it", "Handed over")
    with serving(home):
        assert socket_of(home).is_socket()
        assert stat.S_IMODE(socket_of(home).stat().st_mode) == 0o660
        proc = deliver(home, msg.as_bytes(), "--sender", "mario@acme.it",
                       "--recipient", "support@example.com", env=NO_DATABASE)
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr == b""
        home.wait_settled(1)
    assert not socket_of(home).exists(), "the daemon left its socket behind"
    [row] = home.json("spool", "list")
    assert row["door"] == "pipe" and row["state"] == "processed"
    [(mail_from, rcpts)] = home.query("SELECT mail_from, rcpt_tos FROM spool")
    assert mail_from == "mario@acme.it" and "support@example.com" in rcpts
    [ticket] = home.json("tickets", "list")
    assert ticket["subject"] == "Handed over" and ticket["company"] == "Acme Srl"
    assert [m["Subject"] for m in home.mails_to("mario@acme.it")] == [
        f"[#{ticket['number']}] Ticket aperto: Handed over"]


def test_the_daemons_refusals_become_exit_statuses(home):
    big = mail("mario@acme.it", "Too big", body="line of text\n" * 20_000)  # over 200,000 B
    with serving(home):
        nobody = deliver(home, mail("mario@acme.it", "Lost").as_bytes(), "--sender",
                         "mario@acme.it", "--recipient", "else@example.org", env=NO_DATABASE)
        # deliver reads up to its own limit; the daemon's (the config's) decides
        too_big = deliver(home, big.as_bytes(), "--sender", "mario@acme.it", "--recipient",
                          "hd@example.com",
                          env={**NO_DATABASE, "MAILGATE_SMTP_MAX_MESSAGE_SIZE": "1000000"})
        null_sender = deliver(home, mail("someone@acme.it", "Undelivered").as_bytes(),
                              "--sender", "", "--recipient", "hd@example.com",
                              env=NO_DATABASE)
        home.wait_settled(1)
    assert nobody.returncode == 67
    assert nobody.stderr.decode().strip() == "mailgate: no mailbox here for else@example.org"
    assert too_big.returncode == 65
    assert "Message too big" in too_big.stderr.decode()
    assert null_sender.returncode == 0, null_sender.stderr
    [row] = home.json("spool", "list")
    assert row["state"] == "ignored" and row["outcome"].startswith("bounce")
    assert home.json("tickets", "list") == []


def test_a_daemon_that_cannot_store_means_retry_later_and_the_retry_counts_once(home):
    raw = mail("mario@acme.it", "While locked").as_bytes()
    args = ("--sender", "mario@acme.it", "--recipient", "hd@example.com")
    with serving(home):
        assert deliver(home, mail("anna@beta.hu", "Earlier").as_bytes(), *args).returncode == 0
        home.wait_settled(1)
        with home.database_unavailable():
            locked = deliver(home, raw, *args, env=NO_DATABASE)
        assert locked.returncode == 75, locked.stderr
        assert locked.stderr.decode().startswith("mailgate: 4.3.0 Cannot store the message")
        assert deliver(home, raw, *args, env=NO_DATABASE).returncode == 0  # the MTA's retry
        assert deliver(home, raw, *args, env=NO_DATABASE).returncode == 0  # and once more
        home.wait_settled(2)
    assert sorted(t["subject"] for t in home.json("tickets", "list")) == [
        "Earlier", "While locked"]


def test_what_the_daemon_will_not_take_deliver_stores_itself(home):
    # aiosmtpd refuses a line over 1,000 octets (RFC 5321 §4.5.3.1.6); the pipe door
    # takes it as it is, so deliver falls back to storing and processing it.
    head = mail("mario@acme.it", "Long line").as_bytes().split(b"\n\n")[0]
    long_line = head + b"\n\n" + b"word " * 400 + b"\n"
    with serving(home):
        proc = deliver(home, long_line, "--sender", "mario@acme.it",
                       "--recipient", "hd@example.com")
        assert proc.returncode == 0, proc.stderr
        home.wait_settled(1)
    [ticket] = home.json("tickets", "list")
    assert ticket["subject"] == "Long line"
    assert len(home.mails_to("mario@acme.it")) == 1


def test_a_socket_left_by_a_killed_daemon_is_no_obstacle(home):
    proc = start_serve(home)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert socket_of(home).exists()  # nothing removed it
    raw = mail("mario@acme.it", "After the crash").as_bytes()
    args = ("--sender", "mario@acme.it", "--recipient", "hd@example.com")
    alone = deliver(home, raw, *args)
    assert alone.returncode == 0, alone.stderr  # stored and processed by deliver itself
    assert home.json("spool", "list")[0]["state"] == "processed"
    with serving(home):  # the next daemon replaces the stale socket
        second = deliver(home, mail("anna@beta.hu", "Next").as_bytes(), "--sender",
                         "anna@beta.hu", "--recipient", "hd@example.com", env=NO_DATABASE)
        assert second.returncode == 0, second.stderr
        home.wait_settled(2)
    assert len(home.json("tickets", "list")) == 2
