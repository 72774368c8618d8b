"""/metrics and /healthz: figures a sysadmin graphs, and the answer a balancer needs."""

from __future__ import annotations

import smtplib
import urllib.request
from datetime import timedelta

from mailgate import spool
from mailgate.metrics import Metrics, _answer
from tests.desk import Desk
from tests.helpers import free_port, mail, make_home, serving


def test_metrics_count_what_the_database_holds(tmp_path):
    desk = Desk(tmp_path)
    desk.deliver(mail("mario@acme.it", "One"))
    desk.deliver(mail("mario@acme.it", "Re: [#10000] One"))
    desk.deliver(mail("robot@acme.it", "Auto", headers={"Auto-Submitted": "auto-replied"}))
    desk.deliver(mail("x@acme.it", "Loop", headers={"X-Loop": "hd@example.com"}), door="imap")
    metrics = Metrics(desk.svc)
    metrics.observe(0.02)
    text = metrics.exposition().decode()
    assert 'mailgate_received_total{door="smtp"} 3.0' in text
    assert 'mailgate_received_total{door="imap"} 1.0' in text
    assert 'mailgate_processed_total{outcome="created"} 1.0' in text
    assert 'mailgate_processed_total{outcome="threaded"} 1.0' in text
    assert 'mailgate_processed_total{outcome="loop"} 1.0' in text
    assert "mailgate_tickets_created_total 1.0" in text
    assert 'mailgate_outbox_messages{state="queued"} 3.0' in text
    assert 'mailgate_spool_messages{state="ignored"} 2.0' in text
    assert "mailgate_processing_seconds_count 1.0" in text
    assert "mailgate_sla_at_risk 0.0" in text


def test_healthz_is_503_when_the_spool_is_stuck(tmp_path):
    desk = Desk(tmp_path)
    metrics = Metrics(desk.svc)
    assert _answer(metrics, b"/healthz") == ("200 OK", b"ok\n", "text/plain")
    spool.intake(desk.svc.engine, mail("mario@acme.it", "Stuck").as_bytes(), door="smtp",
                 mail_from="mario@acme.it", rcpt_tos=["hd@example.com"],
                 now=desk.clock() - timedelta(hours=1))
    status, body, _ = _answer(metrics, b"/healthz")
    assert status.startswith("503") and b"spool stuck" in body
    assert _answer(metrics, b"/nope")[0].startswith("404")


def test_serve_answers_metrics_and_healthz_over_http(tmp_path):
    port = free_port()
    home = make_home(tmp_path, extra=f"\n[metrics]\nenabled = true\nport = {port}\n")
    with serving(home):
        with smtplib.SMTP("127.0.0.1", home.port, timeout=10) as client:
            client.send_message(mail("mario@acme.it", "Scraped"))
        home.wait_settled(1)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
            text = answer.read().decode()
        assert 'mailgate_received_total{door="smtp"} 1.0' in text
        assert "mailgate_processing_seconds_count 1.0" in text
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as answer:
            assert (answer.status, answer.read()) == (200, b"ok\n")
