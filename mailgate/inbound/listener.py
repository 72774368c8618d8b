"""The SMTP and LMTP doors (aiosmtpd): recipients checked at RCPT, raw bytes spooled
at DATA.

The door knows nothing of tickets.  It answers ``250`` only after the spool commit,
``550 5.1.1`` for an address no ``[[mailbox]]`` owns, ``552 5.3.4`` over
``max_message_size`` and ``451 4.3.0`` whenever the message cannot be stored
(RFC 3463 enhanced status codes).  Over LMTP (RFC 2033 §4.2) the reply after DATA is
one line per accepted recipient; the message is spooled once for all of them.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP

from mailgate.bootstrap import Services
from mailgate.inbound.envelope import FastPaths
from mailgate.inbound.groupcommit import GroupCommit
from mailgate.inbound.smtpdata import BufferedData
from mailgate.intakefirst import IntakeFirst
from mailgate.spool import Incoming

log = logging.getLogger("mailgate.smtp")

REPLY_RCPT_OK = "250 2.1.5 Recipient ok"
REPLY_ACCEPTED = "250 2.0.0 Ok: queued as {id}"
REPLY_DUPLICATE = "250 2.0.0 Ok: already received as {id}"
REPLY_NO_MAILBOX = "550 5.1.1 <{address}>: no such mailbox here"
REPLY_TOO_BIG = "552 5.3.4 Message too big: the limit here is {limit} bytes"
REPLY_TEMPFAIL = "451 4.3.0 Cannot store the message now ({reason}); try again later"
REPLY_BUSY = "421 4.7.0 Too many connections, try again later"

SOCKET_MODE = 0o660  # deliver's socket (LocalSocket)

# aiosmtpd's own size refusals carry no enhanced status code; ours do.
_AIOSMTPD_TOO_BIG = ("552 Error: Too much mail data", "552 Error: message size exceeds")


class _DoorProtocol(FastPaths, BufferedData):
    """What our SMTP and LMTP servers add to aiosmtpd's: addresses parsed fast
    (envelope.py), DATA received into one buffer (smtpdata.py), our wording of its
    built-in size refusals, and a count of the messages being received so a drain
    can wait."""

    # The listener's live sessions (see ``smtp_factory``): a session leaves it when
    # its connection is lost, which frees its place under ``max_connections``.
    live: set | None = None
    door = "smtp"  # what the spool records as the way the message came in

    def connection_lost(self, error: Exception | None) -> None:
        """Forget the session, then let aiosmtpd clean up."""
        if self.live is not None:
            self.live.discard(self)
        super().connection_lost(error)

    async def smtp_DATA(self, arg: str) -> None:
        """Receive a message; counted from the DATA command to the final reply."""
        self.event_handler.in_flight += 1
        try:
            await super().smtp_DATA(arg)
        finally:
            self.event_handler.in_flight -= 1

    async def push(self, status: str) -> None:
        """Send ``status`` as ``reword`` has it."""
        await super().push(self.reword(status))

    def reword(self, status: str) -> str:
        """aiosmtpd's 552 replies become ``REPLY_TOO_BIG``."""
        if status.startswith(_AIOSMTPD_TOO_BIG):
            return REPLY_TOO_BIG.format(limit=self.data_size_limit)
        return status


class MailgateSMTP(_DoorProtocol, SMTP):
    """The SMTP listener."""


class MailgateLMTP(_DoorProtocol, LMTP):
    """The LMTP listener: a refusal that aiosmtpd gives once after DATA (too big, line
    too long) is repeated for every recipient, as RFC 2033 §4.2 requires."""

    _after_data = False

    def reword(self, status: str) -> str:
        """As for SMTP; and a single-line final DATA reply goes once per recipient."""
        status = super().reword(status)
        if status.startswith("354"):
            self._after_data = True
        elif self._after_data:
            self._after_data = False
            rcpts = self.envelope.rcpt_tos if self.envelope else []
            if "\r\n" not in status and len(rcpts) > 1:
                status = "\r\n".join([status] * len(rcpts))
        return status


class SpoolHandler:
    """aiosmtpd handler: check recipients, spool the message, then acknowledge."""

    def __init__(self, svc: Services, on_spooled: Callable[[], None],
                 gate: IntakeFirst | None = None):
        self.svc = svc
        self.on_spooled = on_spooled
        self.in_flight = 0  # sessions between DATA and its reply (see MailgateSMTP)
        self.committer = GroupCommit(svc.engine, gate)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        """Accept only addresses that a ``[[mailbox]]`` owns."""
        if self.svc.config.mailbox_for(address) is None:
            return REPLY_NO_MAILBOX.format(address=address)
        envelope.rcpt_tos.append(address)
        return REPLY_RCPT_OK

    async def handle_DATA(self, server, session, envelope):
        """Commit the raw message to the spool, then answer 250 (or 451); sessions
        that reach this point together share one commit (groupcommit.py)."""
        incoming = Incoming(envelope.original_content, server.door,
                            reverse_path(envelope.mail_from),
                            [r.lower() for r in envelope.rcpt_tos], self.svc.clock())
        try:
            stored = await self.committer.submit(incoming)
        except Exception as exc:  # noqa: BLE001 - any storage failure is a tempfail
            log.error("cannot spool message from %s: %s", envelope.mail_from, exc)
            reply = REPLY_TEMPFAIL.format(reason=type(exc).__name__)
        else:
            self.on_spooled()
            template = REPLY_DUPLICATE if stored.duplicate else REPLY_ACCEPTED
            reply = template.format(id=stored.spool_id)
        if isinstance(server, LMTP):
            return "\r\n".join(f"{reply} <{rcpt}>" for rcpt in envelope.rcpt_tos)
        return reply


def reverse_path(mail_from: str | None) -> str:
    """The envelope sender as stored: ``""`` for the null path ``<>``."""
    return (mail_from or "").strip().strip("<>")


class _Busy(asyncio.Protocol):
    """A connection over ``[smtp] max_connections``: told ``421`` at once (RFC 5321
    §3.8: the server may close after a 421 greeting) and closed, so a flood of idle
    connections costs a socket for a moment, not a session each."""

    transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Refuse and hang up."""
        self.transport = transport
        transport.write(f"{REPLY_BUSY}\r\n".encode())
        transport.close()


def smtp_factory(svc: Services, handler: SpoolHandler, hostname: str,
                 door: str | None = None) -> Callable[[], SMTP]:
    """A protocol factory for ``loop.create_server``: ``[smtp] protocol`` sessions, or
    LMTP ones recorded as ``door`` (deliver's local socket, handoff.py).

    ``hostname`` is passed in because aiosmtpd's default, ``socket.getfqdn()``, may
    wait on DNS for every connection.  At most ``[smtp] max_connections`` sessions
    run at once (one more gets ``_Busy``), and aiosmtpd closes a session that takes
    longer than ``[smtp] timeout`` for one command, DATA included.
    """
    cfg = svc.config.smtp
    door = door or cfg.protocol
    protocol = MailgateSMTP if door == "smtp" else MailgateLMTP
    live: set = set()

    def factory() -> SMTP | _Busy:
        if len(live) >= cfg.max_connections:
            log.warning("refusing a connection: %d sessions already (max_connections)",
                        len(live))
            return _Busy()
        session = protocol(handler, hostname=hostname, data_size_limit=cfg.max_message_size,
                           enable_SMTPUTF8=True, decode_data=False, ident="mailgate",
                           timeout=cfg.timeout)
        session.live, session.door = live, door
        live.add(session)
        return session

    return factory


class LocalSocket:
    """deliver's socket (handoff.py) at ``path``: made at start in place of one that a
    stopped daemon left, removed at stop unless another daemon has taken its place."""

    def __init__(self, path: Path):
        self.path = path
        self.inode: int | None = None

    async def open(self, factory: Callable[[], SMTP]) -> asyncio.AbstractServer | None:
        """Listen; None (logged) when the socket cannot be made: deliver then stores
        and processes its messages itself, as it does with no daemon running."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.unlink(missing_ok=True)
            server = await asyncio.get_running_loop().create_unix_server(factory, self.path)
            # The daemon's user and group may connect, whatever the umask: like the SMTP
            # door, this one must be reachable only by what the MTA hands over, as the
            # Authentication-Results it brings are believed (staffauth.py).
            os.chmod(self.path, SOCKET_MODE)
            self.inode = os.stat(self.path).st_ino
        except OSError as exc:
            log.warning("no socket for deliver at %s (%s): each deliver will process its "
                        "message itself", self.path, exc.strerror or exc)
            return None
        log.info("listening for deliver (LMTP) on %s", self.path)
        return server

    def remove(self) -> None:
        """Remove the socket file if it is still the one this daemon made."""
        try:
            if self.inode is not None and os.stat(self.path).st_ino == self.inode:
                self.path.unlink()
        except OSError:
            pass  # gone already: nothing to remove
