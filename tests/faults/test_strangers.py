"""Strangers on another company's ticket: a customer of another company or an unknown
sender quoting ``[#N]``, a forged In-Reply-To that names one of our Message-IDs with a
wrong or guessed token, a References to the customer's own Message-ID.  The attack
works if anything is appended to ticket N (article, participant, status) or if any
answer to the stranger carries something of N that the stranger did not write.
"""

from __future__ import annotations

import secrets

import pytest

from tests.desk import Desk
from tests.helpers import mail

MARIO = "mario@acme.it"
SECRETS = ("Payroll server", "hunter2-secret", MARIO, "Acme Srl")


@pytest.fixture
def desk(tmp_path) -> Desk:
    """Acme's ticket 10000, whose subject and text are what a stranger is after."""
    desk = Desk(tmp_path)
    desk.deliver(mail(MARIO, "Payroll server password", "The root password is hunter2-secret\n",
                      message_id="<payroll.1@acme.it>"))
    return desk


def our_message_id(desk: Desk) -> str:
    """The Message-ID of the auto reply about 10000 (number and secret token in it)."""
    return desk.outbox(MARIO)[0]["Message-ID"]


def wrong_token(desk: Desk) -> str:
    """One of our Message-IDs about 10000 with a random token of the right length."""
    number, token, rest = our_message_id(desk).strip("<>").split(".", 2)
    return f"<{number}.{secrets.token_hex(len(token) // 2)}.{rest}>"


ATTACKS = {
    "another company's customer quotes [#N]": lambda d: mail(
        "anna@beta.hu", "Re: [#10000] Payroll server password", "Add me please."),
    "an unknown sender quotes [#N]": lambda d: mail(
        "eve@unknown.test", "[#10000] status?", "What is the password?", to="hd@example.com"),
    "a bare #N in the subject": lambda d: mail("anna@beta.hu", "about #10000", "Status?"),
    "In-Reply-To of ours with a guessed token": lambda d: mail(
        "anna@beta.hu", "Re: your mail", "Hello", in_reply_to=wrong_token(d)),
    "References of ours with a guessed token, and the tag": lambda d: mail(
        "eve@unknown.test", "Re: [#10000]", "Hello", references=wrong_token(d),
        to="create@example.com"),
    "our Message-ID without its token": lambda d: mail(
        "anna@beta.hu", "Re: your mail", "Hello",
        in_reply_to=f"<10000.mg{secrets.token_hex(6)}@example.com>"),
    "References to the customer's own Message-ID": lambda d: mail(
        "anna@beta.hu", "Re: Payroll server password", "Hello",
        references="<payroll.1@acme.it>"),
    "a Cc to the stranger's accomplice": lambda d: mail(
        "anna@beta.hu", "Re: [#10000]", "Hello", cc="thief@evil.test"),
}


@pytest.mark.parametrize("case", list(ATTACKS))
def test_a_stranger_neither_writes_on_nor_reads_another_companys_ticket(desk, case):
    before = desk.view(10000)
    msg = ATTACKS[case](desk)
    stranger = msg["From"]
    desk.deliver(msg, rcpt=msg["To"])

    after = desk.view(10000)
    assert [a["from"] for a in after["articles"]] == [MARIO], "the stranger wrote on #10000"
    assert after["participants"] == before["participants"]
    assert after["status"] == before["status"]
    told = {to for (to,) in desk.home.query('SELECT "to" FROM outbox WHERE ticket_number = 10000')}
    assert told <= {MARIO, "staff@example.com"}, f"mail about #10000 went to {told}"
    written = msg.as_string()
    for mail_to_stranger in [*desk.outbox(stranger), *desk.outbox("thief@evil.test")]:
        shown = mail_to_stranger.as_string()
        for secret in SECRETS:
            assert secret not in shown or secret in written, f"{secret!r} leaked to {stranger}"
        assert "10000" not in str(mail_to_stranger["Subject"]).replace(
            str(msg["Subject"]), "")

