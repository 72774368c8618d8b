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
        client is answered after its final dot): a line longer than the reader's
        limit, or more than ``data_size_limit`` bytes.  What comes after a refusal is
        read and dropped.  ``None`` when the connection closed first."""
        content, refusal, size, in_line = bytearray(), None, 0, False
        while self.transport is not None:
            line, whole = await self._read_line()
            if not whole:
                refusal = refusal or REPLY_LINE_TOO_LONG
            elif not in_line and line == b".\r\n":
                return content, refusal
            size += len(line)
            if self.data_size_limit and size > self.data_size_limit:
                refusal = refusal or REPLY_TOO_MUCH
            in_line = not line.endswith(b"\r\n")
            if refusal:
                content.clear()  # nothing of a refused message is kept
            else:
                content += memoryview(line)[1:] if line.startswith(b".") else line
        return None, refusal

    async def _read_line(self) -> tuple[bytes, bool]:
        """The next line with its CRLF and True; or, of a line longer than the
        reader's limit, as much as can be read now and False."""
        try:
            return await self._reader.readuntil(b"\r\n"), True
        except asyncio.CancelledError:
            log.info("connection lost during DATA")
            self._writer.close()
            raise
        except asyncio.LimitOverrunError as exc:
            return await self._reader.read(exc.consumed), False
