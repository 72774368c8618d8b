"""The SMTP DATA command, received into one buffer.

aiosmtpd keeps every line of a message as its own ``bytearray`` until the final dot,
then joins them: about three times the message in memory at once, 100 MB for a
25 MB attachment.  Here the lines go into one ``bytearray`` as they come, which the
handler gets as ``envelope.content`` (and ``original_content``; with
``decode_data=False`` aiosmtpd makes them the same object too).  Everything else is
aiosmtpd's DATA: the same replies, the same checks, in the same order.
"""

from __future__ import annotations

import asyncio
import logging

from aiosmtpd.smtp import MISSING

log = logging.getLogger("mailgate.smtp")

REPLY_GO_AHEAD = "354 End data with <CR><LF>.<CR><LF>"
REPLY_NEED_RCPT = "503 Error: need RCPT command"
REPLY_SYNTAX = "501 Syntax: DATA"
# aiosmtpd's own wording: MailgateSMTP.reword turns the 552 into ours.
REPLY_LINE_TOO_LONG = "500 Line too long (see RFC5321 4.5.3.1.6)"
REPLY_TOO_MUCH = "552 Error: Too much mail data"
DATA_READ_LIMIT = 64 * 1024  # octets the reader looks ahead during DATA


class BufferedData:
    """Mixin for aiosmtpd's ``SMTP`` (and ``LMTP``): DATA into one buffer."""

    async def smtp_DATA(self, arg: str) -> None:
        """Receive a message (RFC 5321 §4.1.1.4) and hand it to the handler."""
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        if not self.envelope.rcpt_tos:
            await self.push(REPLY_NEED_RCPT)
            return
        if arg:
            await self.push(REPLY_SYNTAX)
            return
        await self.push(REPLY_GO_AHEAD)
        content, refusal = await self._receive()
        if content is None:  # the connection is gone
            return
        if refusal:  # pushed before the reset: LMTP repeats it for each recipient
            await self.push(refusal)
            self._set_post_data_state()
            return
        self.envelope.content = self.envelope.original_content = content
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push("250 OK" if status is MISSING else status)

    async def _receive(self) -> tuple[bytearray | None, str | None]:
        """The message up to the lone dot, dot-stuffing removed (RFC 5321 §4.5.2),
        and the refusal that is due once it has all been read (RFC 5321 §4.2.5: the
        client is answered after its final dot): a line longer than the line length
        limit, or more than ``data_size_limit`` bytes.  What comes after a refusal is
        read and dropped.  ``None`` when the connection closed first.

        The stream is read in pieces up to the next ``.<CRLF>``, not a line at a
        time: a line a turn of the event loop cost about 2 ms of CPU for a 40 KB mail
        and was the listener's largest cost (bench/RESULTS.md).  aiosmtpd gives the
        reader a limit of one line (``line_length_limit``), which also makes it stop
        reading the socket after two lines; it is raised for the transfer (the
        reader's only knob for it is its ``_limit``) and the line length is checked
        here instead.
        """
        receiving = Receiving(self.line_length_limit, self.data_size_limit)
        self._reader._limit = DATA_READ_LIMIT
        try:
            while self.transport is not None:
                piece = await self._read_piece()
                if piece is None:
                    break
                if receiving.take(piece):
                    return receiving.content, receiving.refusal
        finally:
            self._reader._limit = self.line_length_limit
        return None, receiving.refusal

    async def _read_piece(self) -> bytes | None:
        """The stream up to the next ``.<CRLF>``, or as much of it as the reader
        holds now when that is further than its limit; None at the end of the stream."""
        try:
            return await self._reader.readuntil(b".\r\n")
        except asyncio.CancelledError:
            log.info("connection lost during DATA")
            self._writer.close()
            raise
        except asyncio.IncompleteReadError:
            return None
        except asyncio.LimitOverrunError as exc:
            return await self._reader.read(exc.consumed)


class Receiving:
    """One message being received: its content so far, unstuffed, and its refusal."""

    def __init__(self, line_limit: int, size_limit: int | None):
        self.line_limit, self.size_limit = line_limit, size_limit
        self.content = bytearray()
        self.refusal: str | None = None
        self.size = 0
        self.line = 0  # octets of the line begun and not yet ended
        self.tail = b"\r\n"  # the stream's last two octets: the start is a line start

    def take(self, piece: bytes) -> bool:
        """Add ``piece`` of the stream; True when it ends with the lone dot that ends
        the message (then the dot is not content)."""
        done = piece.endswith(b".\r\n") and (self.tail + piece[:-3])[-2:] == b"\r\n"
        self._add(piece[:-3] if done else piece)
        return done

    def _add(self, data: bytes) -> None:
        self.size += len(data)
        if self.size_limit and self.size > self.size_limit:
            self.refusal = self.refusal or REPLY_TOO_MUCH
        if self._too_long(data):
            self.refusal = self.refusal or REPLY_LINE_TOO_LONG
        seen = self.tail + data
        if self.refusal:
            self.content.clear()  # nothing of a refused message is kept
        else:
            # A line that begins with a dot had one more put before it: with the last
            # two octets before ``data`` in front, a line begun in ``data`` is one
            # after CRLF, wherever the pieces were cut.
            self.content += seen.replace(b"\r\n.", b"\r\n")[2:]
        self.tail = seen[-2:]

    def _too_long(self, data: bytes) -> bool:
        """True when a line that ``data`` ends or continues is over the limit (CRLF
        not counted)."""
        if self.tail.endswith(b"\r") and data.startswith(b"\n"):
            self.line, data = 0, data[1:]  # a CRLF cut in two by the pieces
        # Most pieces (up to the next ".<CRLF>": a sentence) are shorter than the limit
        # with the line they continue: then no line in them can be over it.
        over = self.line + len(data) > self.line_limit and self._longest(data) > self.line_limit
        end = data.rfind(b"\r\n")
        self.line = len(data) - end - 2 if end >= 0 else self.line + len(data)
        return over

    def _longest(self, data: bytes) -> int:
        """The longest line ``data`` ends or continues."""
        lines = data.split(b"\r\n")
        return max([self.line + len(lines[0]), *map(len, lines[1:])])
