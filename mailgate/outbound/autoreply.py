"""May we send an automatic mail to this address? (RFC 3834 §2 and SPEC §8).

Never to robots, lists, null or role senders, our own addresses, and at most
``outbound.auto_reply_limit`` automatic mails to one address per hour, so that two
robots answering each other stop after a few rounds.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import bindparam, func, select
from sqlmodel import Session

from mailgate.db import execute
from mailgate.models import Contact, Outbox

NO_REPLY_LOCALPARTS = {
    "mailer-daemon", "postmaster", "noreply", "no-reply", "no_reply", "donotreply",
    "do-not-reply", "do_not_reply", "bounce", "bounces",
}
RATE_WINDOW = timedelta(hours=1)
TICKET_WINDOW = timedelta(days=1)


# Built once (db.execute): what refusal needs to know, in one statement.
_BOUNCING = (select(Contact.bouncing_since)
             .where(Contact.address == bindparam("address"), Contact.bouncing_since.is_not(None))
             .limit(1).scalar_subquery())
_SENT_TO = select(func.count(Outbox.id)).where(
    Outbox.to == bindparam("address"), Outbox.automatic,
    Outbox.created_at > bindparam("hour_ago")).scalar_subquery()
_SENT_ABOUT = select(func.count(Outbox.id)).where(
    Outbox.ticket_number == bindparam("number"), Outbox.automatic,
    Outbox.created_at > bindparam("day_ago")).scalar_subquery()
_STANDING = select(_BOUNCING, _SENT_TO, _SENT_ABOUT)
_BOUNCING_SINCE = select(_BOUNCING)


def bouncing(session: Session, address: str) -> str | None:
    """Why no mail at all may go to ``address``: it bounces (until it writes again)."""
    return _bounces(address, execute(session, _BOUNCING_SINCE, address=address).scalar())


def _bounces(address: str, since: datetime | None) -> str | None:
    if since is None:
        return None
    return f"{address} bounces since {since.isoformat()} (until it writes again)"


def refusal(session: Session, address: str, *, own: set[str], limit: int, now: datetime,
            ticket_number: int | None = None, ticket_limit: int | None = None) -> str | None:
    """Why no automatic mail may go to ``address`` now, or None when it may.  With a
    ticket, also at most ``ticket_limit`` automatic mails about it per day: a robot
    that answers from ever new addresses still cannot keep a ticket talking."""
    if not address or "@" not in address:
        return "no usable recipient address"
    if address in own:
        return f"{address} is one of our own addresses"
    local = address.partition("@")[0]
    if local in NO_REPLY_LOCALPARTS or local.startswith(("noreply", "no-reply")):
        return f"{address} is a role or no-reply address"
    since, sent, about = execute(session, _STANDING, address=address, number=ticket_number,
                                 hour_ago=now - RATE_WINDOW, day_ago=now - TICKET_WINDOW).one()
    why = _bounces(address, since)
    if why:
        return why
    if sent >= limit:
        return f"rate limit: {sent} automatic mails to {address} in the last hour"
    if ticket_number is not None and ticket_limit is not None and about >= ticket_limit:
        return f"rate limit: {about} automatic mails about ticket {ticket_number} today"
    return None
