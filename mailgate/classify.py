"""Classify a message: normal, auto_reply, bounce, loop or bulk (SPEC §3 step 2).

Only ``normal`` mail may open a ticket or be answered.  The tests here follow
RFC 3834 §2 (Auto-Submitted, and the conventions it lists: Precedence, list headers),
RFC 3464 (delivery status notifications as multipart/report) and our own loop markers.
Each verdict carries the reason, recorded on the spool row.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailgate import msgids
from mailgate.message import ParsedMail

NORMAL, AUTO_REPLY, BOUNCE, LOOP, BULK = "normal", "auto_reply", "bounce", "loop", "bulk"

BOUNCE_LOCALPARTS = {"mailer-daemon", "postmaster"}
AUTO_REPLY_HEADERS = ("x-autoreply", "x-autorespond", "x-autoresponder")
BULK_PRECEDENCE = {"bulk", "junk", "list"}


@dataclass(frozen=True)
class Classification:
    """The kind of a message and why."""

    kind: str
    reason: str = ""

    @property
    def normal(self) -> bool:
        return self.kind == NORMAL


@dataclass(frozen=True)
class OwnMarks:
    """What makes a message ours: our addresses, our X-Loop value, our Message-ID domain."""

    addresses: frozenset[str]
    x_loop: str
    msgid_domain: str


def classify(mail: ParsedMail, mail_from: str | None, own: OwnMarks) -> Classification:
    """The kind of ``mail`` received with envelope sender ``mail_from``."""
    for check in (_loop, _bounce, _auto_reply, _bulk):
        verdict = check(mail, mail_from, own)
        if verdict:
            return verdict
    return Classification(NORMAL)


def _loop(mail: ParsedMail, _mail_from, own: OwnMarks) -> Classification | None:
    for value in mail.headers.get("x-loop", []):
        if value.strip().lower() in own.addresses | {own.x_loop}:
            return Classification(LOOP, f"carries our X-Loop {value.strip()}")
    if mail.message_id and msgids.is_ours(mail.message_id, own.msgid_domain):
        return Classification(LOOP, f"its Message-ID {mail.message_id} is one of ours")
    if mail.from_addr in own.addresses:
        return Classification(LOOP, f"sent from our own address {mail.from_addr}")
    return None


def _bounce(mail: ParsedMail, mail_from, _own) -> Classification | None:
    # RFC 5321 §4.5.5: notifications are sent with a null reverse-path.
    if mail_from is not None and mail_from.strip("<> ") == "":
        return Classification(BOUNCE, "null envelope sender (delivery notification)")
    if mail.from_addr.partition("@")[0] in BOUNCE_LOCALPARTS:
        return Classification(BOUNCE, f"sent by {mail.from_addr}")
    if mail.content_type == "multipart/report":
        return Classification(BOUNCE, "multipart/report (RFC 3464 / RFC 3462)")
    return None


def _auto_reply(mail: ParsedMail, _mail_from, _own) -> Classification | None:
    auto = mail.header("auto-submitted").strip().lower()
    if auto and auto.split(";")[0].strip() != "no":
        return Classification(AUTO_REPLY, f"Auto-Submitted: {auto} (RFC 3834 §5)")
    for name in AUTO_REPLY_HEADERS:
        if mail.header(name):
            return Classification(AUTO_REPLY, f"carries {name}")
    if mail.header("precedence").strip().lower() == "auto_reply":
        return Classification(AUTO_REPLY, "Precedence: auto_reply")
    return None


def _bulk(mail: ParsedMail, _mail_from, _own) -> Classification | None:
    precedence = mail.header("precedence").strip().lower()
    if precedence in BULK_PRECEDENCE:
        return Classification(BULK, f"Precedence: {precedence}")
    if mail.header("list-id"):
        return Classification(BULK, "mailing list mail (List-Id)")
    if mail.header("list-unsubscribe"):
        return Classification(BULK, "mass mailing (List-Unsubscribe)")
    return None
