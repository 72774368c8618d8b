"""outbound.compose: template rendering (fallback, strictness) and the built message."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime
from email.header import Header
from email.message import EmailMessage
from email.utils import getaddresses
from pathlib import Path

import jinja2
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from mailgate.message import decode_text
from mailgate.outbound import mimewrite
from mailgate.outbound.compose import Envelope, Rendered, Templates, one_line
from mailgate.outbound.compose import build as compose

NOW = datetime(2025, 3, 4, 9, 30, tzinfo=UTC)


@pytest.fixture
def templates(tmp_path: Path) -> Templates:
    files = {
        "en/hello.subject.j2": "Hello {{ name }}\n",
        "en/hello.txt.j2": "Dear {{ name }},\nyou wrote: {{ text }}\n",
        "it/hello.subject.j2": "Ciao {{ name }}\n",
        "it/hello.txt.j2": "Caro {{ name }}\n",
        "en/rich.subject.j2": "Rich\n",
        "en/rich.txt.j2": "plain {{ text }}\n",
        "en/rich.html.j2": "<p>{{ text }}</p>\n",
        "en/strict.subject.j2": "{{ missing }}\n",
        "en/strict.txt.j2": "x\n",
        "en/count.subject.j2": "{{ range(n) | list | length }} of {{ n }}\n",
        "en/count.txt.j2": "{% for i in range(n) %}{{ cycle.next() }}{% endfor %}\n",
    }
    for name, body in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(body, encoding="utf-8")
    return Templates(tmp_path)


def build(env: Envelope, rendered: Rendered, now: datetime, attach: bytes | None = None
          ) -> EmailMessage:
    """The composed bytes as a mail client reads them (a mail store's line ends)."""
    raw = compose(env, rendered, now, attach).message
    assert b"\n" not in raw.replace(b"\r\n", b""), "every line ends in CRLF"
    return email.message_from_bytes(raw.replace(b"\r\n", b"\n"), policy=email.policy.default)


def envelope(**changes) -> Envelope:
    values = dict(from_="Help Desk <hd@example.com>", to="mario@acme.it",
                  message_id="<1.ab.mg01@example.com>", reply_to="hd@example.com",
                  x_loop="hd@example.com")
    return Envelope(**{**values, **changes})


def test_renders_requested_language(templates):
    rendered = templates.render("hello", "it", {"name": "Mario", "text": ""})
    assert rendered.subject == "Ciao Mario"
    assert rendered.text == "Caro Mario\n"
    # No .html.j2: the HTML part says the same as the text.
    assert "<p>Caro Mario</p>" in rendered.html and 'lang="it"' in rendered.html


def test_html_made_from_text_escapes_customer_text(templates):
    rendered = templates.render("hello", "de", {"name": "<b>Hans</b>", "text": "a\n\nb"})
    assert "&lt;b&gt;Hans&lt;/b&gt;" in rendered.html and "<b>" not in rendered.html


def test_missing_language_falls_back_to_english(templates):
    rendered = templates.render("hello", "de", {"name": "Hans", "text": "Hallo"})
    assert rendered.subject == "Hello Hans"
    assert rendered.text == "Dear Hans,\nyou wrote: Hallo\n"


def test_template_syntax_in_customer_text_stays_literal(templates):
    text = "{{ name }} {% if 1 %}x{% endif %}"
    rendered = templates.render("hello", "en", {"name": "Mario", "text": text})
    assert f"you wrote: {text}" in rendered.text


def test_templates_keep_jinjas_globals_and_each_render_its_own_context(templates):
    # The globals are merged into a context once per template (compose._Template):
    # they must still be there, and nothing of one render may reach the next.
    first = templates.render("count", "en", {"n": 3, "cycle": jinja2.utils.Cycler("a", "b")})
    assert (first.subject, first.text) == ("3 of 3", "aba\n")
    second = templates.render("count", "en", {"n": 1, "cycle": jinja2.utils.Cycler("z")})
    assert (second.subject, second.text) == ("1 of 1", "z\n")
    with pytest.raises(jinja2.UndefinedError, match="cycle"):
        templates.render("count", "en", {"n": 2})
    # A context variable named as a global wins, as in Jinja's own contexts.
    shadowed = templates.render("count", "en", {"n": 2, "range": lambda n: "abcde",
                                                "cycle": jinja2.utils.Cycler("q")})
    assert shadowed.subject == "5 of 2"


def test_unknown_variable_raises(templates):
    with pytest.raises(jinja2.UndefinedError, match="missing"):
        templates.render("strict", "en", {})


def test_html_template_makes_multipart_alternative(templates):
    rendered = templates.render("rich", "en", {"text": "<script>alert(1)</script>"})
    assert rendered.html == "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>\n"
    msg = build(envelope(), rendered, NOW)
    assert msg.get_content_type() == "multipart/alternative"
    plain = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert plain == "plain <script>alert(1)</script>\n"
    assert "&lt;script&gt;" in html


def test_build_sets_threading_and_robot_headers():
    env = envelope(in_reply_to="<orig@acme.it>", references=("<root@acme.it>", "<orig@acme.it>"))
    msg = build(env, Rendered("[#1] Ticket opened", "Hello\n", None), NOW)
    assert msg["From"] == "Help Desk <hd@example.com>"
    assert msg["To"] == "mario@acme.it"
    assert msg["Reply-To"] == "hd@example.com"
    assert msg["Message-ID"] == "<1.ab.mg01@example.com>"
    assert msg["In-Reply-To"] == "<orig@acme.it>"
    assert msg["References"] == "<root@acme.it> <orig@acme.it>"
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["X-Loop"] == "hd@example.com"
    assert msg["Subject"] == "[#1] Ticket opened"
    assert msg.get_content_type() == "text/plain"
    assert msg.get_content() == "Hello\n"


def test_subject_with_crlf_cannot_inject_headers():
    msg = build(envelope(), Rendered("hi\r\nBcc: evil@x.com", "body\n", None), NOW)
    assert msg["Bcc"] is None
    assert msg["Subject"] == "hi Bcc: evil@x.com"
    raw = compose(envelope(), Rendered("hi\r\nBcc: evil@x.com", "body\n", None), NOW).message
    assert b"\nBcc:" not in raw
    assert b"Subject: hi Bcc: evil@x.com\r\n" in raw


def test_rendered_subject_is_one_line(templates):
    rendered = templates.render("hello", "en", {"name": "a\r\nBcc: evil@x.com", "text": ""})
    assert rendered.subject == "Hello a Bcc: evil@x.com"


def test_non_ascii_subject_and_names_are_encoded_words():
    env = envelope(to='"Kovács, Péter" <peter@bp.hu>, evil@x.test')
    subject = "[#7] Нет интернета в офисе с самого утра, просьба помочь как можно скорее"
    raw = compose(env, Rendered(subject, "Здравствуйте\n", None), NOW).message
    head = raw.split(b"\r\n\r\n")[0]
    assert head.isascii() and b"=?utf-8?" in head
    assert all(len(line) <= 78 for line in head.split(b"\r\n"))
    msg = build(env, Rendered(subject, "Здравствуйте\n", None), NOW)
    assert msg["Subject"] == subject
    # One mailbox in To, however many the stored value held.
    assert [(a.display_name, a.addr_spec) for a in msg["To"].addresses] == [
        ("Kovács, Péter", "peter@bp.hu")]
    assert msg.get_content() == "Здравствуйте\n"
    assert msg["Content-Transfer-Encoding"] == "quoted-printable"


def test_long_lines_and_unicode_text_survive_the_wire():
    text = "x" * 5000 + "\nsecond line è\r\nthird\n"
    raw = compose(envelope(), Rendered("s", text, "<p>" + "y" * 3000 + "</p>"), NOW).message
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    msg = build(envelope(), Rendered("s", text, "<p>" + "y" * 3000 + "</p>"), NOW)
    assert msg.get_body(("plain",)).get_content() == text.replace("\r\n", "\n")
    assert msg.get_body(("html",)).get_content() == "<p>" + "y" * 3000 + "</p>"


def test_the_original_goes_along_as_it_arrived():
    original = (b"From: a@b.it\r\nSubject: =?utf-8?q?ciao?=\r\nMessage-ID: <o@b.it>\r\n\r\n"
                b"caff\xc3\xa8\r\n")
    msg = build(envelope(), Rendered("fwd", "see attached\n", "<p>see</p>"), NOW, original)
    assert msg.get_content_type() == "multipart/mixed"
    attached = next(msg.iter_attachments())
    assert attached.get_content_type() == "message/rfc822"
    assert attached.get_content()["Message-ID"] == "<o@b.it>"
    assert msg.get_body(("plain",)).get_content() == "see attached\n"
    # Byte for byte, 8-bit body included: nothing re-encoded on the way.
    assert original in compose(envelope(), Rendered("fwd", "see\n", None), NOW, original).message


def test_an_original_that_is_not_8bit_text_goes_as_a_file():
    original = b"From: a@b.it\r\n\r\nnul \x00 and bare\rCR and " + b"z" * 2000 + b"\r\n"
    msg = build(envelope(), Rendered("fwd", "see attached\n", None), NOW, original)
    attached = next(msg.iter_attachments())
    assert attached.get_filename() == "original.eml"
    assert attached.get_content() == original


@given(name=st.sampled_from(["Subject", "Date", "Message-ID", "In-Reply-To", "X-Loop"]),
       value=st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=90)
       .map(lambda v: " ".join(v.split())))
@example(name="Subject", value=" ".join(["word"] * 14))  # 78 octets: folded
@example(name="Subject", value=" ".join(["word"] * 13) + " wor")  # 76: not folded
def test_short_ascii_headers_are_written_as_the_stdlib_folds_them(name, value):
    # mimewrite writes a short ASCII header as it is; it must be what Header writes.
    folded = Header(value, "us-ascii", maxlinelen=mimewrite.FOLD_AT, header_name=name,
                    continuation_ws=" ").encode(splitchars=" ", linesep="\r\n")
    assert mimewrite.header(name, value) == f"{name}: {folded}\r\n".encode()


@given(value=st.text(min_size=1, max_size=300).map(one_line).filter(lambda v: not v.isascii()))
@example(value="Иван Петрович Сидоров-Кузнецов из бухгалтерии ООО «Ромашка», Москва")
@example(value="🙂" * 40 + " é")  # 4-octet characters at every word's end
def test_non_ascii_headers_are_encoded_words_that_decode_to_the_text(value):
    raw = (mimewrite.header("Subject", value) + mimewrite.address_header("To", value, "a@b.it")
           + b"\r\n")
    # 7-bit, lines folded with CRLF only (RFC 5322 §2.2.3): no bare CR or LF.
    assert raw.isascii() and b"\r" not in raw.replace(b"\r\n", b"")
    assert b"\n" not in raw.replace(b"\r\n", b"")
    subject_lines = raw.split(b"\r\nTo: ")[0].split(b"\r\n")
    assert all(len(line) <= mimewrite.FOLD_AT for line in subject_lines)
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg["Subject"] == value
    # The display name as RFC 2047 §6.2 decodes it (the white space between encoded
    # words dropped), as mail clients and our own parser do; the stdlib's modern
    # address parser keeps it as a space.
    to = email.message_from_bytes(raw, policy=email.policy.compat32)["To"]
    [(name, addr)] = getaddresses([" ".join(to.split())])
    assert (decode_text(name), addr) == (value, "a@b.it")
