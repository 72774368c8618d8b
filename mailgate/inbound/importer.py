"""``mailgate import PATH``: a Maildir or an mbox through the same spool and pipeline.

Messages go in file order (Maildir names start with the delivery time; an mbox is in
arrival order), so that a reply is processed after the mail that opened its ticket.
Running it twice is safe: the spool's dedupe key makes the second run count every
message as already present.
"""

from __future__ import annotations

import mailbox
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from mailgate import pipeline, spool
from mailgate.bootstrap import Services


class NotAMailbox(ValueError):
    """PATH is neither a Maildir (cur/ new/ tmp/) nor an mbox file."""


def open_mailbox(path: Path) -> mailbox.Mailbox:
    """The Maildir or mbox at ``path``, read-only in spirit (nothing is changed)."""
    if path.is_dir():
        if not all((path / sub).is_dir() for sub in ("cur", "new")):
            raise NotAMailbox(f"{path}: a folder but not a Maildir (no cur/ and new/)")
        return mailbox.Maildir(str(path), factory=None, create=False)
    if path.is_file():
        with open(path, "rb") as fh:
            if not fh.read(5) == b"From ":
                raise NotAMailbox(f"{path}: not an mbox (it does not start with 'From ')")
        return mailbox.mbox(str(path), factory=None, create=False)
    raise NotAMailbox(f"{path}: no such file or folder")


def messages(box: mailbox.Mailbox) -> Iterator[bytes]:
    """The raw bytes of every message in ``box``, in file order."""
    keys = box.keys()
    if isinstance(box, mailbox.Maildir):
        keys = sorted(keys)
    for key in keys:
        yield box.get_bytes(key)


def import_one(svc: Services, raw: bytes, tally: Counter) -> None:
    """Spool and process one message, counting what became of it in ``tally``."""
    stored = spool.intake(svc.engine, raw, door="import", mail_from=None, rcpt_tos=[],
                          now=svc.clock())
    # A duplicate may still be pending (an earlier run was interrupted): process() claims
    # it then, and returns None when it was processed already.
    result = pipeline.process(svc, stored.spool_id)
    if result is None:
        tally["already present"] += 1
    elif result.state in (spool.IGNORED, spool.FAILED):
        tally[result.state] += 1
    else:
        tally[{"created": "new tickets"}.get(result.outcome, result.outcome)] += 1
