"""``mailgate deliver`` as an MTA runs it: message on stdin, the exit status is the answer."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.helpers import MAILGATE, mail, make_home


@pytest.fixture
def home(tmp_path):
    return make_home(tmp_path)


def deliver(home, raw: bytes, *args: str, env: dict | None = None):
    return subprocess.run([*MAILGATE, "-c", str(home.config), "deliver", *args], input=raw,
                          capture_output=True, timeout=60, env={**os.environ, **(env or {})})


def test_delivered_mail_is_a_ticket_and_its_answer_is_sent_without_the_daemon(home):
    msg = mail("mario@acme.it", "Piped in")
    proc = deliver(home, msg.as_bytes(), "--sender", "mario@acme.it",
                   "--recipient", "hd@example.com")
    assert proc.returncode == 0, proc.stderr
    [ticket] = home.json("tickets", "list")
    assert ticket["subject"] == "Piped in" and ticket["company"] == "Acme Srl"
    [row] = home.json("spool", "list")
    assert row["door"] == "pipe" and row["state"] == "processed"
    assert {m["To"] for m in home.outbox_mails()} == {"mario@acme.it", "staff@example.com"}


def test_the_same_message_piped_twice_is_one_ticket(home):
    raw = mail("mario@acme.it", "Twice").as_bytes()
    assert deliver(home, raw).returncode == 0
    second = deliver(home, raw)
    assert second.returncode == 0 and b"already received" not in second.stderr
    assert len(home.json("tickets", "list")) == 1
    assert len(home.mails_to("mario@acme.it")) == 1


def test_postfix_environment_names_the_recipient(home):
    raw = mail("mario@acme.it", "Alias").as_bytes()
    refused = deliver(home, raw, env={"ORIGINAL_RECIPIENT": "someone@else.org"})
    assert refused.returncode == 67
    assert refused.stderr.decode().strip() == "mailgate: no mailbox here for someone@else.org"
    assert deliver(home, raw, env={"ORIGINAL_RECIPIENT": "support@example.com"}).returncode == 0


def test_null_sender_is_a_bounce_and_opens_nothing(home):
    proc = deliver(home, mail("someone@acme.it", "Undelivered").as_bytes(), "--sender", "")
    assert proc.returncode == 0
    [row] = home.json("spool", "list")
    assert row["state"] == "ignored" and row["outcome"].startswith("bounce")
    assert home.json("tickets", "list") == []


@pytest.mark.parametrize("raw, code, reason", [
    (b"", 65, "empty message"),
    (b"x" * 200_001, 65, "message too big"),
])
def test_unreadable_or_oversized_input_is_a_data_error(home, raw, code, reason):
    proc = deliver(home, raw)
    assert proc.returncode == code
    assert reason in proc.stderr.decode()
    assert len(proc.stderr.decode().strip().splitlines()) == 1


def test_bad_configuration_exits_78_and_bad_usage_64(home, tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text("[smtp]\nport = 'x'\n")
    proc = subprocess.run([*MAILGATE, "-c", str(broken), "deliver"], input=b"x",
                          capture_output=True, timeout=60)
    assert proc.returncode == 78
    assert "smtp.port" in proc.stderr.decode()
    usage = deliver(home, b"x", "--no-such-flag")
    assert usage.returncode == 64 and b"No such option" in usage.stderr


def test_locked_database_exits_75_and_a_retry_is_processed_once(home):
    # An installation in use: companies and staff are in the database already, so the
    # lock is met where the message is stored.
    assert deliver(home, mail("anna@beta.hu", "Earlier mail").as_bytes()).returncode == 0
    raw = mail("mario@acme.it", "While locked").as_bytes()
    with home.database_unavailable():
        proc = deliver(home, raw)
    assert proc.returncode == 75, proc.stderr
    [line] = proc.stderr.decode().strip().splitlines()
    # SQLite's lock is met where the message is stored, PostgreSQL's refusal at connect
    assert line.startswith(("mailgate: cannot store the message now (OperationalError: ",
                            "mailgate: database unavailable: "))
    assert home.query("SELECT count(*) FROM spool")[0][0] == 1
    assert deliver(home, raw).returncode == 0  # the MTA's retry
    assert len(home.json("tickets", "list")) == 2
