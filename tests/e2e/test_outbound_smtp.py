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
    """Keeps every message it receives, with its envelope."""

    def __init__(self):
        self.received: list[tuple[str, list[str], email.message.EmailMessage]] = []

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), msg))
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
