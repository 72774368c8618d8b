"""Header and template injection: customer text (subject, display name, body, threading
headers), ticket fields made from it, and staff command arguments all reach our mails.
The header attack works if any of it adds a header or a recipient to a mail we send;
the template attack works if ``{{ … }}`` or ``{% … %}`` in it is evaluated anywhere.

Each test runs a whole conversation on the desk (new ticket, customer reply, staff
answer with commands) and then reads every mail in the outbox.
"""

from __future__ import annotations

import base64
import email
import email.policy

import pytest

from tests.desk import Desk
from tests.helpers import mail


def encoded(text: str) -> str:
    """``text`` as one RFC 2047 base64 word: CR, LF and the rest travel intact."""
    return f"=?utf-8?b?{base64.b64encode(text.encode()).decode()}?="


HEADER_VECTORS = {
    "CRLF in a q-encoded subject": "=?utf-8?q?Help=0D=0ABcc:_victim@evil.test=0D=0AX-Injected:_1?=",
    "CRLF and a blank line in a b-encoded subject":
        encoded("Help\r\nX-Injected: 2\r\n\r\nA new body"),
    "Unicode line breaks": encoded("Help\u2028X-Injected: 3\u0085X-Injected: 4\x0bX-Injected: 5"),
    "an encoded word inside an encoded word": encoded("=?utf-8?q?Hi=0D=0AX-Injected:_6?="),
    "a folded subject": "Help\r\n X-Injected: 7",
}
ALLOWED_HEADERS = {"from", "to", "subject", "date", "message-id", "reply-to", "in-reply-to",
                   "references", "auto-submitted", "x-loop", "mime-version", "content-type",
                   "content-transfer-encoding"}


def raw_mail(sender: str, subject: str, body: str, **headers: str) -> bytes:
    """A mail with header values written as given: the way an attacker's own client
    would, past any library that checks them."""
    lines = [f"From: {sender}", "To: hd@example.com", f"Subject: {subject}",
             *(f"{k.replace('_', '-')}: {v}" for k, v in headers.items()),
             "MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8"]
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


def conversation(desk: Desk, subject: str, name: str, body: str, command: str) -> None:
    """A new ticket, the customer's reply, and a staff answer with ``command``."""
    sender = f"{name} <mario@acme.it>"
    desk.deliver(raw_mail(sender, subject, body, Message_ID="<c1@acme.it>",
                          In_Reply_To=encoded("<a@b>\r\nX-Injected: 8")))
    desk.deliver(raw_mail(sender, f"Re: [#10000] {subject}", body, Message_ID="<c2@acme.it>"))
    desk.deliver(mail("alice@example.com", "Re: [#10000]", f"{command}\n\n{body}"))


def sent(desk: Desk) -> list[bytes]:
    """Every queued mail as bytes, oldest first."""
    return [raw for (raw,) in desk.home.query("SELECT message FROM outbox ORDER BY id")]


@pytest.fixture
def desk(tmp_path) -> Desk:
    """A desk whose staff mail needs no authentication."""
    return Desk(tmp_path, extra_config='auth = "none"\n')


@pytest.mark.parametrize("vector", list(HEADER_VECTORS))
def test_customer_text_never_adds_a_header_or_a_recipient(desk, vector):
    hostile = HEADER_VECTORS[vector]
    conversation(desk, hostile, hostile, "Please help.\r\nX-Injected: 9",
                 "#status open\n#cc add pal@acme.it\n#cc add x@acme.it,thief@evil.test\n"
                 "#assign alice@example.com\x0bBcc: thief@evil.test")
    desk.deliver(mail("alice@example.com", "Re: [#10000]", "#status waiting\n\nNoted."))
    mails = sent(desk)
    assert len(mails) >= 4, "the conversation did not produce its mails"
    for raw in mails:
        head = raw.split(b"\r\n\r\n", 1)[0]
        msg = email.message_from_bytes(head + b"\r\n\r\n", policy=email.policy.default)
        names = [n.lower() for n in msg]
        assert set(names) <= ALLOWED_HEADERS, f"{vector}: headers {names}"
        assert names.count("to") == 1 and len(msg["To"].addresses) == 1, msg["To"]
        assert "thief@evil.test" not in str(msg["To"])
        assert all("\n" not in v and "\r" not in v for v in map(str, msg.values()))
    told = {to for (to,) in desk.home.query('SELECT "to" FROM outbox')}
    assert not {t for t in told if "thief" in t}, told


TEMPLATE_TEXT = ("{{ 7*191 }} {% for x in range(3) %}LOOP{% endfor %} {{ config }} "
                 "{{ ''.__class__.__mro__ }} {% include 'en/auto_reply.txt.j2' %} {# gone #}")


def rendered_texts(desk: Desk) -> list[str]:
    """Subject and every text part of every mail, decoded."""
    texts = []
    for raw in sent(desk):
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        texts.append(str(msg["Subject"]))
        texts += [part.get_content() for part in msg.walk()
                  if part.get_content_type() in ("text/plain", "text/html")]
    return texts


def test_template_syntax_in_customer_and_staff_text_is_shown_as_written(desk):
    conversation(desk, "{{ 7*191 }} {% if 1 %}IF{% endif %}", "{{ 7*191 }}", TEMPLATE_TEXT,
                 "#status {{ 7*191 }}\n#eta {% if 1 %}tomorrow{% endif %}")
    texts = rendered_texts(desk)
    joined = "\n".join(texts)
    for evaluated in ("1337", "LOOPLOOPLOOP", "IF ", "<class", "Config"):
        assert evaluated not in joined, f"{evaluated!r} was rendered from customer text"
    # ... and the text is there, literally: staff read what the customer wrote.
    assert "{{ 7*191 }}" in joined and "{% for x in range(3) %}" in joined
    assert any("{{ 7*191 }}" in t and "[#10000]" in t for t in texts)  # a subject
    assert "#status {{ 7*191 }}" in joined  # the refused command, quoted back to staff


def test_cc_add_refuses_what_is_not_one_address(desk):
    desk.deliver(mail("mario@acme.it", "Printer"))
    desk.deliver(mail("alice@example.com", "Re: [#10000]",
                      "#cc add x@acme.it,thief@evil.test\n#cc add <y@acme.it>\n"))
    participants = desk.view(10000)["participants"]
    assert not [p for p in participants if "," in p or "<" in p or "evil" in p], participants
    assert any(m["Subject"].startswith("[#10000]") and "command" in m["Subject"].lower()
               for m in desk.outbox("alice@example.com"))  # refused, and told why
    desk.deliver(mail("alice@example.com", "Re: [#10000]", "#cc add <y@acme.it>\n"))
    assert "y@acme.it" in desk.view(10000)["participants"]  # one address in brackets is fine
