"""Classify a message: normal, auto_reply, bounce, loop or bulk (SPEC §3 step 2).

Only ``normal`` mail may open a ticket or be answered.  Each verdict carries the
reason, recorded on the spool row.  The checks run in this order, first hit wins:

1. **loop** — our own X-Loop, one of our Message-IDs, or one of our addresses as sender.
2. **reports** — ``multipart/report`` (RFC 6522, formerly RFC 3462): a delivery status
   notification (RFC 3464) or a feedback report (ARF, RFC 5965) is a ``bounce``; a
   read receipt (MDN, RFC 8098) an ``auto_reply``.  A ``message/delivery-status`` or
   ``message/feedback-report`` part anywhere (DSNs sent as multipart/mixed) counts the
   same; so do Amazon SES JSON notifications and Microsoft JMRP complaints.  ARF
   reports have no kind of their own: they are ``bounce`` with reason
   "ARF feedback report", so they open nothing and mark nobody.
3. **bounce** — RFC 5321 §4.5.5: notifications come from the null reverse-path, so a
   ``From: <>`` or ``MAILER-DAEMON``/``postmaster`` sender is a bounce, as is Exim's
   ``X-Failed-Recipients``.  A well-known bounce subject (en/it/hu/ru/de/fr) or bounce
   wording in the first lines counts only together with a sign that a machine sent
   the mail (null Return-Path, Auto-Submitted, a no-reply or mailer-daemon sender):
   customers write "Mail delivery failed" in their subjects too, and so do the
   forwarded bounces they ask us about (``Fwd: Returned mail``), which stay normal.
4. **auto_reply** — RFC 3834 §5 ``Auto-Submitted`` other than ``no``; the
   ``X-Autoreply``-family headers; ``Precedence: auto_reply``; vacation subjects
   ("Automatic reply:", "Out of Office:", "Abwesenheitsnotiz", "Risposta automatica",
   "Automatikus válasz", "Автоматический ответ", …); and the first lines of the body,
   where a self-declared automatic reply counts alone but an out-of-office sentence
   ("I am out of the office", "sono assente", "Házon kívül vagyok", "Я в отпуске",
   "Ich bin nicht im Büro") needs a second sign: a return date / "limited access" /
   "in urgent cases contact" sentence, or an automatic header.  A customer who writes
   "I'm out of the office today, please reset my VPN password" must reach us.

   ``X-Auto-Response-Suppress`` (Exchange) never decides on its own: Outlook puts it
   on ordinary mail too (meeting responses, mail sent through some add-ins and
   gateways, "All" on much of Exchange's own traffic), since it only asks *others*
   not to answer.  It is one of the automatic signs that confirm an out-of-office
   sentence, nothing more.
5. **null sender** — the null envelope sender or ``Return-Path: <>`` with none of the
   above is a bounce (RFC 5321 §4.5.5; RFC 3834 §3.3 asks auto-replies to use it too,
   which is why it comes after them).
6. **bulk** — ``Precedence: bulk/junk/list`` (RFC 3834 §2), ``List-Id`` (RFC 2919),
   ``List-Unsubscribe`` (RFC 2369), and mailing-list software's own headers.

A ``noreply@`` sender alone classifies nothing (monitoring alerts come from such
addresses and must open tickets); the outbound side never answers it (SPEC §8).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailgate import msgids
from mailgate.message import ParsedMail

NORMAL, AUTO_REPLY, BOUNCE, LOOP, BULK = "normal", "auto_reply", "bounce", "loop", "bulk"

BOUNCE_LOCALPARTS = {"mailerdaemon", "postmaster"}  # compared without . _ -
NOREPLY_LOCALPARTS = {"noreply", "donotreply", "bounce", "bounces"}
AUTO_REPLY_HEADERS = ("x-autoreply", "x-autorespond", "x-autoresponder", "x-autoreply-from",
                      "x-mail-autoreply")
BULK_PRECEDENCE = {"bulk", "junk", "list"}
LIST_SOFTWARE_HEADERS = ("x-mlserver", "mailing-list", "x-ml-name", "x-mailman-version")
DSN_PARTS = {"message/delivery-status", "message/global-delivery-status"}
ARF_PARTS = {"message/feedback-report"}
TEXT_HEAD = 1500  # the characters of the body that the heuristics read

_I = re.IGNORECASE
MACHINE_NAME_RE = re.compile(r"mail delivery (sub)?system|mailer[ -]?daemon|postmaster|"
                             r"mail administrator|ndr administrator", _I)
BOUNCE_SUBJECT_RE = re.compile(
    r"^\s*(?:undeliver(?:ed|able)|undelivered mail returned to sender|"
    r"delivery (?:status )?notification|"
    r"mail delivery (?:failed|failure|system)|returned mail|return(?:ed)? to sender|"
    r"delivery (?:failure|failed|has failed|problem)|failure notice|non[- ]?deliver|"
    r"message (?:not delivered|delivery failed)|mail (?:system error|could not be delivered)|"
    r"warning: could not send|could not send message|"
    r"mancato recapito|messaggio non recapitato|non recapitabile|impossibile recapitare|"
    r"kézbesítési hiba|nem kézbesíthető|kézbesíthetetlen|"
    r"недоставленное сообщение|недоставляемое|не доставлено|не удалось доставить|"
    r"сообщение не доставлено|ошибка доставки|"
    r"unzustellbar|nicht zustellbar|zustellung fehlgeschlagen|"
    r"non remis|échec de (?:la )?remise|message non distribué|"
    r"メールエラー)", _I)
BOUNCE_TEXT_RE = re.compile(
    r"could ?n[o']t be delivered|undeliverable|delivery (?:has )?failed|"
    r"permanent (?:fatal )?error|was not delivered|unable to deliver|failed to deliver|"
    r"could not deliver|delivery to the following recipients? (?:failed|has been delayed)|"
    r"the following (?:address(?:es)?|recipients?) (?:had|failed|could not)|"
    r"non-?delivery|user unknown|no such user|invalid (?:user|recipient)|"
    r"mailbox (?:is )?(?:full|unavailable)|rcpt to|error delivering your mail|"
    r"mail delivery (?:failed|system|subsystem)", _I)
# Subjects that say "automatic reply" in so many words: enough on their own.
AUTO_SUBJECT_RE = re.compile(
    r"^\s*(?:auto(?:matic|mated)?[ -]?(?:reply|response|answer)|auto|autoreply|"
    r"out of office auto ?reply|abwesenheitsnotiz|automatische antwort|"
    r"risposta automatica|automatikus válasz|автоматический ответ|автоответ|"
    r"réponse automatique)\s*:", _I)
# Subjects that say "away": a person could write them too, so they need a second sign.
AWAY_SUBJECT_RE = re.compile(
    r"^\s*(?:out of (?:the )?office|ooo|away from (?:the )?office|on vacation|vacation|"
    r"abwesend|nicht im büro|fuori (?:sede|ufficio)|assente|in ferie|"
    r"házon kívül|szabadság(?:on)?|вне офиса|в отпуске|absence|absent)\s*(?::|$)"
    r"|\b(?:is|am) (?:currently )?out of (?:the )?office\b", _I)
# A body that declares itself automatic, in a sentence no customer writes.
AUTO_DECLARED_RE = re.compile(
    r"\bthis is an? auto(?:matic(?:ally generated)?|mated|-?generated)?[ -]?"
    r"(?:reply|response|message|answer|notification)\b|"
    r"\bquest[oa] è una? (?:messaggio|risposta) automatic[oa]\b|"
    r"\bdies ist eine automatische (?:antwort|nachricht|abwesenheitsnotiz)\b|"
    r"\bez egy automatikus (?:válasz|üzenet)\b|"
    r"\bэто автоматическ(?:ий ответ|ое сообщение)", _I)
# "I am out of the office": an out-of-office sentence, present or future tense.
OUT_OF_OFFICE_RE = re.compile(
    r"\b(?:i am|i'm|i will be|i'll be)\s+(?:currently\s+|now\s+)?"
    r"(?:out of (?:the )?office|away|on (?:annual |parental |sick )?(?:leave|vacation|holiday)|"
    r"out of town|not in the office|absent)"
    r"|\bsono\s+(?:attualmente\s+|momentaneamente\s+)?(?:assente|fuori (?:sede|ufficio)|"
    r"in (?:ferie|vacanza|trasferta|maternità))|\bsarò\s+(?:assente|fuori|in ferie)"
    r"|\bich\s+(?:bin|befinde mich)\s+(?:\S+\s+){0,6}?(?:nicht im büro|abwesend|"
    r"außer haus|im urlaub|auf dienstreise)"
    r"|\bházon kívül vagyok|\bszabadságon vagyok|\bnem vagyok (?:elérhető|az irodában)"
    r"|\bя\s+(?:сейчас\s+|в настоящее время\s+)?(?:в отпуске|вне офиса|в командировке|"
    r"отсутствую)|\bменя нет в офисе|\bвне офиса", _I)
# What out-of-office notices add and help requests do not.
OUT_OF_OFFICE_MORE_RE = re.compile(
    r"limited access|access to (?:my )?e-?mail|upon my return|on my return|in my absence|"
    r"for urgent|urgent matters|in urgent cases|back in the office|return(?:ing)? to the office|"
    r"will (?:respond|reply|get back to you|answer).{0,40}\breturn|"
    r"al mio rientro|per urgenze|in caso di urgenza|accesso limitato|rientrerò|"
    r"in dringenden fällen|wieder im büro|eingeschränkte[mn]? zugriff|nach meiner rückkehr|"
    r"wird nicht weitergeleitet|"
    r"sürgős esetben|visszatérésem után|korlátozott|"
    r"по срочным вопросам|в срочных случаях|по возвращении|ограниченн", _I)
ARF = "ARF feedback report"  # how every feedback-report reason starts
REPORT_TYPE_RE = re.compile(r"report-type\s*=\s*\"?([\w-]+)", _I)


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
    for check in (_loop, _report, _bounce, _auto_reply, _null_sender, _bulk):
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


# --- reports: DSN, ARF, MDN ------------------------------------------------------------


def is_feedback_report(mail: ParsedMail) -> bool:
    """True for an abuse/feedback report (ARF, RFC 5965, or its SES and JMRP cousins):
    a complaint about a mail, not a failed delivery; it marks nobody as bouncing."""
    verdict = _report(mail, None, None)
    return verdict is not None and verdict.reason.startswith(ARF)


def _report(mail: ParsedMail, _mail_from, _own) -> Classification | None:
    return _multipart_report(mail) or _report_part(mail) or _ses(mail) or _jmrp(mail)


def _multipart_report(mail: ParsedMail) -> Classification | None:
    """RFC 6522 multipart/report, by its report-type."""
    if mail.content_type != "multipart/report":
        return None
    found = REPORT_TYPE_RE.search(mail.header("content-type"))
    report_type = found.group(1).lower() if found else ""
    if report_type == "feedback-report":
        return Classification(BOUNCE, f"{ARF} (RFC 5965)")
    if report_type == "disposition-notification":
        return Classification(AUTO_REPLY, "read receipt (RFC 8098 disposition notification)")
    return Classification(BOUNCE, "delivery status notification, multipart/report "
                                  "(RFC 3464, RFC 6522)")


def _report_part(mail: ParsedMail) -> Classification | None:
    """A DSN or ARF part inside some other multipart (multipart/mixed DSNs).  ParsedMail
    shows only the parts that mail-parser lists as attachments (those with a file name);
    unnamed ones are left to the sender and subject rules."""
    kinds = {a.content_type for a in mail.attachments}
    if kinds & ARF_PARTS:
        return Classification(BOUNCE, f"{ARF} (message/feedback-report part)")
    if kinds & DSN_PARTS:
        return Classification(BOUNCE, "carries a message/delivery-status part (RFC 3464)")
    return None


def _ses(mail: ParsedMail) -> Classification | None:
    """Amazon SES notifications: JSON in a text body, sent through SNS."""
    if not (mail.header("x-amz-sns-message-id") or mail.from_addr.endswith(
            ("@sns.amazonaws.com", "@amazonses.com", ".amazonses.com"))):
        return None
    found = re.search(r'\\?"(?:notificationType|eventType)\\?"\s*:\s*\\?"(\w+)', mail.text)
    if not found:
        return None
    kind = found.group(1)
    if kind == "Complaint":
        return Classification(BOUNCE, f"{ARF} (Amazon SES complaint)")
    return Classification(BOUNCE, f"Amazon SES {kind.lower()} notification")


def _jmrp(mail: ParsedMail) -> Classification | None:
    """Microsoft's junk mail reporting program: ARF-like, but multipart/mixed."""
    domain = mail.from_addr.rpartition("@")[2]
    if domain in ("hotmail.com", "outlook.com", "live.com", "msn.com") and re.match(
            r"\s*complaint about message from", mail.subject, _I):
        return Classification(BOUNCE, f"{ARF} (Microsoft JMRP complaint)")
    return None


# --- bounces ------------------------------------------------------------------------------


def _bounce(mail: ParsedMail, mail_from, _own) -> Classification | None:
    sender = _bounce_sender(mail)
    if sender:
        return Classification(BOUNCE, sender)
    if mail.header("x-failed-recipients"):
        return Classification(BOUNCE, "carries X-Failed-Recipients (Exim bounce)")
    machine = _machine_sign(mail, mail_from)
    if machine and BOUNCE_SUBJECT_RE.search(mail.subject):
        return Classification(BOUNCE, f"bounce subject {mail.subject!r} and {machine}")
    strong = _machine_sign(mail, mail_from, strong=True)
    if strong and BOUNCE_TEXT_RE.search(_head(mail)) and not _vacation_subject(mail, mail_from):
        return Classification(BOUNCE, f"bounce wording in the text and {strong}")
    return None


def _bounce_sender(mail: ParsedMail) -> str | None:
    """RFC 5321 §4.5.5: DSNs come from MAILER-DAEMON / postmaster, or ``From: <>``."""
    local = _plain_local(mail.from_addr)
    if local in BOUNCE_LOCALPARTS:
        return f"sent by {mail.from_addr}"
    raw_from = " ".join(mail.headers.get("from", []))
    if not mail.from_addr and ("<>" in raw_from or "mailer-daemon" in raw_from.lower()):
        return f"null or mailer-daemon From: {raw_from.strip()}"
    return None


def _machine_sign(mail: ParsedMail, mail_from: str | None, strong: bool = False) -> str | None:
    """A sign that no person sent the mail, or None.  A no-reply sender is a weak one
    (monitoring systems send from such addresses): it counts only when not ``strong``."""
    if _null_envelope(mail_from):
        return "the null envelope sender"
    if _null_return_path(mail):
        return "Return-Path: <>"
    auto = _auto_submitted(mail)
    if auto:
        return f"Auto-Submitted: {auto}"
    if MACHINE_NAME_RE.search(" ".join(mail.headers.get("from", []))):
        return "a mail system as sender"
    local = _plain_local(mail.from_addr)
    if not strong and (local in NOREPLY_LOCALPARTS or local.startswith("noreply")):
        return f"the no-reply sender {mail.from_addr}"
    return None


# --- auto replies (RFC 3834) -----------------------------------------------------------------


def _auto_reply(mail: ParsedMail, mail_from, _own) -> Classification | None:
    auto = _auto_submitted(mail)
    if auto:
        return Classification(AUTO_REPLY, f"Auto-Submitted: {auto} (RFC 3834 §5)")
    header = _auto_reply_header(mail)
    if header:
        return Classification(AUTO_REPLY, header)
    return _vacation_subject(mail, mail_from) or _vacation_text(mail, mail_from)


def _auto_reply_header(mail: ParsedMail) -> str | None:
    for name in AUTO_REPLY_HEADERS:
        if mail.header(name):
            return f"carries {name}"
    if mail.header("precedence").strip().lower() == "auto_reply":
        return "Precedence: auto_reply"
    if mail.header("x-autogenerated").strip().lower() == "reply":
        return "X-Autogenerated: Reply"
    if mail.header("x-apple-action").strip().lower() == "vacation":
        return "X-Apple-Action: VACATION (iCloud vacation reply)"
    return None


def _vacation_subject(mail: ParsedMail, mail_from) -> Classification | None:
    """"Automatic reply: …" alone; "Out of Office: …" with a second sign (it is a reply,
    or an automatic or Exchange header says so)."""
    if AUTO_SUBJECT_RE.search(mail.subject):
        return Classification(AUTO_REPLY, f"automatic-reply subject {mail.subject!r}")
    if AWAY_SUBJECT_RE.search(mail.subject):
        sign = _exchange_sign(mail) or _machine_sign(mail, mail_from) or (
            (mail.in_reply_to or mail.references) and "it answers a mail")
        if sign:
            return Classification(AUTO_REPLY, f"out-of-office subject {mail.subject!r} "
                                              f"and {sign}")
    return None


def _vacation_text(mail: ParsedMail, mail_from) -> Classification | None:
    """Out-of-office wording in the first lines: a self-declared automatic reply counts
    alone; an out-of-office sentence needs a second sign."""
    head = _head(mail, lines=6)
    declared = AUTO_DECLARED_RE.search(head)
    if declared:
        return Classification(AUTO_REPLY, f"declares itself automatic: {declared.group(0)!r}")
    away = OUT_OF_OFFICE_RE.search(head)
    if not away:
        return None
    more = OUT_OF_OFFICE_MORE_RE.search(head)
    sign = (more and f"{more.group(0)!r}") or _exchange_sign(mail) or \
        _machine_sign(mail, mail_from, strong=True)
    if sign:
        return Classification(AUTO_REPLY, f"out-of-office text {away.group(0)!r} and {sign}")
    return None


def _exchange_sign(mail: ParsedMail) -> str | None:
    """Headers that Exchange puts on its inbox-rule and OOF answers."""
    if mail.header("x-ms-exchange-inbox-rules-loop"):
        return "X-MS-Exchange-Inbox-Rules-Loop"
    suppress = mail.header("x-auto-response-suppress")
    if re.search(r"\b(all|oof|autoreply)\b", suppress, _I):
        return f"X-Auto-Response-Suppress: {suppress.strip()}"
    return None


# --- null sender, bulk ------------------------------------------------------------------------


def _null_sender(mail: ParsedMail, mail_from, _own) -> Classification | None:
    # RFC 5321 §4.5.5: notifications are sent with a null reverse-path.
    if _null_envelope(mail_from):
        return Classification(BOUNCE, "null envelope sender (delivery notification)")
    if _null_return_path(mail):
        return Classification(BOUNCE, "Return-Path: <> (null reverse-path, RFC 5321 §4.5.5)")
    return None


def _bulk(mail: ParsedMail, _mail_from, _own) -> Classification | None:
    precedence = mail.header("precedence").strip().lower()
    if precedence in BULK_PRECEDENCE:
        return Classification(BULK, f"Precedence: {precedence}")
    if mail.header("list-id"):
        return Classification(BULK, "mailing list mail (List-Id)")
    if mail.header("list-unsubscribe"):
        return Classification(BULK, "mass mailing (List-Unsubscribe)")
    for name in LIST_SOFTWARE_HEADERS:
        if mail.header(name):
            return Classification(BULK, f"mailing list software ({name})")
    return None


# --- helpers --------------------------------------------------------------------------------


def _auto_submitted(mail: ParsedMail) -> str | None:
    """The Auto-Submitted value when it is not ``no`` (RFC 3834 §5), else None."""
    auto = mail.header("auto-submitted").strip().lower()
    return auto if auto and auto.split(";")[0].split("(")[0].strip() != "no" else None


def _null_envelope(mail_from: str | None) -> bool:
    return mail_from is not None and mail_from.strip("<> ") == ""


def _null_return_path(mail: ParsedMail) -> bool:
    """The topmost Return-Path (the final delivery's record of the envelope) is <>."""
    values = mail.headers.get("return-path", [])
    return bool(values) and values[0].strip("<> \t\r\n") == ""


def _plain_local(address: str) -> str:
    """The local part without the . _ - that vary between MTAs (post_master, mailer_daemon)."""
    return re.sub(r"[._-]", "", address.partition("@")[0].lower()) if "@" in address \
        else re.sub(r"[._-]", "", address.lower())


def _head(mail: ParsedMail, lines: int = 0) -> str:
    """The first ``TEXT_HEAD`` characters of the text, or its first non-blank ``lines``."""
    text = mail.text[:TEXT_HEAD]
    if lines:
        text = "\n".join([line for line in text.splitlines() if line.strip()][:lines])
    return text
