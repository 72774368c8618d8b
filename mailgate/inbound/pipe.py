"""The MTA pipe door: ``mailgate deliver [--sender S] [--recipient R] < message``.

For a Postfix ``pipe`` transport or an alias ``hd: "|mailgate deliver"``.  The exit
status is the whole protocol (sysexits.h, as Postfix reads it): 0 once the message is
committed; 75 (EX_TEMPFAIL) for anything transient, so the MTA keeps the mail and
retries; 67 no such recipient; 65 unreadable input or over ``max_message_size``.
Like rt-mailgate, any unexpected error is a tempfail: a bounce would lose the mail.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:  # the hand-off path (handoff.py) must not pay for these imports
    from mailgate.bootstrap import Services

EX_OK, EX_USAGE, EX_DATAERR, EX_NOUSER, EX_TEMPFAIL, EX_CONFIG = 0, 64, 65, 67, 75, 78


@dataclass(frozen=True)
class PipeOutcome:
    """The exit status, the one line that says why, and the spool row (when stored)."""

    code: int
    reason: str
    spool_id: int | None = None


def first_line(exc: BaseException) -> str:
    """An exception as one short line (SQLAlchemy's carry the statement on more)."""
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def read_message(stream: BinaryIO, limit: int) -> bytes | PipeOutcome:
    """The message on ``stream``, or the outcome that refuses it (65)."""
    try:
        raw = stream.read(limit + 1)
    except OSError as exc:
        return PipeOutcome(EX_TEMPFAIL, f"cannot read the message: {exc.strerror}")
    if len(raw) > limit:
        return PipeOutcome(EX_DATAERR, f"message too big: the limit is {limit} bytes")
    if not raw.strip():
        return PipeOutcome(EX_DATAERR, "empty message on standard input")
    return raw


def deliver(svc: Services, raw: bytes, *, sender: str | None,
            recipients: list[str]) -> PipeOutcome:
    """Spool ``raw`` for ``recipients`` (all our mailboxes' when none are given)."""
    from mailgate import spool

    recipients = [r.strip().lower() for r in recipients if r.strip()]
    ours = [r for r in recipients if svc.config.mailbox_for(r)]
    if recipients and not ours:
        return PipeOutcome(EX_NOUSER, f"no mailbox here for {', '.join(recipients)}")
    try:
        stored = spool.intake(svc.engine, raw, door="pipe", mail_from=sender,
                              rcpt_tos=ours or [svc.config.mailbox[0].address],
                              now=svc.clock())
    except Exception as exc:  # noqa: BLE001 - anything unexpected: the MTA keeps the mail
        # One line: the MTA quotes this output in its log and in any bounce.
        return PipeOutcome(EX_TEMPFAIL, f"cannot store the message now ({first_line(exc)});"
                           " the MTA will retry")
    word = "already received" if stored.duplicate else "queued"
    return PipeOutcome(EX_OK, f"{word} as {stored.spool_id}", stored.spool_id)
