"""Staff authentication through the whole pipeline (SPEC §6 ``[staff] auth``).

End to end in the sense that matters here: raw mails with the headers a border MTA
and a signing MTA really write go through intake, parse, classify, identify, thread,
authenticate, commands and notify, on the in-process desk (tests/desk.py: real
pipeline, SQLite, fake clock, no sockets, so no ``e2e`` marker is needed to skip it).
The unit tests of each verdict are in tests/unit/test_staffauth.py; these check what
an operator sees: a mail that fails authentication changes nothing, reaches no
customer, is kept as an internal article with a ``staff_auth_failed`` event, and its
sender is told why.
"""

from __future__ import annotations

import email
import email.policy

import dkim
import dkim.dnsplug
import pytest
from sqlmodel import select

from mailgate.db import session_scope
from mailgate.models import Outbox
from mailgate.views import show_ticket
from tests.desk import Desk
from tests.helpers import mail
from tests.unit.test_staffauth import rsa_keypair

MX = "mx.example.com"
ALICE = "alice@example.com"
MARIO = "mario@acme.it"
PASS = f"{MX}; dkim=pass header.d=example.com; spf=pass smtp.mailfrom=example.com"


def view(desk: Desk) -> dict:
    with session_scope(desk.svc.engine) as session:
        return show_ticket(session, 10000)


def templates_to(desk: Desk, address: str) -> list[str]:
    return [t for (t,) in desk.home.query('SELECT template FROM outbox WHERE "to" = ?', address)]


def command_error(desk: Desk) -> str:
    """The text of the one command_error alice got."""
    with session_scope(desk.svc.engine) as session:
        [row] = session.exec(select(Outbox).where(Outbox.to == ALICE,
                                                  Outbox.template == "command_error"))
    msg = email.message_from_bytes(row.message, policy=email.policy.default)
    assert msg["Subject"].startswith("[#10000] ")
    return msg.get_body(preferencelist=("plain",)).get_content()


def open_ticket(desk: Desk) -> None:
    assert desk.deliver(mail(MARIO, "Printer")).outcome == "created"


def staff_mail(body: str = "#status open\n\nWe are on it.\n", sender: str = ALICE, **kw):
    return mail(sender, "Re: [#10000] Printer", body, **kw)


def received(msg, *results: str) -> bytes:
    """``msg`` as our border MTA hands it on: Authentication-Results prepended on top."""
    top = "".join(f"Authentication-Results: {value}\r\n" for value in results)
    return top.encode() + msg.as_bytes(policy=email.policy.SMTP)


def assert_refused(desk: Desk, reason: str) -> None:
    """Nothing applied, nothing to the customer, kept internal, alice told why."""
    shown = view(desk)
    assert shown["status"] == "new"
    assert shown["articles"][-1]["from"] == ALICE
    assert shown["articles"][-1]["internal"] is True
    [failed] = [e for e in shown["events"] if e["kind"] == "staff_auth_failed"]
    assert reason in failed["detail"]
    assert templates_to(desk, MARIO) == ["auto_reply"]
    body = command_error(desk)
    assert "could not be authenticated" in body
    assert f"Reason: {failed['detail']}" in body


# --- authres ------------------------------------------------------------------------------

@pytest.fixture
def desk(tmp_path) -> Desk:
    desk = Desk(tmp_path, extra_config=f'authserv_id = "{MX}"\n')
    open_ticket(desk)
    return desk


def test_authres_pass_applies_the_commands(desk):
    result = desk.deliver(received(staff_mail(), PASS))
    assert result.outcome == "staff mail: 1 command(s)"
    assert view(desk)["status"] == "open"
    assert templates_to(desk, MARIO) == ["auto_reply", "status_open", "reply"]
    [done] = [e for e in view(desk)["events"] if e["kind"] == "staff_mail"]
    assert done["detail"].startswith(f"DKIM signature of example.com verified by {MX}")


def test_without_authentication_results_nothing_applies(desk):
    desk.deliver(staff_mail().as_bytes(policy=email.policy.SMTP))
    assert_refused(desk, f"no Authentication-Results from {MX}")


def test_a_foreign_authserv_id_is_not_trusted(desk):
    desk.deliver(received(staff_mail(), "mx.evil.test; dkim=pass header.d=example.com"))
    assert_refused(desk, f"no Authentication-Results from {MX}")


def test_a_forged_lower_header_of_ours_does_not_count(desk):
    # The sender wrote "pass" into the mail; our MTA then put its own "fail" on top.
    forged = staff_mail(headers={"Authentication-Results": PASS})
    desk.deliver(received(forged, f"{MX}; dkim=fail header.d=example.com"))
    assert_refused(desk, "dkim=fail (d=example.com)")


def test_a_forged_staff_from_sends_nothing_to_the_customer(desk):
    forged = staff_mail("Your printer licence expired: pay at https://evil.test/pay\n",
                        headers={"Reply-To": "billing@evil.test"})
    raw = received(forged, f"{MX}; dkim=none; spf=fail smtp.mailfrom=evil.test")
    result = desk.deliver(raw, mail_from="bounce@evil.test")
    assert result.outcome.startswith("staff mail refused")
    assert_refused(desk, "spf=fail (mailfrom evil.test)")
    assert "reply" not in [t for (t,) in desk.home.query("SELECT template FROM outbox")]


# --- dkim ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def key() -> tuple[bytes, bytes]:
    """A test key pair of example.com (pure-Python RSA of the unit tests)."""
    return rsa_keypair(1)


@pytest.fixture
def dkim_desk(tmp_path, monkeypatch, key) -> Desk:
    """auth = "dkim", with example.com's key published under selector ``sel``.

    The pipeline calls ``staffauth.authenticate`` without ``dns_lookup``, so dkimpy uses
    its default ``dnsfunc``, ``dkim.dnsplug.get_txt``.  That default is bound when
    ``DKIM.verify`` is defined, so replacing ``get_txt`` would change nothing; but
    ``get_txt`` calls the module global ``dkim.dnsplug._get_txt`` (dnspython's resolver)
    at each lookup, with the name as text.  Replacing that resolver is the narrowest
    seam: everything from the raw mail to dkimpy's key parsing runs for real.
    """
    records = {"sel._domainkey.example.com.": b"v=DKIM1; k=rsa; p=" + key[1]}
    monkeypatch.setattr(dkim.dnsplug, "_get_txt", lambda name, timeout=5: records.get(name))
    desk = Desk(tmp_path, extra_config='auth = "dkim"\n')
    open_ticket(desk)
    return desk


def signed(msg, key) -> bytes:
    raw = msg.as_bytes(policy=email.policy.SMTP)
    return dkim.sign(raw, b"sel", b"example.com", key[0]) + raw


def test_dkim_signed_staff_mail_applies(dkim_desk, key):
    result = dkim_desk.deliver(signed(staff_mail(), key))
    assert result.outcome == "staff mail: 1 command(s)"
    assert view(dkim_desk)["status"] == "open"
    assert templates_to(dkim_desk, MARIO) == ["auto_reply", "status_open", "reply"]
    [done] = [e for e in view(dkim_desk)["events"] if e["kind"] == "staff_mail"]
    assert done["detail"].startswith("DKIM signature of example.com verified;")


def test_dkim_tampered_body_is_refused(dkim_desk, key):
    raw = signed(staff_mail(), key).replace(b"#status open", b"#status closed")
    dkim_desk.deliver(raw)
    assert_refused(dkim_desk, "DKIM signature of example.com failed: body hash mismatch")
    assert view(dkim_desk)["articles"][-1]["text"].startswith("#status closed")


def test_dkim_unsigned_staff_mail_is_refused(dkim_desk):
    dkim_desk.deliver(staff_mail().as_bytes(policy=email.policy.SMTP))
    assert_refused(dkim_desk, "the mail carries no DKIM signature")
