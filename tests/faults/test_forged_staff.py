"""Forged staff mail: the From of a staff member without the authentication that
``[staff] auth`` asks for.  The attack works if any command applies (status, priority,
assignee, participants, time, merge) or if anything reaches the customer.

Each forgery is a raw mail as it reaches mailgate behind the border MTA, which puts its
own ``Authentication-Results`` on top (RFC 8601 §5); everything below it is the
attacker's.  The dkim cases sign with real keys, published in a fake DNS.
"""

from __future__ import annotations

import email.policy

import dkim
import dkim.dnsplug
import pytest

from tests.desk import Desk
from tests.helpers import mail
from tests.unit.test_staffauth import rsa_keypair

MX = "mx.example.com"
ALICE = "alice@example.com"
MARIO = "mario@acme.it"
# Every command that changes the ticket, and a text that would go to the customer.
COMMANDS = ("#status closed\n#priority P1\n#assign alice@example.com\n#cc add thief@evil.test\n"
            "#time 8h\n#category system\n\nPlease pay the invoice at https://evil.test/pay\n")
GOOD = f"{MX}; dkim=pass header.d=example.com"


def forged(top: list[str] | None = None, below: list[str] | None = None,
           sender: str = ALICE, body: str = COMMANDS) -> bytes:
    """A command mail from ``sender``: ``below`` written by the attacker, ``top`` added
    by our border MTA."""
    headers = {"Authentication-Results": below[0]} if below else {}
    msg = mail(sender, "Re: [#10000] Printer", body, headers=headers)
    for value in (below or [])[1:]:
        msg["Authentication-Results"] = value
    raw = msg.as_bytes(policy=email.policy.SMTP)
    return "".join(f"Authentication-Results: {v}\r\n" for v in top or []).encode() + raw


def ticket_state(desk: Desk) -> dict:
    """What a command could change on ticket 10000."""
    shown = desk.view(10000)
    return {k: shown.get(k) for k in ("status", "priority", "category", "queue", "assignee",
                                      "participants", "time_spent_hours", "eta",
                                      "merged_into", "links", "approval", "waiting_reason")}


def assert_nothing_applied(desk: Desk, before: dict) -> None:
    """The ticket as it was, no command event, no mail about it but the auto reply, the
    staff notice and the sender's command_error; the forged article kept internal."""
    assert ticket_state(desk) == before
    kinds = {e["kind"] for e in desk.view(10000)["events"]}
    assert not kinds & {"status", "priority", "assign", "assignee", "cc", "time", "category",
                        "merge", "link", "staff_mail"}, kinds
    about = desk.home.query("SELECT template FROM outbox WHERE ticket_number = 10000")
    assert {t for (t,) in about} <= {"auto_reply", "staff_new_ticket", "command_error"}, about
    assert [m["Subject"] for m in desk.outbox(MARIO)] == [desk.outbox(MARIO)[0]["Subject"]]
    assert not desk.outbox("thief@evil.test")
    forged_articles = [a for a in desk.view(10000)["articles"] if a["from"] != MARIO]
    assert all(a["internal"] for a in forged_articles), "a refused staff mail must stay internal"


@pytest.fixture
def desk(tmp_path) -> Desk:
    """A desk with ``auth = "authres"`` and Mario's ticket 10000."""
    desk = Desk(tmp_path, extra_config=f'authserv_id = "{MX}"\n')
    desk.deliver(mail(MARIO, "Printer"))
    return desk


AUTHRES_FORGERIES = {
    "no Authentication-Results": ([], []),
    "a foreign authserv-id says pass": ([], ["mx.evil.test; dkim=pass header.d=example.com"]),
    "ours says none, forged passes below it": (
        [f"{MX}; dkim=none"], [GOOD, f"{MX}; spf=pass smtp.mailfrom=example.com"]),
    "ours says fail, a copy of ours below": ([f"{MX}; dkim=fail header.d=example.com"], [GOOD]),
    "dkim pass of another domain": ([f"{MX}; dkim=pass header.d=evil.test"], []),
    "dkim pass of a look-alike domain": ([f"{MX}; dkim=pass header.d=example.com.evil.test"],
                                         []),
    "spf pass of the attacker's envelope": ([f"{MX}; spf=pass smtp.mailfrom=evil.test"], []),
    "spf pass of the HELO only": ([f"{MX}; spf=pass smtp.helo=example.com"], []),
    "encoded authserv-id on top": ([f"=?utf-8?q?{MX}?=; dkim=pass header.d=example.com"], []),
    "our id inside a comment": ([f"(by {MX}) mx.evil.test; dkim=pass header.d=example.com"], []),
}


@pytest.mark.parametrize("case", list(AUTHRES_FORGERIES))
def test_forged_staff_mail_applies_no_command(desk, case):
    top, below = AUTHRES_FORGERIES[case]
    before = ticket_state(desk)
    result = desk.deliver(forged(top, below), mail_from="bounce@evil.test")
    assert result.outcome.startswith("staff mail refused"), result.outcome
    assert_nothing_applied(desk, before)


@pytest.mark.parametrize("sender", [
    "=?utf-8?q?alice=40example.com?= <mallory@evil.test>",
    '"alice@example.com" <mallory@evil.test>',
    "alice@example.com <mallory@evil.test>",  # an unquoted display name: read either way
])
def test_a_staff_address_as_display_name_applies_no_command(desk, sender):
    # The attacker signs with their own domain, and the border MTA says so.
    before = ticket_state(desk)
    raw = forged([f"{MX}; dkim=pass header.d=evil.test"], sender=sender)
    desk.deliver(raw, mail_from="mallory@evil.test")
    assert_nothing_applied(desk, before)


# --- auth = "dkim": signatures made with real keys -------------------------------------

@pytest.fixture(scope="module")
def keys():
    """Key pairs of example.com and of the attacker's evil.test."""
    return {"example.com": rsa_keypair(1), "evil.test": rsa_keypair(2)}


@pytest.fixture
def dkim_desk(tmp_path, monkeypatch, keys) -> Desk:
    """``auth = "dkim"`` with both domains' keys in a fake DNS (the seam the staff
    authentication tests use: dnspython's lookup inside dkimpy)."""
    records = {f"sel._domainkey.{d}.": b"v=DKIM1; k=rsa; p=" + pair[1]
               for d, pair in keys.items()}
    monkeypatch.setattr(dkim.dnsplug, "_get_txt", lambda name, timeout=5: records.get(name))
    desk = Desk(tmp_path, extra_config='auth = "dkim"\n')
    desk.deliver(mail(MARIO, "Printer"))
    return desk


def signed(raw: bytes, domain: str, keys, **kw) -> bytes:
    """``raw`` with a DKIM signature of ``domain`` on top."""
    return dkim.sign(raw, b"sel", domain.encode(), keys[domain][0], **kw) + raw


DKIM_FORGERIES = {
    "signed by the attacker's domain": lambda raw, keys: signed(raw, "evil.test", keys),
    "text added below an l= limit": lambda raw, keys: signed(
        raw.replace(COMMANDS.replace("\n", "\r\n").encode(), b"Hello\r\n"), "example.com",
        keys, length=True).replace(b"Hello\r\n", b"Hello\r\n" + COMMANDS.encode()),
    "a good signature, then the commands changed": lambda raw, keys: signed(
        raw, "example.com", keys).replace(b"#priority P1", b"#priority P2"),
}


@pytest.mark.parametrize("case", list(DKIM_FORGERIES))
def test_forged_dkim_staff_mail_applies_no_command(dkim_desk, keys, case):
    before = ticket_state(dkim_desk)
    raw = DKIM_FORGERIES[case](forged(), keys)
    result = dkim_desk.deliver(raw, mail_from="bounce@evil.test")
    assert result.outcome.startswith("staff mail refused"), result.outcome
    assert_nothing_applied(dkim_desk, before)


def test_a_properly_signed_mail_applies_once_and_its_replay_nothing(dkim_desk, keys):
    """The control (without it the forgeries above could pass by refusing everything),
    then the same signed mail sent again: a duplicate, nothing applies twice."""
    raw = signed(forged(body="#priority P1\n#time 1h\n"), "example.com", keys)
    assert dkim_desk.deliver(raw).outcome == "staff mail: 2 command(s)"
    shown = dkim_desk.view(10000)
    assert (shown["priority"], shown["time_spent_hours"]) == ("P1", 1.0)
    assert dkim_desk.deliver(raw) is None
    assert dkim_desk.view(10000)["time_spent_hours"] == 1.0
    assert len(dkim_desk.view(10000)["events"]) == len(shown["events"])
