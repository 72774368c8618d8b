"""``mailgate stats`` and the managers' ``#stats``: figures a help desk is judged by.

Tickets by status and priority; take-charge time (creation to the first staff
response) and resolution time (creation to resolved), as median and 90th
percentile in the company calendar's business hours; SLA breaches; time logged and
prepaid balance per company; and the same figures for complaints on their own.
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, select

from mailgate import bizhours, tickets
from mailgate.complaints import CATEGORY as COMPLAINT
from mailgate.models import Company, Ticket, TimeEntry
from mailgate.policy import Policy


def compute(session: Session, policy: Policy, now: datetime, *, company: str | None = None,
            since: datetime | None = None) -> dict:
    """The figures for the tickets created since ``since`` (of one company, or all)."""
    companies = {c.id: c for c in session.exec(select(Company))}
    query = select(Ticket).where(Ticket.status != "merged")
    if company is not None:
        ids = [i for i, c in companies.items() if c.name.lower() == company.lower()]
        query = query.where(Ticket.company_id.in_(ids))
    if since is not None:
        query = query.where(Ticket.created_at >= since)
    rows = list(session.exec(query))
    return {
        "company": company, "since": since.isoformat() if since else None,
        **_figures(policy, companies, rows, now),
        "companies": _balances(session, companies, rows, company),
        # Complaints are handled out of the normal queue, and judged on their own.
        "complaints": _figures(policy, companies,
                               [t for t in rows if t.category == COMPLAINT], now),
    }


def _figures(policy: Policy, companies: dict[int, Company], rows: list[Ticket],
             now: datetime) -> dict:
    """Counts, times and breaches of ``rows``."""
    take, resolve = [], []
    for ticket in rows:
        calendar = bizhours.calendar_for(policy, _name(companies, ticket))
        if ticket.first_response_at:
            take.append(_hours(calendar.between(ticket.created_at, ticket.first_response_at)))
        if ticket.resolved_at:
            resolve.append(_hours(calendar.between(ticket.created_at, ticket.resolved_at)))
    return {
        "tickets": len(rows),
        "by_status": dict(sorted(Counter(t.status for t in rows).items())),
        "by_priority": dict(sorted(Counter(_label(policy, companies, t) for t in rows).items())),
        "take_charge_hours": _spread(take), "resolution_hours": _spread(resolve),
        "sla_breaches": sum(_breached(t, now) for t in rows),
    }


def _name(companies: dict[int, Company], ticket: Ticket) -> str | None:
    row = companies.get(ticket.company_id)
    return row.name if row else None


def _label(policy: Policy, companies: dict[int, Company], ticket: Ticket) -> str:
    row = companies.get(ticket.company_id)
    return policy.plan(row.plan if row else None).label(ticket.priority)


def _hours(span) -> float:
    return span.total_seconds() / 3600


def _breached(ticket: Ticket, now: datetime) -> bool:
    """The take-charge deadline passed before the first response (or has passed)."""
    if ticket.response_due is None:
        return False
    return (ticket.first_response_at or now) > ticket.response_due


def _spread(values: list[float]) -> dict:
    """Median and 90th percentile (nearest rank), in hours rounded to 0.01."""
    if not values:
        return {"count": 0, "median": None, "p90": None}
    ordered = sorted(values)
    middle = len(ordered) // 2
    median = ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    p90 = ordered[max(math.ceil(0.9 * len(ordered)) - 1, 0)]
    return {"count": len(values), "median": round(median, 2), "p90": round(p90, 2)}


def _balances(session: Session, companies: dict[int, Company], rows: list[Ticket],
              company: str | None) -> list[dict]:
    """Hours logged on the tickets counted, and the prepaid balance, per company."""
    ids = sorted({t.company_id for t in rows if t.company_id is not None})
    if company is not None:
        ids = [i for i, c in companies.items() if c.name.lower() == company.lower()]
    result = []
    for company_id in ids:
        row = companies[company_id]
        logged = session.exec(select(func.sum(TimeEntry.hours)).where(
            TimeEntry.ticket_id.in_([t.id for t in rows if t.company_id == company_id]))).one()
        used = tickets.hours_used(session, company_id)
        balance = None if row.prepaid_hours is None else row.prepaid_hours - used
        result.append({"name": row.name, "time_logged_hours": float(logged or 0.0),
                       "prepaid_hours": row.prepaid_hours, "balance_hours": balance})
    return result
