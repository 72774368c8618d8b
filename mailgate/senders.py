"""Who wrote: staff, a contact of a contracted company, or unknown (SPEC §3 step 3).

Companies and staff are policy (``rules/``); ``sync`` mirrors them into their tables
so tickets can refer to them.  A sender whose domain matches a company (subdomains
match their parent) becomes a contact of that company the first time it writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, case, func
from sqlmodel import Session, select

from mailgate.db import execute, upserts
from mailgate.models import Company, Contact, Staff, loaded
from mailgate.policy import Policy

STAFF, CONTACT, UNKNOWN = "staff", "contact", "unknown"

# Built once (db.execute): a contact's name and its company in one statement, and a
# company by name.  Companies come back as plain objects, not loaded by the ORM: the
# pipeline only reads them.
_COMPANIES = Company.__table__
_CONTACT = (select(Contact.name.label("contact_name"), *_COMPANIES.columns)
            .join(_COMPANIES, _COMPANIES.c.id == Contact.company_id)
            .where(Contact.address == bindparam("address")))
_COMPANY = select(*_COMPANIES.columns).where(_COMPANIES.c.name == bindparam("name"))
_COMPANY_BY_ID = select(*_COMPANIES.columns).where(_COMPANIES.c.id == bindparam("company_id"))


@dataclass
class Sender:
    """The identified sender of a message."""

    kind: str
    address: str
    name: str = ""
    company: Company | None = None

    @property
    def company_id(self) -> int | None:
        return self.company.id if self.company else None


def sync(session: Session, policy: Policy) -> None:
    """Mirror ``policy``'s companies and staff into the database (by name / address).

    Entries removed from the files are kept, marked inactive, because tickets still
    refer to them.  Rows are written only when they differ: every door runs this at
    start, and a no-op must not need the database's write lock.
    """
    companies = {c.name: c for c in session.exec(select(Company))}
    for rule in policy.companies:
        _update(session, companies.pop(rule.name, None) or Company(name=rule.name),
                domains=rule.domains, language=rule.language, plan=rule.plan,
                managers=rule.managers, managers_copy=rule.managers_copy,
                prepaid_hours=rule.prepaid_hours, hours_low_threshold=rule.hours_low_threshold,
                active=True)
    for row in companies.values():
        _update(session, row, active=False)
    staff = {s.address: s for s in session.exec(select(Staff))}
    for rule in policy.staff:
        _update(session, staff.pop(rule.address, None) or Staff(address=rule.address),
                name=rule.name, skills=rule.skills, active=True)
    for row in staff.values():
        _update(session, row, active=False)


def _update(session: Session, row, **values) -> None:
    """Set ``values`` on ``row`` and add it, unless it is stored already with them."""
    if row.id is not None and all(getattr(row, k) == v for k, v in values.items()):
        return
    for key, value in values.items():
        setattr(row, key, value)
    session.add(row)


def identify(session: Session, policy: Policy, address: str, name: str = "") -> Sender:
    """Identify ``address`` without writing anything."""
    if policy.staff_member(address):
        return Sender(STAFF, address, name or policy.staff_member(address).name)
    found = execute(session, _CONTACT, address=address)
    if found.rows:
        known = found.mapping(found.one())
        return Sender(CONTACT, address, name or known.pop("contact_name"), loaded(Company, known))
    rule = policy.company_for_domain(address.rpartition("@")[2])
    if rule:
        found = execute(session, _COMPANY, name=rule.name)
        return Sender(CONTACT, address, name, loaded(Company, found.mapping(found.one())))
    return Sender(UNKNOWN, address, name)


def company(session: Session, company_id: int | None) -> Company | None:
    """The company ``company_id`` (a ticket's), as a plain object the pipeline reads;
    None for None.  One statement, not the ORM's ``session.get``: with the ticket's
    select that was a tenth of the processing in a profile (bench/RESULTS.md)."""
    if company_id is None:
        return None
    found = execute(session, _COMPANY_BY_ID, company_id=company_id)
    row = found.first()
    return loaded(Company, found.mapping(row)) if row is not None else None


def _remember_statement(insert):
    """An upsert of the sender as a contact, for the dialect of ``insert``: a new
    address is inserted; a known one takes the name it now writes with (if any),
    stops counting as bouncing (it writes: it works again), and keeps its company."""
    table = Contact.__table__
    statement = insert(table).values(
        address=bindparam("address"), name=bindparam("name"), company_id=bindparam("company_id"),
        created_at=bindparam("now"), bouncing_since=None, bounce_reason=None)
    new = statement.excluded
    return statement.on_conflict_do_update(index_elements=[table.c.address], set_={
        "name": case((new.name != "", new.name), else_=table.c.name),
        "bouncing_since": None, "bounce_reason": None,
        "company_id": func.coalesce(table.c.company_id, new.company_id),
    })


# Built once (db.execute), one per dialect.
_REMEMBER = upserts(_remember_statement)


def remember(session: Session, sender: Sender, now: datetime) -> None:
    """Store the sender as a contact (staff are not contacts).

    One upsert instead of an ORM object: it costs a fraction of the unit of work's
    flush (bench/RESULTS.md), and a contact that a concurrent instance inserts in the
    meantime is met by the conflict clause instead of a unique-key error.
    """
    if sender.kind == STAFF:
        return
    dialect = session.get_bind().dialect.name
    execute(session, _REMEMBER[dialect], address=sender.address, name=sender.name or "",
            company_id=sender.company_id, now=now)
