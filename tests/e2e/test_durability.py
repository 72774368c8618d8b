"""Durability of the SMTP door: what got a 250 is processed exactly once, whatever
happens to the process, and SIGTERM drains instead of dropping mail.

SIGKILL at random moments of floods, repeated, with figures: tests/faults/test_kill.py.
"""

from __future__ import annotations

import signal
import smtplib
import socket
import time

import pytest

from tests.helpers import flood, mail, serving, start_serve
from tests.ledger import assert_each_once

pytestmark = pytest.mark.e2e


def acknowledged_flood(home, count: int, connections: int = 4, prefix: str = "") -> set[str]:
    """The acknowledged Message-IDs of a flood that a kill may cut short."""
    return flood([home], count, connections=connections, prefix=prefix, tolerate_errors=True)


def test_kill_between_acknowledgement_and_processing_loses_nothing(home):
    proc = start_serve(home, "--intake-only")
    acked = acknowledged_flood(home, 20, connections=2)
    assert len(acked) == 20
    assert home.query("SELECT count(*) FROM spool WHERE state = 'pending'")[0][0] == 20
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)

    with serving(home):
        home.wait_settled(20)
        assert_each_once(home, acked)
        assert len(home.mails_to("staff@example.com")) == 20


def test_sigterm_finishes_the_message_being_received_then_exits_0(home):
    proc = start_serve(home)
    msg = mail("slow@acme.it", "sent slowly")
    data = msg.as_bytes().replace(b"\n", b"\r\n")
    with socket.create_connection(("127.0.0.1", home.port), timeout=10) as sock:
        reader = sock.makefile("rb")
        reader.readline()  # greeting
        for command in (b"EHLO test", b"MAIL FROM:<slow@acme.it>", b"RCPT TO:<hd@example.com>",
                        b"DATA"):
            sock.sendall(command + b"\r\n")
            line = reader.readline()
            while line[3:4] == b"-":
                line = reader.readline()
        sock.sendall(data[: len(data) // 2])
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        # No new connections once draining.
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", home.port), timeout=1).close()
        sock.sendall(data[len(data) // 2:] + b"\r\n.\r\n")
        reply = reader.readline()
    assert reply.startswith(b"250 2.0.0"), reply
    assert proc.wait(timeout=30) == 0
    [(state,)] = home.query("SELECT state FROM spool WHERE message_id = ?", msg["Message-ID"])
    assert state in ("pending", "processed")

    with serving(home):  # whatever was left pending is processed at the next start
        home.wait_settled(1)
        assert home.query("SELECT state FROM spool")[0][0] == "processed"


def test_locked_database_answers_451_and_the_retry_is_processed_once(home):
    msg = mail("mario@acme.it", "while the database is locked")
    data = msg.as_bytes().replace(b"\n", b"\r\n")
    with serving(home):
        # e.g. another process holds SQLite's write lock longer than the busy timeout
        with home.database_unavailable(), smtplib.SMTP("127.0.0.1", home.port,
                                                       timeout=30) as client:
            client.ehlo()
            client.mail("mario@acme.it")
            client.rcpt("hd@example.com")
            code, reply = client.data(data)
        assert (code, reply[:5]) == (451, b"4.3.0"), reply
        # The sending MTA retries later, as 4xx tells it to.
        with smtplib.SMTP("127.0.0.1", home.port, timeout=30) as client:
            client.sendmail("mario@acme.it", ["hd@example.com"], data)
        home.wait_settled(1)
        assert_each_once(home, {msg["Message-ID"]})
