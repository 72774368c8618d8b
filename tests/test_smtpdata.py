"""DATA read in pieces (inbound/smtpdata.py), against the door's real SMTP server on
loopback: what a client sends arrives byte for byte with its dot-stuffing undone
(RFC 5321 §4.5.2), however the stream is cut on the way; an over-long line or an
over-large message is refused after the final dot, and the session goes on.
"""

from __future__ import annotations

import socket
import time

import pytest
from aiosmtpd.controller import Controller
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mailgate.inbound.listener import MailgateSMTP
from mailgate.inbound.smtpdata import Receiving
from tests.helpers import free_port

SIZE_LIMIT = 200_000


class Recorder:
    """A handler that keeps what each DATA delivered."""

    in_flight = 0  # the door counts messages being received here

    def __init__(self):
        self.contents: list[bytes] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.contents.append(bytes(envelope.content))
        return "250 OK"


class Door(Controller):
    """The door's SMTP protocol, as ``smtp_factory`` makes it, in a thread."""

    def factory(self):
        return MailgateSMTP(self.handler, hostname="door.test", data_size_limit=SIZE_LIMIT,
                            enable_SMTPUTF8=True, decode_data=False)


@pytest.fixture(scope="module")
def door():
    handler = Recorder()
    controller = Door(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller
    controller.stop()


class Client:
    """A raw SMTP session: the stream is sent exactly as the test cuts it."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.reader = self.sock.makefile("rb")
        self.reply()  # greeting
        for command in (b"EHLO client.test", b"MAIL FROM:<a@acme.it>", b"RCPT TO:<hd@x.it>",
                        b"DATA"):
            self.sock.sendall(command + b"\r\n")
            self.reply()

    def reply(self) -> bytes:
        """The next reply, all its lines."""
        lines = [self.reader.readline()]
        while lines[-1][3:4] == b"-":
            lines.append(self.reader.readline())
        return b"".join(lines)

    def send(self, stream: bytes, cuts: list[int]) -> None:
        """``stream`` in pieces ending at ``cuts``, each after a short pause, so that
        the server reads them apart."""
        start = 0
        for cut in [*sorted(set(cuts)), len(stream)]:
            if start < cut <= len(stream):
                self.sock.sendall(stream[start:cut])
                time.sleep(0.001)
                start = cut

    def close(self) -> None:
        self.sock.close()


def stuffed(lines: list[bytes]) -> bytes:
    """The DATA stream a client sends for ``lines``, with the final dot."""
    return b"".join((b"." + line if line.startswith(b".") else line) + b"\r\n"
                    for line in lines) + b".\r\n"


def received(door, lines: list[bytes], cuts: list[int]) -> tuple[bytes, bytes]:
    """The 250 (or refusal) and the content the handler got for ``lines``."""
    before = len(door.handler.contents)
    client = Client(door.port)
    try:
        client.send(stuffed(lines), cuts)
        status = client.reply()
        client.sock.sendall(b"QUIT\r\n")
        assert client.reply().startswith(b"221")
    finally:
        client.close()
    got = door.handler.contents[before:]
    return status, got[0] if got else b""


line_bytes = st.binary(max_size=120).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))
dotty_line = st.one_of(line_bytes, st.sampled_from([b".", b"..", b"...", b"Thanks.", b".x.",
                                                    b"", b"a\r", b"."]).map(
                                                        lambda b: b.replace(b"\r", b"")))


def reader_pieces(stream: bytes, cuts: list[int]) -> list[bytes]:
    """``stream`` cut as the door's reader may cut it: after every ``.<CRLF>`` (where
    ``readuntil`` stops), and at any other point (where the look-ahead ran full)
    but inside a ``.<CRLF>``, which the reader never splits."""
    inside, after, at = set(), set(), stream.find(b".\r\n")
    while at >= 0:
        inside |= {at + 1, at + 2}
        after.add(at + 3)
        at = stream.find(b".\r\n", at + 1)
    ends = sorted(({c for c in cuts if 0 < c < len(stream)} - inside) | after)
    return [stream[a:b] for a, b in zip([0, *ends], ends, strict=False)]


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(dotty_line, max_size=40), cuts=st.lists(st.integers(0, 3000), max_size=40),
       limit=st.sampled_from([60, 1001]))
@example(lines=[b"a" * 50, b"b" * 50], cuts=[51], limit=60)  # a CRLF cut in two
@example(lines=[b"x", b".y"], cuts=[3], limit=1001)  # a stuffed dot at a piece's start
@example(lines=[b"x", b".y"], cuts=[2], limit=1001)  # ... after a cut CRLF
@example(lines=[b"z" * 100], cuts=[30, 60, 90], limit=60)  # a long line in three pieces
@example(lines=[b"y" * 61], cuts=[], limit=60)  # one octet over
@example(lines=[b"y" * 60], cuts=[], limit=60)  # at the limit
def test_pieces_come_together_unstuffed_and_end_at_the_lone_dot(lines, cuts, limit):
    receiving = Receiving(line_limit=limit, size_limit=None)
    pieces = reader_pieces(stuffed(lines), cuts)
    ends = [receiving.take(piece) for piece in pieces]
    assert ends == [False] * (len(pieces) - 1) + [True]
    too_long = any(len(line) > limit for line in lines)
    assert receiving.refusal == ("500 Line too long (see RFC5321 4.5.3.1.6)" if too_long
                                 else None)
    assert receiving.content == (b"" if too_long
                                 else b"".join(line + b"\r\n" for line in lines))


@settings(max_examples=30, deadline=None)
@given(lines=st.lists(dotty_line, max_size=40), cuts=st.lists(st.integers(0, 6000), max_size=8))
@example(lines=[], cuts=[])
@example(lines=[b"."], cuts=[1, 2, 3])
@example(lines=[b"Thanks.", b".", b"", b".."], cuts=[8, 9, 10, 11, 12])
def test_what_is_sent_arrives_unstuffed_however_the_stream_is_cut(door, lines, cuts):
    status, content = received(door, lines, cuts)
    assert status.startswith(b"250")
    assert content == b"".join(line + b"\r\n" for line in lines)


def test_a_large_message_arrives_whole(door):
    # Bigger than the reader's look-ahead, with a dotted line on each side of it.
    lines = [b".start"] + [b"QUJD" * 19] * 1500 + [b".end", b"Thanks."]
    status, content = received(door, lines, [3, 65535, 65536, 65537, 70000])
    assert status.startswith(b"250")
    assert content == b"".join(line + b"\r\n" for line in lines)


def test_an_over_long_line_is_refused_after_the_dot_and_the_session_goes_on(door):
    lines = [b"Subject: long", b"", b"z" * 5000, b"after"]
    status, content = received(door, lines, [2000, 4000])
    assert status.startswith(b"500"), status
    assert content == b""


def test_a_line_at_the_limit_is_taken(door):
    # 1001 octets before CRLF pass, as with aiosmtpd's own reader (its limit).
    lines = [b"y" * 1001]
    status, content = received(door, lines, [500, 1002])
    assert status.startswith(b"250")
    assert content == lines[0] + b"\r\n"


def test_a_crlf_cut_in_two_does_not_join_two_lines(door):
    # Two 600-octet lines would be one too long line if the cut CRLF were missed.
    lines = [b"a" * 600, b"b" * 600]
    status, content = received(door, lines, [601])
    assert status.startswith(b"250")
    assert content == b"a" * 600 + b"\r\n" + b"b" * 600 + b"\r\n"


def test_too_much_data_is_refused_after_the_dot(door):
    lines = [b"x" * 900] * (SIZE_LIMIT // 900 + 10)
    status, content = received(door, lines, [])
    assert status.startswith(b"552"), status
    assert content == b""
