"""``mailgate deliver`` hands the message to the running daemon: LMTP (RFC 2033) on a
local socket, as rt-mailgate hands mail to the running RT instead of starting it.

A deliver that does the work itself starts the whole application for one message,
about a second of imports, schema check and bootstrap (bench/RESULTS.md, eighth
round).  ``mailgate serve`` listens on ``deliver.sock`` in ``[paths] data`` and answers
250 only after its spool commit, as its SMTP door does, so exit 0 still means
"committed"; the row is recorded with the pipe door.  This module imports the stdlib
alone.  ``hand_over`` returns None, and deliver stores the message itself, when no
daemon answers or it refuses for good what the pipe door takes (aiosmtpd's 500 for a
line over 1,000 octets): nothing a daemon did not commit is lost.
"""

from __future__ import annotations

import smtplib
from pathlib import Path

from mailgate.configfile import RawConfig
from mailgate.inbound.pipe import (
    EX_DATAERR,
    EX_NOUSER,
    EX_OK,
    EX_TEMPFAIL,
    PipeOutcome,
    first_line,
)

SOCKET_NAME = "deliver.sock"
# The name deliver gives in LHLO (RFC 2033 §4.1).
CLIENT_NAME = "mailgate-deliver"
# Seconds for each reply.  The daemon answers the end of DATA after its group commit,
# which waits out the database's busy timeout at worst, then says 451.
TIMEOUT = 60.0
REPLY_NO_MAILBOX = 550  # listener.py's answer for an address no [[mailbox]] owns
REPLY_TOO_BIG = 552


def socket_path(config: RawConfig) -> Path:
    """Where the daemon of ``config`` listens for deliver."""
    return config.data_dir() / SOCKET_NAME


def hand_over(path: Path, raw: bytes, sender: str,
              recipients: list[str]) -> PipeOutcome | None:
    """The daemon's answer for ``raw`` as an exit status, or None when deliver must
    store the message itself."""
    try:
        client = smtplib.LMTP(str(path), timeout=TIMEOUT)
    except (OSError, smtplib.SMTPException):
        return None  # no daemon, a stale socket or not ours to use
    accepted = 0
    try:
        accepted = _envelope(client, raw, sender, recipients)
        return _data(client, raw, accepted)
    except _Answer as answer:
        return answer.outcome
    except (OSError, smtplib.SMTPException) as exc:
        if not accepted:
            return None  # the message was not sent, so nothing was committed
        # It may have been committed: the MTA's retry is recognised as the same mail.
        return PipeOutcome(EX_TEMPFAIL, f"the daemon did not confirm the message "
                           f"({first_line(exc)}); the MTA will retry")
    finally:
        _close(client)


def _envelope(client: smtplib.LMTP, raw: bytes, sender: str, recipients: list[str]) -> int:
    """LHLO, MAIL and RCPT; the number of recipients the daemon accepted."""
    code, text = client.ehlo(CLIENT_NAME)
    if code != 250:
        raise _Answer(code, text)
    options = [f"SIZE={len(raw)}"]
    if not raw.isascii():
        options.append("BODY=8BITMIME")  # RFC 6152; the daemon takes 8-bit data as it is
    if not (sender + "".join(recipients)).isascii():
        options.append("SMTPUTF8")  # RFC 6531: UTF-8 addresses
    code, text = client.mail(sender, options)
    if code != 250:
        raise _Answer(code, text)
    accepted = 0
    for rcpt in recipients:
        code, text = client.rcpt(rcpt)
        if code == 250:
            accepted += 1
        elif code != REPLY_NO_MAILBOX:
            raise _Answer(code, text)
    if not accepted:
        raise _Answer(outcome=PipeOutcome(EX_NOUSER,
                                          f"no mailbox here for {', '.join(recipients)}"))
    return accepted


def _data(client: smtplib.LMTP, raw: bytes, accepted: int) -> PipeOutcome | None:
    """Send the message; LMTP answers once per accepted recipient (RFC 2033 §4.2), and
    the daemon stores it once for all of them, so the answers agree."""
    try:
        code, text = client.data(raw)
    except smtplib.SMTPDataError as exc:  # no 354: nothing was sent
        raise _Answer(exc.smtp_code, exc.smtp_error) from exc
    for _ in range(accepted - 1):
        client.getreply()
    if code == 250:
        return PipeOutcome(EX_OK, _line(text))
    raise _Answer(code, text)


class _Answer(Exception):
    """The daemon's final word: ``outcome`` is the exit status it means, None for a
    refusal that the pipe door does not share (deliver then stores the message)."""

    def __init__(self, code: int = 0, text: bytes = b"", outcome: PipeOutcome | None = None):
        super().__init__(code)
        if outcome is None and code == REPLY_TOO_BIG:
            outcome = PipeOutcome(EX_DATAERR, _line(text))
        elif outcome is None and 400 <= code < 500:
            outcome = PipeOutcome(EX_TEMPFAIL, _line(text))
        self.outcome = outcome


def _line(text: bytes) -> str:
    return text.decode("utf-8", "replace").splitlines()[0] if text else ""


def _close(client: smtplib.LMTP) -> None:
    try:
        client.quit()
    except (OSError, smtplib.SMTPException):
        client.close()
