"""Read a bounce: who could not be reached, and which of our mails it returns.

A delivery status notification (RFC 3464, sent as ``multipart/report`` per RFC 6522,
formerly RFC 3462) carries a ``message/delivery-status`` part: a per-message block,
then one block per recipient with ``Final-Recipient``, ``Action``, ``Status`` and
``Diagnostic-Code``.  Recipients whose ``Action`` is ``failed`` are the failed ones;
``delayed`` recipients (the MTA is still trying) are reported apart, in
``BounceReport.delayed``, and must not mark a contact as bouncing; ``delivered``,
``relayed`` and ``expanded`` are successes and are left out.

Many MTAs never learnt RFC 3464.  For them, in this order: Amazon SES JSON
notifications; RFC 3464 fields written into the text (amazonses/workmail, broken
MIME); flufl.bounce's MTA-specific detectors (Exim, qmail, Postfix, Yahoo, Google
Groups, …); and last the addresses that the notice itself names, line by line, less
the senders and the MTA's own addresses.  Everything but an explicit ``delayed``
counts as failed there.

The returned original (``message/rfc822`` or ``text/rfc822-headers``, or the headers
that MTAs without MIME quote inline) gives the Message-ID, In-Reply-To and References
of the mail that bounced, so the pipeline can find its ticket: ours carry the ticket
number and token (``mailgate.msgids``).

``parse_bounce`` never raises: garbage gives an empty report.
"""

from __future__ import annotations

import email
import email.policy
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message

from flufl.bounce import all_failures

from mailgate.classify import is_feedback_report
from mailgate.message import ADDRESS_RE, MSGID_RE, ParsedMail, decode_text, without_nul

log = logging.getLogger(__name__)
# flufl.bounce logs every detector it runs, and a traceback for one that trips.
logging.getLogger("flufl.bounce").setLevel(logging.CRITICAL)

DSN_TYPES = ("message/delivery-status", "message/global-delivery-status")
ORIGINAL_TYPES = ("message/rfc822", "message/global", "text/rfc822-headers",
                  "message/global-headers")
# ASCII only: in a notice, text in other scripts often touches the address.
CTYPE_RE = re.compile(r"\s*([\w.+-]+/[\w.+-]+)")
STATUS_RE = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")
# Where a notice ends and the returned message (or its headers) begins.
RETURNED_RE = re.compile(
    r"^[ \t>*-]*(?:original message|returned message|unsent message|"
    r"below (?:this line )?is a copy|this is a copy of|a copy of the original|"
    r"message headers follow|original message headers|included message|"
    r"start of returned message)"
    r"|^(?:received|return-path|x-received|delivered-to):", re.IGNORECASE | re.MULTILINE)
NOT_RECIPIENT_LOCALPARTS = {"mailer-daemon", "postmaster", "post_master", "noreply",
                            "no-reply", "do-not-reply", "donotreply"}
# Lines of a notice that name a sender, an alias target or a message, not a recipient.
NOT_RECIPIENT_LINE_RE = re.compile(
    r"^\W*(?:from|sender|reply-to|return-path|mail from|message-id|in-reply-to|"
    r"references)\b|envelope-from|envelope sender|generated from|expanded from|contact\b",
    re.IGNORECASE)
MSGID_LINE_RE = re.compile(r"^\W*(?:message-id|in-reply-to|references)\s*:.*$",
                           re.IGNORECASE | re.MULTILINE)
QUOTED_MSGID_RE = re.compile(r"^[>\s]*message-id\s*:\s*(<[^<>\s]+>)",
                             re.IGNORECASE | re.MULTILINE)
BOUNCE_HEADERS = ("from", "sender", "reply-to", "return-path", "to", "cc", "delivered-to")
ORIGINAL_SENDER_HEADERS = ("from", "sender", "reply-to", "return-path")


@dataclass
class FailedRecipient:
    """One recipient the bounce reports: failed for good (or, apart, delayed)."""

    address: str
    status: str = ""        # RFC 3463 enhanced status code, e.g. "5.1.1"; "" when unknown
    action: str = "failed"  # RFC 3464 §2.3.3 Action: "failed" (or "delayed")
    diagnostic: str = ""    # Diagnostic-Code, or the MTA's own words for it

    def __post_init__(self):
        # Read from the raw bounce, not from the parsed mail, whose texts are already
        # without NUL (message.py): PostgreSQL cannot store NUL in a text column, and
        # the address and the reason are written to the contact.
        self.address, self.status, self.diagnostic = (
            without_nul(self.address), without_nul(self.status), without_nul(self.diagnostic))


@dataclass
class BounceReport:
    """The failed recipients of a bounce and the identity of the mail it returns."""

    recipients: list[FailedRecipient] = field(default_factory=list)
    original_message_id: str | None = None
    original_references: list[str] = field(default_factory=list)
    delayed: list[FailedRecipient] = field(default_factory=list)

    @property
    def addresses(self) -> list[str]:
        """The failed addresses, lower-cased."""
        return [r.address for r in self.recipients]


def parse_bounce(raw: bytes, mail: ParsedMail) -> BounceReport:
    """The failed recipients and the returned original of the bounce ``raw``."""
    report = BounceReport()
    try:
        bounce = _Bounce(raw, mail)
    except Exception:  # noqa: BLE001 - a bounce we cannot read must not stop the pipeline
        log.debug("unreadable bounce", exc_info=True)
        return report
    try:
        found = _unique(bounce.recipients())
        report.recipients = [r for r in found if r.action != "delayed"]
        report.delayed = [r for r in found if r.action == "delayed"]
    except Exception:  # noqa: BLE001 - same: keep what the other half finds
        log.debug("no recipients read from bounce", exc_info=True)
    try:
        message_id, references = bounce.original_ids()
    except Exception:  # noqa: BLE001
        log.debug("no original read from bounce", exc_info=True)
        return report
    # Looked up in the database: on PostgreSQL a NUL in a parameter raises.
    report.original_message_id = message_id and without_nul(message_id)
    report.original_references = [without_nul(ref) for ref in references]
    return report


class _Bounce:
    """One bounce, taken apart: its notice text and the original it returns."""

    def __init__(self, raw: bytes, mail: ParsedMail):
        self.raw, self.mail = raw, mail
        self.msg = msg = email.message_from_bytes(raw, policy=email.policy.compat32)
        self.notice = _notice(msg)
        cut = RETURNED_RE.search(self.notice, 1)
        self.head = self.notice[: cut.start()] if cut else self.notice
        self.original = _mime_original(msg) or _inline_original(self.notice, cut)

    def recipients(self) -> list[FailedRecipient]:
        """The first source that knows: RFC 3464 parts, SES JSON, RFC 3464 fields in
        the text, flufl.bounce, then the addresses that the notice names.  A feedback
        report (ARF) complains about a mail that was delivered: nobody failed."""
        if self.is_feedback():
            return []
        blocks = _dsn_blocks(self.msg)
        if blocks:
            return _reported(blocks)
        ses = _ses_recipients(self.mail.text)
        if ses is not None:
            return ses
        blocks = [b for b in map(_field_block, _chunks(self.notice)) if _recipient_of(b)]
        if blocks:
            return _reported(blocks)
        skip, sent_to = self.not_recipients(), self.sent_to()
        found = [r for r in _flufl_recipients(self.msg) if _plausible(r.address, skip, sent_to)]
        return (found or _named_recipients(self.head, skip, sent_to)
                or self.only_recipient(skip))

    def is_feedback(self) -> bool:
        return is_feedback_report(self.mail) or any(
            _kind(p) == "message/feedback-report" for p in _outer_parts(self.msg))

    def original_ids(self) -> tuple[str | None, list[str]]:
        """Message-ID and In-Reply-To + References of the returned original; else the
        first Message-ID quoted in the body (broken MIME, message/partial, …)."""
        message_id, references = _ids_of(self.original) if self.original else (None, [])
        note = _ses_json(self.mail.text) if message_id is None else None
        if note is not None:
            return _ses_ids(note)
        if message_id is None:
            own = MSGID_RE.findall(decode_text(self.msg.get("message-id", "")))
            body = re.split(r"\r?\n\r?\n", self.raw.decode("utf-8", "replace"), maxsplit=1)[-1]
            quoted = [m for m in QUOTED_MSGID_RE.findall(body) if m not in own]
            message_id = quoted[0] if quoted else None
        return message_id, references

    def sent_to(self) -> set[str]:
        """The To and Cc addresses of the returned original."""
        return _addresses_in(self.original, ("to", "cc")) if self.original else set()

    def only_recipient(self, not_recipients: set[str]) -> list[FailedRecipient]:
        """A notice that names nobody, about a mail sent to one address: that one."""
        sent_to = self.sent_to() - not_recipients
        return [FailedRecipient(sent_to.pop(), "", "failed")] if len(sent_to) == 1 else []

    def not_recipients(self) -> set[str]:
        """Addresses that are surely no failed recipient: the bounce's own header
        addresses, the original's senders, and Message-IDs quoted anywhere."""
        known = _addresses_in(self.msg, BOUNCE_HEADERS)
        if self.original is not None:
            known |= _addresses_in(self.original, ORIGINAL_SENDER_HEADERS)
        for line in MSGID_LINE_RE.findall(self.notice):
            known |= {m.strip("<>").lower() for m in MSGID_RE.findall(line)}
        return known


def _unique(found: list[FailedRecipient]) -> list[FailedRecipient]:
    seen: dict[str, FailedRecipient] = {}
    for rcpt in found:
        if rcpt.address and rcpt.address not in seen:
            seen[rcpt.address] = rcpt
    return list(seen.values())


def _kind(part: Message) -> str:
    """The MIME type of a part, read leniently (a folded ``text/plain`` that lost its
    semicolon is still text/plain)."""
    match = CTYPE_RE.match(part.get_content_type())
    return match.group(1) if match else "text/plain"


def _outer_parts(msg: Message) -> Iterator[Message]:
    """The MIME parts of the bounce itself, not those of the message it returns (which
    may be an earlier bounce with a delivery-status of its own)."""
    yield msg
    kind = _kind(msg)
    if kind in ORIGINAL_TYPES or kind in DSN_TYPES or not msg.is_multipart():
        return
    for part in msg.get_payload():
        if isinstance(part, Message):
            yield from _outer_parts(part)


# --- RFC 3464 ----------------------------------------------------------------------


def _dsn_blocks(msg: Message) -> list[dict[str, str]]:
    """Every per-recipient block of the delivery-status parts, field names lower-case."""
    blocks: list[dict[str, str]] = []
    for part in _outer_parts(msg):
        if _kind(part) in DSN_TYPES:
            blocks.extend(b for b in _fields_of(part) if _recipient_of(b))
    return blocks


def _fields_of(part: Message) -> list[dict[str, str]]:
    """The field blocks of one delivery-status part, however the parser left it."""
    payload = part.get_payload()
    if isinstance(payload, list):  # the stdlib parses delivery-status into blocks
        return [{k.lower(): decode_text(v) for k, v in block.items()}
                for block in payload if isinstance(block, Message)]
    return [_field_block(chunk) for chunk in _chunks(_text_of(part))]


def _chunks(text: str) -> list[str]:
    return re.split(r"\r?\n[ \t]*\r?\n", text)


def _field_block(chunk: str) -> dict[str, str]:
    """``Name: value`` lines (with continuation lines) of one block of text."""
    fields: dict[str, str] = {}
    name = None
    for line in chunk.splitlines():
        if line[:1] in (" ", "\t") and name:
            fields[name] += " " + line.strip()
        elif ":" in line:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            fields[name] = value.strip()
    return fields


def _recipient_of(block: dict[str, str]) -> str:
    """The address of a per-recipient block: Final-Recipient, else Original-Recipient."""
    for name in ("final-recipient", "original-recipient", "x-actual-recipient"):
        value = block.get(name, "")
        # "rfc822; user@host" (RFC 3464 §2.3.2); some MTAs omit the type or add <>.
        match = ADDRESS_RE.search(value.partition(";")[2] if ";" in value else value)
        if match:
            return match.group(0).lower()
    return ""


def _reported(blocks: list[dict[str, str]]) -> list[FailedRecipient]:
    """The failed and the delayed recipients of RFC 3464 per-recipient blocks."""
    found = []
    for block in blocks:
        status = _status_in(block.get("status", ""))
        action = _action_of(block.get("action", "").strip().lower(), status)
        if action in ("failed", "delayed"):
            found.append(FailedRecipient(_recipient_of(block), status, action,
                                         " ".join(block.get("diagnostic-code", "").split())))
    return found


def _action_of(action: str, status: str) -> str:
    """RFC 3464 §2.3.3 Action, normalised: ``error`` and ``expired`` mean ``failed``, some
    MTAs add comments, and a block without Action falls back on its Status class."""
    for known in ("failed", "delayed", "delivered", "relayed", "expanded"):
        if action.startswith(known):
            return known
    if action.startswith(("error", "expired")):  # opensmtpd; SendGrid gave up
        return "failed"
    return {"5": "failed", "4": "delayed", "2": "delivered"}.get(status[:1], action)


def _status_in(text: str) -> str:
    match = STATUS_RE.search(text)
    return match.group(1) if match else ""


# --- Amazon SES ----------------------------------------------------------------------


def _ses_recipients(text: str) -> list[FailedRecipient] | None:
    """Amazon SES notifications (JSON, bare or in an SNS envelope); None if not one."""
    note = _ses_json(text)
    if note is None:
        return None
    if note.get("notificationType", note.get("eventType")) != "Bounce":
        return []  # a Delivery or a Complaint: nobody failed
    bounce = note.get("bounce") or {}
    transient = bounce.get("bounceType") == "Transient"
    return [FailedRecipient(str(r.get("emailAddress", "")).lower(),
                            str(r.get("status") or ("4.0.0" if transient else "5.0.0")),
                            str(r.get("action") or ("delayed" if transient else "failed")),
                            str(r.get("diagnosticCode") or ""))
            for r in bounce.get("bouncedRecipients") or [] if isinstance(r, dict)]


def _ses_json(text: str) -> dict | None:
    start = text.find("{")
    if start < 0 or ('"notificationType"' not in text and '"eventType"' not in text
                     and '\\"notificationType\\"' not in text):
        return None
    try:  # strict=False: mail transport folds long lines, inside strings too
        note = json.JSONDecoder(strict=False).raw_decode(text[start:])[0]
    except ValueError:
        return None
    if isinstance(note, dict) and isinstance(note.get("Message"), str):  # SNS envelope
        return _ses_json(note["Message"])
    return note if isinstance(note, dict) and "mail" in note else None


def _ses_ids(note: dict) -> tuple[str | None, list[str]]:
    """The original's Message-ID and In-Reply-To/References as SES lists them."""
    mail = note.get("mail") if isinstance(note.get("mail"), dict) else {}
    headers = {str(h.get("name", "")).lower(): str(h.get("value", ""))
               for h in mail.get("headers") or [] if isinstance(h, dict)}
    common = mail.get("commonHeaders") if isinstance(mail.get("commonHeaders"), dict) else {}
    ids = MSGID_RE.findall(str(common.get("messageId") or headers.get("message-id", "")))
    refs = MSGID_RE.findall(headers.get("in-reply-to", "") + " " + headers.get("references", ""))
    return (ids[0] if ids else None), list(dict.fromkeys(refs))


# --- MTAs without RFC 3464 ------------------------------------------------------------


def _flufl_recipients(msg: Message) -> list[FailedRecipient]:
    """The failures that flufl.bounce's MTA-specific detectors find."""
    try:
        temporary, permanent = all_failures(msg)
    except Exception:  # noqa: BLE001 - a detector that trips on odd input is no answer
        return []
    found = [FailedRecipient(a.decode("ascii", "replace").lower(), "", "failed")
             for a in sorted(permanent)]
    return found + [FailedRecipient(a.decode("ascii", "replace").lower(), "", "delayed")
                    for a in sorted(temporary - permanent)]


def _plausible(address: str, not_recipients: set[str], sent_to: set[str]) -> bool:
    """Not a sender, and not an MTA's own address unless the original was sent to it."""
    return bool(ADDRESS_RE.fullmatch(address)) and address not in not_recipients and (
        address in sent_to or address.partition("@")[0] not in NOT_RECIPIENT_LOCALPARTS)


def _named_recipients(head: str, not_recipients: set[str],
                      sent_to: set[str]) -> list[FailedRecipient]:
    """Last resort: the first plausible address of each line of the notice, up to the
    returned message.  Where some lines start with an address (the list of failed
    recipients most MTAs print), only those lines count: the others are prose that may
    name a help-desk address."""
    found, listed = [], []
    for line in head.splitlines():
        if NOT_RECIPIENT_LINE_RE.search(line):
            continue
        for match in ADDRESS_RE.finditer(line):
            address = match.group(0).lower().strip(".")
            if _plausible(address, not_recipients, sent_to):
                rcpt = FailedRecipient(address, _status_in(line), "failed", " ".join(line.split()))
                found.append(rcpt)
                if not line[: match.start()].strip(" \t<>*-"):
                    listed.append(rcpt)
                break
    return listed or found


def _addresses_in(headers: Message, names: tuple[str, ...]) -> set[str]:
    return {a.lower() for name in names for value in headers.get_all(name, [])
            for a in ADDRESS_RE.findall(decode_text(value))}


# --- the notice and the returned original --------------------------------------------


def _notice(msg: Message) -> str:
    """The bounce's own words: its text parts, without the message it returns."""
    parts = list(_outer_parts(msg))
    texts = [_text_of(p) for p in parts
             if _kind(p) == "text/plain" or _broken_multipart(p)]
    if not any(t.strip() for t in texts):
        texts = [re.sub(r"<[^>]*>", " ", _text_of(p)) for p in parts
                 if _kind(p) == "text/html"]
    return "\n".join(texts)


def _broken_multipart(part: Message) -> bool:
    """A multipart whose boundary never comes: the parser leaves its body as text."""
    return _kind(part).startswith("multipart/") and isinstance(part.get_payload(), str)


def _text_of(part: Message) -> str:
    data = None if part.is_multipart() else part.get_payload(decode=True)
    if not isinstance(data, bytes):
        payload = part.get_payload()
        return payload if isinstance(payload, str) else ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return data.decode(charset, "replace")
    except LookupError:
        return data.decode("utf-8", "replace")


def _mime_original(msg: Message) -> Message | None:
    """The headers of the returned message from its MIME part, if it has one."""
    for part in _outer_parts(msg):
        if _kind(part) not in ORIGINAL_TYPES:
            continue
        payload = part.get_payload()
        if isinstance(payload, list) and payload and isinstance(payload[0], Message) \
                and payload[0].keys():
            return payload[0]
        text = payload[0].as_string() if isinstance(payload, list) and payload \
            else _text_of(part)
        return email.message_from_string(text.lstrip("\r\n"), policy=email.policy.compat32)
    return None


def _inline_original(notice: str, cut: re.Match | None) -> Message | None:
    """The headers of the returned message quoted in the text of a notice."""
    if cut is None:
        return None
    start = cut.start() if cut.group(0)[:1].isalpha() and cut.group(0).endswith(":") \
        else notice.find("\n", cut.start()) + 1
    text = notice[start:].lstrip("\r\n")
    headers = email.message_from_string(text, policy=email.policy.compat32)
    return headers if headers.keys() else None


def _ids_of(headers: Message) -> tuple[str | None, list[str]]:
    """Message-ID, and In-Reply-To then References, of a returned original."""
    ids = MSGID_RE.findall(decode_text(headers.get("message-id", "")))
    refs = MSGID_RE.findall(" ".join(decode_text(v) for v in
                                     headers.get_all("in-reply-to", []) +
                                     headers.get_all("references", [])))
    return (ids[0] if ids else None), list(dict.fromkeys(refs))
