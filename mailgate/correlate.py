"""Find the ticket a message belongs to (SPEC §3 step 4).

In order: a Message-ID in In-Reply-To/References that we sent about a ticket (its
token must match), or one we received on a ticket; else the subject tag ``[#N]`` or a
bare ``#N`` naming a ticket that exists.  The match says how it was found, because
authorization treats a tokenised reply differently from a typed number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import bindparam
from sqlmodel import Session, select

from mailgate import msgids
from mailgate.db import first
from mailgate.message import ParsedMail
from mailgate.models import Article, Ticket

VIA_TOKEN, VIA_REFERENCE, VIA_SUBJECT = "token", "reference", "subject"

# Built once (db.first).  FOR UPDATE: the ticket a mail lands on stays locked until the
# mail's transaction ends.  On PostgreSQL two workers may process two mails about one
# ticket at once; unlocked, both read the same state and both act on it (two managers'
# decisions both taken, two ``#time`` adding to the same old total).  The second now
# waits for the first and reads what it wrote.  SQLite has one writer at a time
# (turns.py) and its dialect leaves the clause out.
_BY_NUMBER = select(Ticket).where(Ticket.number == bindparam("number")).with_for_update()
# The ticket of a message we received: joined, so the article's texts are not read.
_BY_RECEIVED = (select(Ticket).join(Article, Article.ticket_id == Ticket.id)
                .where(Article.message_id == bindparam("message_id"), Article.direction == "in")
                .order_by(Article.id).limit(1).with_for_update(of=Ticket))

# The most digits of a ticket number that a tag or a command names (an integer column
# on PostgreSQL holds ten).
MAX_TICKET_DIGITS = 9
# A bare tag: "#123" not preceded by a word character or "&" (HTML entities).
_BARE_TAG = re.compile(rf"(?<![\w&#])#(\d{{1,{MAX_TICKET_DIGITS}}})\b")

# Reply and forward prefixes that mail clients put before a subject, in the languages
# of our customers: Re/R/RE, AW/WG (de), Fwd/FW/I/TR, SV/VS (nordic), Vá/Továbbítás (hu),
# Отв/Ответ/Пересл (ru); "Re[2]:" counters included.
_PREFIXES = re.compile(
    r"^(?:\s*(?:re|r|aw|wg|fwd?|i|tr|sv|vs|antw|vá|továbbítás|отв|ответ|пересл)"
    r"\s*(?:\[\d+\]|\(\d+\))?\s*:\s*)+",
    re.IGNORECASE,
)


@dataclass
class ThreadMatch:
    """The ticket found and how: ``token``, ``reference`` or ``subject``."""

    ticket: Ticket
    via: str


class SubjectTag:
    """Formats and finds the subject tag configured as ``tickets.subject_tag``."""

    def __init__(self, fmt: str):
        self.fmt = fmt
        before, _, after = fmt.partition("{number}")
        self._configured = re.compile(re.escape(before) + rf"(\d{{1,{MAX_TICKET_DIGITS}}})"
                                      + re.escape(after))

    def format(self, number: int) -> str:
        """The tag for ticket ``number``, e.g. ``[#10001]``."""
        return self.fmt.format(number=number)

    def numbers(self, subject: str) -> list[int]:
        """Ticket numbers named in ``subject``: configured tags first, then bare ``#N``."""
        found = [int(n) for n in self._configured.findall(subject)]
        found += [int(n) for n in _BARE_TAG.findall(subject) if int(n) not in found]
        return found

    def clean(self, subject: str) -> str:
        """``subject`` without our tags and without leading Re:/Fwd:/AW:/Отв: prefixes."""
        stripped = " ".join(self._configured.sub(" ", subject).split())
        previous = None
        while previous != stripped:
            previous, stripped = stripped, strip_reply_prefixes(stripped)
        return stripped

    def tagged(self, subject: str, number: int) -> str:
        """``subject`` carrying the tag of ``number`` exactly once."""
        if number in self.numbers(subject):
            return subject
        return f"{self.format(number)} {subject}".strip()


def strip_reply_prefixes(subject: str) -> str:
    """``subject`` without leading Re:/Fwd:/AW:/Отв: prefixes."""
    return _PREFIXES.sub("", subject).strip()


def thread(session: Session, mail: ParsedMail, tag: SubjectTag, domain: str) -> ThreadMatch | None:
    """The ticket ``mail`` belongs to, or None for a new ticket.  Mail about a merged
    ticket lands on the ticket it was merged into."""
    referenced = list(dict.fromkeys(mail.in_reply_to + mail.references[::-1]))
    for message_id in referenced:
        match = _by_message_id(session, message_id, domain)
        if match:
            return _follow_merges(session, match)
    for number in tag.numbers(mail.subject):
        ticket = first(session, _BY_NUMBER, number=number)
        if ticket:
            return _follow_merges(session, ThreadMatch(ticket, VIA_SUBJECT))
    return None


def _follow_merges(session: Session, match: ThreadMatch) -> ThreadMatch:
    seen = {match.ticket.number}
    while match.ticket.merged_into and match.ticket.merged_into not in seen:
        seen.add(match.ticket.merged_into)
        match = ThreadMatch(first(session, _BY_NUMBER, number=match.ticket.merged_into),
                            match.via)
    return match


def _by_message_id(session: Session, message_id: str, domain: str) -> ThreadMatch | None:
    ours = msgids.parse(message_id, domain)
    if ours:
        number, token = ours
        ticket = first(session, _BY_NUMBER, number=number)
        # A wrong token is a forgery or a guess: it threads nothing.
        if ticket and ticket.token == token:
            return ThreadMatch(ticket, VIA_TOKEN)
        return None
    ticket = first(session, _BY_RECEIVED, message_id=message_id)
    return ThreadMatch(ticket, VIA_REFERENCE) if ticket else None
