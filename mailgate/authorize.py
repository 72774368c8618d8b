"""May this sender write on the ticket it named? (SPEC §3 step 5).

Yes for staff, a contact of the ticket's company, an existing participant, or a
reply to one of our tokenised Message-IDs.  Anyone else gets a ticket of their own:
guessing a number never reads or writes another company's ticket.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from mailgate.correlate import VIA_TOKEN, ThreadMatch
from mailgate.senders import STAFF, Sender
from mailgate.tickets import is_participant


@dataclass(frozen=True)
class Verdict:
    """Whether the sender may write on the ticket, and the rule that decided."""

    allowed: bool
    reason: str


def authorize(session: Session, sender: Sender, match: ThreadMatch) -> Verdict:
    """Decide whether ``sender`` may add to ``match.ticket``."""
    ticket = match.ticket
    if sender.kind == STAFF:
        return Verdict(True, "staff")
    if ticket.company_id is not None and sender.company_id == ticket.company_id:
        return Verdict(True, "contact of the ticket's company")
    if is_participant(session, ticket.id, sender.address):
        return Verdict(True, "participant")
    if match.via == VIA_TOKEN:
        return Verdict(True, "answers one of our tokenised Message-IDs")
    return Verdict(False, "not staff, not of the ticket's company, not a participant")

