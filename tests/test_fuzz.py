"""Property tests: no input makes parsing, classification or the pipeline fail (SPEC §3).

Two generators: (a) arbitrary bytes, (b) structured mails with hostile header values
(unicode subjects with CR/LF and ``{{ }}``, garbage and encoded-word From lines, bogus
charsets and transfer encodings, random Content-Type, boundaries and MIME nesting,
Message-IDs that look like ours).  Each example is parsed and classified directly, then
delivered to one in-process desk shared by the module (so tickets, threads and rate
limits accumulate), and must end in a non-failed spool state.  Every mail the pipeline
queues must keep its header block intact: no CR/LF inside a header value, no injected
header, exactly one Subject.  One known bug class (an RFC 2047 word left in the parsed
subject) is filtered out of the two general fuzzers and pinned by an xfail test instead.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import quopri
import re
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from mailgate.classify import classify
from mailgate.message import parse
from mailgate.spool import dedupe_key
from tests.desk import Desk

FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

RCPTS = ["hd@example.com", "support@example.com", "create@example.com", "create@example.com",
         "reject@example.com"]
ENVELOPES = ["fuzz@example.net", "fuzz@example.net", "mario@acme.it", ""]  # "": a bounce
CHARSETS = ["utf-8", "us-ascii", "iso-8859-1", "windows-1252", "koi8-r", "gb2312", "shift_jis",
            "iso-2022-jp", "utf-16", "utf-7", "x-unknown", "bogus\"charset", "", "utf-8'en'"]
ENCODINGS = ["7bit", "8bit", "binary", "base64", "quoted-printable", "x-uuencode", "", "BASE64"]
ADDRESSES = ["mario@acme.it", "x@mail.acme.it", "janos@beta.hu", "ivan@gamma.ru",
             "alice@example.com", "noreply@acme.it", "MAILER-DAEMON@example.org",
             "hd@example.com", "stranger@nowhere.example", "c@consult.example"]
MSGIDS = ["<orig-1@acme.it>", "<10000.0123456789abcdef.mg1@example.com>",
          "<10001.deadbeefdeadbeef.mgff@example.com>", "<nt.mg1@example.com>", "<>", "<a b@c>",
          "not-a-msgid", "<x@y>"]
TRICKY = ["{{ ticket.number }}", "{{ 7*7 }}", "{% for x in y %}", "\r\nBcc: victim@evil.example",
          "\nX-Injected: 1", "[#10000]", "Re: AW: [#10001]", "#10002", "=?utf-8?b?W10=?=",
          "=?gb2312?B?ztKw0b61zbfArb380A==?=", "=?x-bogus?q?caf=E9?=", "\x00", "\udcff",
          "Отв: Ответ:", "\u202eevil", " ", ""]

texts = st.lists(st.one_of(st.text(max_size=40), st.sampled_from(TRICKY)), max_size=4).map(
    "".join)


def to_bytes(text: str, charset: str = "utf-8") -> bytes:
    try:
        return text.encode(charset or "utf-8", "replace")
    except (LookupError, UnicodeError):
        return text.encode("utf-8", "surrogatepass")


@st.composite
def header_values(draw) -> bytes:
    """Text as a header value: raw 8-bit, or RFC 2047 words in a (maybe bogus) charset."""
    text, charset = draw(texts), draw(st.sampled_from(CHARSETS))
    mode = draw(st.sampled_from(["raw", "b", "q"]))
    data = to_bytes(text, charset)
    if mode == "raw":
        return data
    if mode == "b":
        encoded = base64.b64encode(data)
    else:
        encoded = quopri.encodestring(data, header=True).replace(b"\n", b"")
    label = charset.encode("ascii", "replace")
    return b"=?" + label + b"?" + mode.encode() + b"?" + encoded + b"?="


@st.composite
def from_values(draw) -> bytes:
    addr = draw(st.sampled_from(ADDRESSES)).encode()
    return draw(st.sampled_from([
        addr,
        draw(header_values()) + b" <" + addr + b">",
        b'"=?utf-8?q?alice=40example.com?=" <' + addr + b">",
        b"=?utf-8?q?staff=40example.com?= <x@evil.example>",
        b"<>",
        b"",
        addr + b", " + draw(st.sampled_from(ADDRESSES)).encode(),
        to_bytes(draw(st.text(max_size=30))),
    ]))


@st.composite
def leaves(draw) -> tuple[list[bytes], bytes]:
    """A body part: (header lines, payload) with any type, charset and encoding."""
    kind = draw(st.sampled_from(["text/plain", "text/html", "application/octet-stream",
                                 "message/rfc822", "message/delivery-status", "image/png",
                                 "text/plain; format=flowed", "garbage", ""]))
    charset, cte = draw(st.sampled_from(CHARSETS)), draw(st.sampled_from(ENCODINGS))
    name = draw(st.one_of(st.none(), header_values()))
    payload = to_bytes(draw(texts), charset) + draw(st.binary(max_size=40))
    if cte.lower() == "base64" and draw(st.booleans()):
        payload = base64.encodebytes(payload)
    elif cte == "quoted-printable" and draw(st.booleans()):
        payload = quopri.encodestring(payload)
    headers = [b"Content-Type: " + kind.encode() + b'; charset="' + charset.encode() + b'"']
    if name is not None:
        headers.append(b'Content-Disposition: attachment; filename="' + name + b'"')
    if cte:
        headers.append(b"Content-Transfer-Encoding: " + cte.encode())
    return headers, payload


@st.composite
def multiparts(draw, children) -> tuple[list[bytes], bytes]:
    """A multipart of ``children`` with a random (maybe mismatched or unclosed) boundary."""
    subtype = draw(st.sampled_from(["mixed", "alternative", "related", "report", "digest", "x"]))
    boundary = draw(st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=70))
    used = boundary if draw(st.integers(0, 9)) else boundary + "x"
    body = b"preamble\r\n"
    for headers, payload in draw(st.lists(children, max_size=3)):
        body += b"--" + used.encode() + b"\r\n" + b"\r\n".join(headers) + b"\r\n\r\n"
        body += payload + b"\r\n"
    if draw(st.booleans()):
        body += b"--" + used.encode() + b"--\r\n"
    header = b'Content-Type: multipart/' + subtype.encode() + b'; boundary="' + \
        boundary.encode() + b'"'
    return [header], body


parts = st.recursive(leaves(), lambda children: multiparts(children), max_leaves=6)


@st.composite
def structured_mails(draw) -> bytes:
    headers = [b"From: " + draw(from_values()), b"To: " + draw(st.sampled_from(RCPTS)).encode(),
               b"Subject: " + draw(header_values())]
    if draw(st.booleans()):
        headers.append(b"Cc: " + draw(from_values()))
    msgid = draw(st.sampled_from(["unique"] * 4 + ["listed", "none"]))
    if msgid == "listed":
        headers.append(b"Message-ID: " + draw(st.sampled_from(MSGIDS)).encode())
    for name in ("In-Reply-To", "References"):
        refs = draw(st.lists(st.sampled_from(MSGIDS), max_size=3))
        if refs:
            headers.append(name.encode() + b": " + " ".join(refs).encode())
    for name, values in [("Auto-Submitted", ["no", "auto-replied", "No; x"]),
                         ("Precedence", ["bulk", "list", "auto_reply", "first-class"]),
                         ("Date", ["Mon, 26 Dec 2016 13:33:31 +0800", "yesterday", ""])]:
        if draw(st.integers(0, 3)) == 0:
            headers.append(f"{name}: {draw(st.sampled_from(values))}".encode())
    part_headers, body = draw(parts)
    if draw(st.booleans()):
        headers.append(b"MIME-Version: 1.0")
    eol = draw(st.sampled_from([b"\r\n", b"\n"]))
    mail = eol.join(headers + part_headers) + eol + eol + body.replace(b"\r\n", eol)
    if msgid == "unique":  # derived from the content: distinct mails never dedupe
        mail = f"Message-ID: <{hashlib.sha256(mail).hexdigest()[:32]}@fuzz.example>".encode() \
            + eol + mail
    return mail


@pytest.fixture(scope="module")
def desk(tmp_path_factory) -> Iterator[Desk]:
    logging.getLogger("mailgate").setLevel(logging.CRITICAL)  # failures are asserted on
    yield Desk(tmp_path_factory.mktemp("fuzz"))
    logging.getLogger("mailgate").setLevel(logging.NOTSET)


# The top-level headers compose.build writes; extend when it writes more.
OUTBOUND_HEADERS = {"from", "to", "subject", "date", "message-id", "reply-to", "in-reply-to",
                    "references", "auto-submitted", "x-loop", "mime-version", "content-type",
                    "content-transfer-encoding"}
HEADER_START = re.compile(rb"^([!-9;-~]+):")


def assert_clean_headers(message: bytes) -> None:
    """The top-level header block is intact: one header per (folded) line, one Subject."""
    head = message.split(b"\r\n\r\n", 1)[0]
    names = []
    for line in head.split(b"\r\n"):
        assert b"\r" not in line and b"\n" not in line, f"bare CR/LF in header line {line!r}"
        if line[:1] in (b" ", b"\t"):
            continue
        start = HEADER_START.match(line)
        assert start, f"not a header line: {line!r}"
        names.append(start.group(1).decode().lower())
    assert set(names) <= OUTBOUND_HEADERS, f"unexpected headers {set(names) - OUTBOUND_HEADERS}"
    for name in ("subject", "from", "to", "message-id"):
        assert names.count(name) == 1, f"{names.count(name)} {name} lines in\n{head.decode()}"


QUEUED: dict[str, list[bytes]] = {}  # dedupe key -> the mails its first delivery queued


def check(desk: Desk, raw: bytes, rcpt: str, envelope: str):
    parsed = parse(raw)
    assert classify(parsed, envelope, desk.svc.own).kind
    key = dedupe_key(raw)[0]
    [(last,)] = desk.home.query("SELECT coalesce(max(id), 0) FROM outbox")
    result = desk.deliver(raw, rcpt=rcpt, mail_from=envelope)
    [(state, error, stored)] = desk.home.query(
        "SELECT state, error, raw FROM spool JOIN spool_raw ON spool_id = id "
        "WHERE dedupe_key = ?", key)
    if result is None and stored != raw:
        event("same Message-ID as an earlier example")
        return
    assert state != "failed", f"the pipeline raised on {raw[:2000]!r}:\n{error}"
    event(result.outcome.split(":")[0] if result else "replayed")
    if result is not None:
        QUEUED[key] = [m for (m,) in desk.home.query(
            "SELECT message FROM outbox WHERE id > ? ORDER BY id", last)]
    for message in QUEUED.get(key, []):
        assert_clean_headers(message)


@FUZZ
@given(raw=st.binary(max_size=4096), rcpt=st.sampled_from(RCPTS),
       envelope=st.sampled_from(ENVELOPES))
def test_arbitrary_bytes(desk, raw, rcpt, envelope):
    check(desk, raw, rcpt, envelope)


@FUZZ
@given(raw=structured_mails(), rcpt=st.sampled_from(RCPTS), envelope=st.sampled_from(ENVELOPES))
def test_structured_mails(desk, raw, rcpt, envelope):
    check(desk, raw, rcpt, envelope)


@FUZZ
@example(word=b"=?GB2312?B?00000000000000a000?=")
@example(word=b"=?utf-8?q?=3D=3Fgb2312=3FB=3F00000000000000a000=3F=3D?=")  # decodes to a word
@example(word=b"=?x-bogus?b?" + base64.b64encode(b"Printer\r\nBcc: victim@evil.example") + b"?=")
@given(word=st.builds(lambda cs, data: b"=?" + cs + b"?B?" + base64.b64encode(data) + b"?=",
                      st.sampled_from([b"gb2312", b"shift_jis", b"utf-8", b"koi8-r", b"x-bogus"]),
                      st.binary(min_size=1, max_size=30)))
def test_encoded_word_subjects(desk, word):
    raw = (b"From: mario@acme.it\r\nTo: hd@example.com\r\nSubject: " + word +
           b"\r\nContent-Type: text/plain\r\n\r\nHello\r\n")
    check(desk, raw, "hd@example.com", "fuzz@example.net")
