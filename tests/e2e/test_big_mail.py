"""A mail with a 30 MB attachment through a real ``mailgate serve`` over SMTP.

A message this size takes the paths small mail never does: DATA received into one
buffer, the spool row and the attachment written to SQLite in pieces, the base64 body
decoded straight from the raw bytes.  What a sysadmin would check: the spool holds
the message byte for byte as sent (dot-stuffing undone), the ticket lists the file
with its size and sha256, and the bytes kept in the database are the file's.
"""

from __future__ import annotations

import hashlib
import random
import smtplib
from email.message import EmailMessage

import pytest

from tests.helpers import make_home, serving

pytestmark = pytest.mark.e2e

SIZE = 30 * 1024 * 1024


def big_mail() -> tuple[EmailMessage, bytes]:
    """A customer's request with a 30 MB file; the file's bytes."""
    data = random.Random(30).randbytes(SIZE)
    msg = EmailMessage()
    msg["From"], msg["To"] = "Mario Rossi <mario@acme.it>", "hd@example.com"
    msg["Subject"], msg["Message-ID"] = "Tutti i log", "<big-30mb@acme.it>"
    # Lines that start with a dot are dot-stuffed on the wire (RFC 5321 §4.5.2).
    msg.set_content("I log della settimana in allegato.\n.bashrc era cambiato\n..e anche questo\n")
    msg.add_attachment(data, maintype="application", subtype="zip", filename="logs.zip")
    return msg, data


def test_a_30_mb_attachment_arrives_intact(tmp_path, monkeypatch):
    monkeypatch.setenv("MAILGATE_SMTP_MAX_MESSAGE_SIZE", str(64 * 1024 * 1024))
    monkeypatch.setenv("MAILGATE_TICKETS_MAX_ATTACHMENT_SIZE", str(SIZE))
    home = make_home(tmp_path)
    msg, data = big_mail()
    raw = msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))
    with serving(home):
        with smtplib.SMTP("127.0.0.1", home.port, timeout=120) as client:
            assert client.sendmail("mario@acme.it", ["hd@example.com"], raw) == {}
        home.wait_settled(1, timeout=120)

    [(stored, state, number)] = home.query(
        "SELECT raw, state, ticket_number FROM spool JOIN spool_raw ON spool_id = id "
        "WHERE message_id = ?", msg["Message-ID"])
    assert (state, stored == raw) == ("processed", True)
    digest = hashlib.sha256(data).hexdigest()
    ticket = home.json("tickets", "show", str(number))
    [article] = ticket["articles"]
    assert ".bashrc era cambiato\n..e anche questo" in article["text"]
    assert [(f["filename"], f["size"], f["sha256"]) for f in article["attachments"]] == [
        ("logs.zip", SIZE, digest)]
    [(kept,)] = home.query("SELECT data FROM blob WHERE sha256 = ?", digest)
    assert hashlib.sha256(kept).hexdigest() == digest
