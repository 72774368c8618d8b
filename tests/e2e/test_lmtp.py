"""The LMTP door (RFC 2033): one reply per recipient after DATA, over a real socket."""

from __future__ import annotations

import smtplib

import pytest

from tests.helpers import mail, make_home, serving

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def lmtp_home(tmp_path_factory):
    home = make_home(tmp_path_factory.mktemp("lmtp"), protocol="lmtp")
    with serving(home):
        yield home


def lmtp_exchange(home, msg, rcpts):
    """LHLO, MAIL, RCPT…, DATA; returns the RCPT replies and the per-recipient replies."""
    client = smtplib.LMTP("127.0.0.1", home.port, timeout=10)
    try:
        client.ehlo_or_helo_if_needed()
        client.mail("mario@acme.it")
        rcpt_replies = {r: client.rcpt(r) for r in rcpts}
        client.putcmd("data")
        code, _ = client.getreply()
        assert code == 354
        client.send(msg.as_bytes().replace(b"\n", b"\r\n") + b"\r\n.\r\n")
        accepted = [r for r, (c, _) in rcpt_replies.items() if c == 250]
        data_replies = [client.getreply() for _ in accepted]
        return rcpt_replies, dict(zip(accepted, data_replies, strict=True))
    finally:
        client.close()


def test_one_reply_per_accepted_recipient_and_one_ticket(lmtp_home):
    msg = mail("mario@acme.it", "Via LMTP", to="hd@example.com", cc="support@example.com")
    rcpts, replies = lmtp_exchange(
        lmtp_home, msg, ["hd@example.com", "nobody@example.com", "support@example.com"])
    assert rcpts["nobody@example.com"][0] == 550
    assert rcpts["nobody@example.com"][1].startswith(b"5.1.1")
    assert set(replies) == {"hd@example.com", "support@example.com"}
    for rcpt, (code, text) in replies.items():
        assert code == 250 and text.startswith(b"2.0.0") and rcpt.encode() in text
    lmtp_home.wait_settled(1)
    [row] = lmtp_home.json("spool", "list")
    assert row["door"] == "lmtp" and row["state"] == "processed"
    assert len(lmtp_home.json("tickets", "list")) == 1


def test_too_big_is_refused_for_every_recipient(lmtp_home):
    big = mail("mario@acme.it", "Huge via LMTP")
    big.set_content(("z" * 76 + "\n") * 3000)
    _rcpts, replies = lmtp_exchange(lmtp_home, big, ["hd@example.com", "support@example.com"])
    assert [code for code, _ in replies.values()] == [552, 552]
    assert all(text.startswith(b"5.3.4") for _, text in replies.values())


def test_locked_database_is_451_for_every_recipient_then_accepted_once(lmtp_home):
    msg = mail("mario@acme.it", "LMTP while locked")
    with lmtp_home.database_unavailable():
        _rcpts, replies = lmtp_exchange(lmtp_home, msg, ["hd@example.com", "support@example.com"])
    assert [(code, text[:5]) for code, text in replies.values()] == [(451, b"4.3.0")] * 2
    _rcpts, replies = lmtp_exchange(lmtp_home, msg, ["hd@example.com", "support@example.com"])
    assert [code for code, _ in replies.values()] == [250, 250]
    lmtp_home.wait_settled(len(lmtp_home.query("SELECT id FROM spool")))
    rows = lmtp_home.query("SELECT state FROM spool WHERE message_id = ?", msg["Message-ID"])
    assert rows == [("processed",)]
