"""quotes over talon's fixtures (corpus talon/, see its SOURCE.md): real replies from
Gmail, Outlook, Apple Mail, Yahoo, AOL, Hotmail, Thunderbird, Android, Sparrow…

Expected replies, as talon's own tests use them: ``X_reply_text`` beside ``X.eml`` where
it exists, else exactly "Hello"; the HTML replies all say "Hi. I am fine. Thanks, Alex"
above a quote of "Hello! How are you? Thanks, Sasha."
"""

from __future__ import annotations

import re

import pytest

from mailgate.message import parse
from mailgate.quotes import html_new_part, new_part
from tests.conftest import corpus_root

TALON = corpus_root() / "talon"
if not TALON.is_dir():
    pytest.skip(f"talon corpus not found at {TALON} (set $MAILGATE_CORPUS to the folder that "
                "holds talon/)", allow_module_level=True)

REPLIES = sorted(TALON.glob("standard_replies/*.eml"))
WITH_EXPECTED = [p for p in REPLIES if p.with_name(f"{p.stem}_reply_text").is_file()]
TALON_DEFAULT = [p for p in REPLIES if p not in WITH_EXPECTED]  # talon expects "Hello"

#: Where we differ from talon on purpose.
XFAIL = {
    "sparrow": "talon keeps the '-- ' signature in its expected reply; we strip it "
               "(RFC 3676 §4.3): ours is 'Hello'",
}

QUOTE_MARKER = re.compile(
    r"^(?:>|.*\b(?:wrote|написал|írta|ha scritto|schrieb)\b.*:$|-+ ?Original Message"
    r"|From:|Da:|Von:|Feladó:|От:)",
    re.MULTILINE | re.IGNORECASE,
)


def _text(path) -> str:
    return parse(path.read_bytes()).text


def _param(path):
    reason = XFAIL.get(path.stem)
    marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
    return pytest.param(path, id=path.stem, marks=marks)


def _words(text: str | None) -> str:
    return " ".join((text or "").split())


@pytest.mark.parametrize("path", [_param(p) for p in WITH_EXPECTED])
def test_expected_reply(path):
    expected = path.with_name(f"{path.stem}_reply_text").read_text(encoding="utf-8")
    assert new_part(_text(path)).strip() == expected.strip()


@pytest.mark.parametrize("path", [_param(p) for p in TALON_DEFAULT])
def test_talon_default_reply_is_hello(path):
    assert new_part(_text(path)).strip() == "Hello"


@pytest.mark.parametrize("path", [_param(p) for p in TALON_DEFAULT])
def test_quote_is_cut(path):
    full = _text(path)
    result = new_part(full)
    assert result
    if QUOTE_MARKER.search(full):
        assert len(result) < len(full.strip())


def test_share_block_reply():
    mail = parse((TALON / "reply-quotations-share-block.eml").read_bytes())
    text, html = new_part(mail.text), html_new_part(mail.html)
    for result, signed in ((text, "Joe XXX"), (html, "Jhon Doe")):
        assert result.startswith("Hi Katharine.")
        assert result.endswith(signed)
        assert "wrote:" not in result
        assert "From:" not in result
        assert "New Booking Inquiry" not in result


@pytest.mark.parametrize("path", sorted(TALON.glob("html_replies/*.html")), ids=lambda p: p.stem)
def test_html_reply(path):
    result = html_new_part(path.read_text(encoding="utf-8"))
    assert _words(result) == "Hi. I am fine. Thanks, Alex"


@pytest.mark.parametrize(("name", "expected", "quoted"), [
    ("reply-separated-by-hr.html", "Hi there Bob", "bob@example.com"),
    ("OLK_SRC_BODY_SECTION.html", "Reply", "bob@example.com"),
])
def test_html_reply_cut_at_the_header_block(name, expected, quoted):
    result = html_new_part((TALON / name).read_text(encoding="utf-8"))
    assert _words(result) == expected
    assert quoted not in result


@pytest.mark.parametrize("path", sorted(TALON.glob("signature/emails/stripped/*_body")),
                         ids=lambda p: p.name)
def test_mail_without_quote_is_unchanged(path):
    """No quote, no "-- " line: nothing is cut (we do not guess signatures from names)."""
    body = path.read_text(encoding="utf-8")
    assert new_part(body) == body.strip()
