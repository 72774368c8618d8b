"""Outbound through ``transport = "smtp"`` into a real aiosmtpd sink on loopback."""

from __future__ import annotations

import email
import email.policy
import smtplib

import pytest
from aiosmtpd.controller import Controller

from mailgate.outbound import send
from tests.desk import Desk
from tests.helpers import free_port, mail, make_home, serving

pytestmark = pytest.mark.e2e


class Sink:
    """Keeps every message it receives, with its envelope and the session (the
    client's address and port) it came in; refuses the recipients in ``refused``."""

    def __init__(self):
        self.received: list[tuple[str, list[str], email.message.EmailMessage]] = []
        self.sessions: list[tuple[str, int]] = []
        self.refused: set[str] = set()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refused:
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), msg))
        self.sessions.append(session.peer)
        return "250 2.0.0 stored"


@pytest.fixture
def sink():
    handler = Sink()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller
    controller.stop()


def relay_config(port: int) -> str:
    return f'[outbound]\ntransport = "smtp"\nhost = "127.0.0.1"\nport = {port}\n'


def test_auto_reply_and_staff_mail_reach_the_relay(tmp_path, sink):
    home = make_home(tmp_path, extra=relay_config(sink.port))
    msg = mail("mario@acme.it", "Server room too hot")
    with serving(home):
        with smtplib.SMTP("127.0.0.1", home.port, timeout=10) as client:
            client.send_message(msg)
        home.wait_settled(1)
    by_rcpt = {rcpts[0]: (mail_from, m) for mail_from, rcpts, m in sink.handler.received}
    assert set(by_rcpt) == {"mario@acme.it", "staff@example.com"}
    mail_from, reply = by_rcpt["mario@acme.it"]
    assert mail_from == "hd@example.com"
    assert reply["In-Reply-To"] == msg["Message-ID"] and "[#10000]" in reply["Subject"]
    assert home.json("outbox", "list")[0]["state"] == "sent"


def test_a_batch_goes_over_one_relay_session(tmp_path, sink):
    desk = Desk(tmp_path, extra_config=relay_config(sink.port))
    for n in range(3):
        desk.deliver(mail(f"user{n}@acme.it", f"Request {n}"))
    cfg = desk.svc.config.outbound
    assert send.drain(desk.svc.engine, send.make_transport(cfg), cfg, desk.clock()) == 6
    assert len(sink.handler.received) == 6
    assert len(set(sink.handler.sessions)) == 1, "a connection for each mail"
    assert {r["state"] for r in desk.home.json("outbox", "list")} == {"sent"}


def test_a_refused_mail_fails_alone_and_the_batch_goes_on(tmp_path, sink):
    desk = Desk(tmp_path, extra_config=relay_config(sink.port))
    for n in range(3):
        desk.deliver(mail(f"user{n}@acme.it", f"Request {n}"))
    sink.handler.refused.add("user1@acme.it")
    cfg = desk.svc.config.outbound
    send.drain(desk.svc.engine, send.make_transport(cfg), cfg, desk.clock())
    rows = {r["to"]: r for r in desk.home.json("outbox", "list")}
    assert rows["user1@acme.it"]["state"] == "queued"
    assert "Recipients" in rows["user1@acme.it"]["last_error"]
    assert all(r["state"] == "sent" for to, r in rows.items() if to != "user1@acme.it")
    assert len(sink.handler.received) == 5
    # The refusal dropped the session: the mails after it went in a second one.
    assert len(set(sink.handler.sessions)) == 2


def test_relay_down_is_retried_with_backoff_then_delivered(tmp_path, sink):
    closed = free_port()
    desk = Desk(tmp_path, extra_config=relay_config(closed))
    desk.deliver(mail("mario@acme.it", "Retry me"))
    cfg = desk.svc.config.outbound
    down = send.make_transport(cfg)
    assert send.drain(desk.svc.engine, down, cfg, desk.clock()) == 2
    rows = desk.home.json("outbox", "list")
    assert {r["state"] for r in rows} == {"queued"}
    assert all(r["attempts"] == 1 and "Connection refused" in r["last_error"] for r in rows)

    # Not due again before the backoff has passed.
    assert send.drain(desk.svc.engine, down, cfg, desk.clock()) == 0
    desk.clock.advance(seconds=31)
    cfg.port = sink.port
    assert send.drain(desk.svc.engine, send.make_transport(cfg), cfg, desk.clock()) == 2
    assert {r["state"] for r in desk.home.json("outbox", "list")} == {"sent"}
    assert len(sink.handler.received) == 2


def test_relay_refusing_past_max_age_marks_the_mail_failed(tmp_path):
    desk = Desk(tmp_path, extra_config=relay_config(free_port()) + 'max_age = "1h"\n')
    desk.deliver(mail("mario@acme.it", "Give up on me"))
    cfg = desk.svc.config.outbound
    transport = send.make_transport(cfg)
    for _ in range(10):
        send.drain(desk.svc.engine, transport, cfg, desk.clock())
        desk.clock.advance(minutes=20)
    rows = desk.home.json("outbox", "list")
    assert {r["state"] for r in rows} == {"failed"}
    assert all(2 <= r["attempts"] <= 5 for r in rows)
