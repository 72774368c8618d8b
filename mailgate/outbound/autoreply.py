"""May we send an automatic mail to this address? (RFC 3834 §2 and SPEC §8).

Never to robots, lists, null or role senders, our own addresses, and at most
``outbound.auto_reply_limit`` automatic mails to one address per hour, so that two
robots answering each other stop after a few rounds.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, select

from mailgate.models import Outbox

NO_REPLY_LOCALPARTS = {
    "mailer-daemon", "postmaster", "noreply", "no-reply", "no_reply", "donotreply",
    "do-not-reply", "do_not_reply", "bounce", "bounces",
}
RATE_WINDOW = timedelta(hours=1)


def refusal(session: Session, address: str, *, own: set[str], limit: int,
            now: datetime) -> str | None:
    """Why no automatic mail may go to ``address`` now, or None when it may."""
    if not address or "@" not in address:
        return "no usable recipient address"
    if address in own:
        return f"{address} is one of our own addresses"
    local = address.partition("@")[0]
    if local in NO_REPLY_LOCALPARTS or local.startswith(("noreply", "no-reply")):
        return f"{address} is a role or no-reply address"
    sent = session.exec(
        select(func.count(Outbox.id)).where(
            Outbox.to == address, Outbox.automatic, Outbox.created_at > now - RATE_WINDOW
        )
    ).one()
    if sent >= limit:
        return f"rate limit: {sent} automatic mails to {address} in the last hour"
    return None
