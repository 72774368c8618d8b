"""Mail commands (SPEC §6): lines at the top of the body that start with ``#``.

Parsing and applying are two passes: every command of a mail is checked first
against the ticket as it will be after the commands before it, and only when all of
them are valid are they applied, in order, in the pipeline's transaction.  One bad
line applies nothing (all or none), and the sender is told which line and why.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from zoneinfo import ZoneInfo

from sqlmodel import Session, select

from mailgate import approvals, bizhours, complaints, handover, phases, tickets
from mailgate.correlate import MAX_TICKET_DIGITS
from mailgate.durations import parse_duration
from mailgate.message import ADDRESS_RE
from mailgate.models import Company, Ticket
from mailgate.policy import Policy

CATEGORIES = ("user", "system", "infrastructure", *approvals.CATEGORIES, complaints.CATEGORY)
DEFAULT_PRIORITIES = ("P1plus", "P1", "P2", "P3", "P4", "P7")
_COMMAND_LINE = re.compile(r"^#([a-z]+)\b\s*(.*)$", re.IGNORECASE)
_TICKET_NUMBER = re.compile(r"#?([0-9]+)")


class CommandError(ValueError):
    """What is wrong with one command line."""


def split(text: str) -> tuple[list[tuple[int, str]], str]:
    """``([(line_number, "#cmd args"), …], rest)``: the command lines at the top of
    ``text`` and the text after them.  Blank lines between commands are skipped; the
    first other line ends them, so quoted text (``> #status …``) never runs."""
    lines = text.splitlines()
    commands: list[tuple[int, str]] = []
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if not stripped:
            continue
        if not stripped.startswith("#"):
            return commands, "\n".join(lines[number - 1:]).strip("\n")
        commands.append((number, stripped))
    return commands, ""


@dataclass
class Run:
    """One command mail being checked and applied on ``ticket``."""

    session: Session
    policy: Policy
    ticket: Ticket
    company: Company | None
    actor: str
    now: datetime
    spool_id: int | None
    timezone: ZoneInfo
    warn_at: float = 0.75
    draft_status: str = ""
    internal: bool = False
    transitions: list[phases.Transition] = field(default_factory=list)
    hours_logged: float = 0.0
    rules: list = field(default_factory=list)  # triage rules: the priority of complaints
    sales_address: str | None = None  # where #quote hands the ticket
    draft_approval: str | None = None
    # Mails that applied commands call for, queued by the caller once all are applied:
    # each is called with (pipeline run, ticket, company).
    follow_ups: list[Callable] = field(default_factory=list)

    def __post_init__(self):
        self.draft_status = self.draft_status or self.ticket.status
        self.draft_approval = self.draft_approval or self.ticket.approval

    def event(self, kind: str, detail: str) -> None:
        tickets.record(self.session, self.ticket, kind, self.now, actor=self.actor,
                       detail=detail, spool_id=self.spool_id)


@dataclass(frozen=True)
class Spec:
    """A command: its usage, a line of help, and how it is checked and applied."""

    name: str
    usage: str
    help: str
    prepare: Callable[[Run, str], Callable[[], str]]


@dataclass
class Plan:
    """The checked commands of a mail, ready to apply, or the errors that stop them."""

    actions: list[tuple[str, Callable[[], str]]]
    errors: list[str]

    def apply(self) -> list[str]:
        """Apply every command in order; one transcript line each."""
        return [f"{line}: {action()}" for line, action in self.actions]


def plan(run: Run, lines: list[tuple[int, str]]) -> Plan:
    """Check every command line; any error leaves the plan with nothing to apply."""
    actions, errors = [], []
    for number, line in lines:
        match = _COMMAND_LINE.match(line)
        spec = STAFF_COMMANDS.get(match.group(1).lower()) if match else None
        if spec is None and match and match.group(1).lower() in approvals.VERBS:
            errors.append(f"line {number}: {line}: {approvals.NOT_STAFF}")
            continue
        if spec is None:
            errors.append(f"line {number}: unknown command {line.split()[0]!r}")
            continue
        try:
            actions.append((line, spec.prepare(run, match.group(2).strip())))
        except CommandError as exc:
            errors.append(f"line {number}: {line}: {exc}")
    return Plan([] if errors else actions, errors)


def help_lines() -> list[dict]:
    """Usage and help of every staff command, for ``command_error``."""
    return [{"usage": s.usage, "help": s.help} for s in STAFF_COMMANDS.values()]


# --- the commands ------------------------------------------------------------------------

def _status(run: Run, args: str) -> Callable[[], str]:
    to = args.lower()
    try:
        phases.check(run.draft_status, to)
    except phases.TransitionError as exc:
        raise CommandError(str(exc)) from exc
    if to == "merged":
        raise CommandError("use #merge N to merge")
    why_not = approvals.blocks(run.draft_approval, to)
    if why_not:
        raise CommandError(why_not)
    run.draft_status = to

    def apply() -> str:
        transition = phases.move(run.session, run.ticket, to, run.now, actor=run.actor,
                                 spool_id=run.spool_id)
        if to == "open" and run.ticket.first_response_at is None:
            run.ticket.first_response_at = run.now  # taken in charge (SPEC §5)
        if transition.before == "waiting":
            _resume_clock(run)
        run.transitions.append(transition)
        return f"{transition.before} → {transition.after}"

    return apply


def _resume_clock(run: Run) -> None:
    phases.resume_clock(run.session, run.policy, run.ticket,
                        run.company.name if run.company else None, run.now)


def priorities(policy: Policy, company: Company | None) -> list[str]:
    """The priorities of the company's plan, the most urgent first."""
    return list(policy.plan(company.plan if company else None).priority) or list(
        DEFAULT_PRIORITIES)


def priority_key(policy: Policy, company: Company | None, text: str) -> str:
    """The plan's key of priority ``text`` (a name or a label such as ``P1+``)."""
    plan_rule = policy.plan(company.plan if company else None)
    known = priorities(policy, company)
    by_name = {p.lower(): p for p in known} | {plan_rule.label(p).lower(): p for p in known}
    key = by_name.get(text.lower())
    if key is None:
        raise CommandError(f"needs one of {', '.join(plan_rule.label(p) for p in known)}")
    return key


def _plan(run: Run):
    return run.policy.plan(run.company.plan if run.company else None)


def _priority(run: Run, args: str) -> Callable[[], str]:
    plan_rule = _plan(run)
    key = priority_key(run.policy, run.company, args)
    set_priority = _setter(run, "priority", key, plan_rule.label(key))

    def apply() -> str:
        shown = set_priority()
        # The deadlines follow the priority, counted from the ticket's arrival (SPEC §5).
        ticket = run.ticket
        ticket.response_due, ticket.response_warn_at = bizhours.sla_times(
            run.policy, run.company.name if run.company else None, key, ticket.created_at,
            run.warn_at)
        return shown

    return apply


def _assign(run: Run, args: str) -> Callable[[], str]:
    address = run.actor if args.lower() == "me" else args.lower()
    if run.policy.staff_member(address) is None:
        raise CommandError(f"{address or '(nothing)'} is not a staff member; use an address "
                           "of rules/staff.toml or 'me'")
    return _setter(run, "assignee", address, address)


def _category(run: Run, args: str) -> Callable[[], str]:
    category = args.lower()
    if category not in CATEGORIES:
        raise CommandError(f"needs one of {', '.join(CATEGORIES)}")
    steps = [_setter(run, "category", category, category)]
    if approvals.needed(run.draft_approval, category):
        steps.append(_approval(run))
    elif category == complaints.CATEGORY and run.ticket.category != category:
        steps += _complaint(run)
    return lambda: "; ".join(step() for step in steps)


def _approval(run: Run) -> Callable[[], str]:
    """The ticket waits for the company managers' written approval (access, order)."""
    why_not = approvals.cannot_wait(run.draft_status, run.company)
    if why_not:
        raise CommandError(why_not)
    run.draft_status, run.draft_approval = "waiting", approvals.PENDING
    return _flow(run, approvals.mark, approvals.ask,
                 "waits for the approval of the company's managers")


def _complaint(run: Run) -> list[Callable[[], str]]:
    """Out of the normal queue, priority raised as triage.toml raises complaints'."""
    steps = [_flow(run, complaints.mark, complaints.send_copy,
                   f"handled as a complaint (queue {complaints.QUEUE})")]
    key = complaints.priority(run.rules)
    known = priorities(run.policy, run.company)
    if key not in known:
        return steps
    set_priority = _priority(run, key)

    def raise_priority() -> str:
        # Compared when applied: a #priority before it in the same mail counts.
        now = run.ticket.priority
        if known.index(key) < (known.index(now) if now in known else len(known)):
            return set_priority()
        return f"priority stays {_plan(run).label(now)}"

    return [raise_priority, *steps]


def _flow(run: Run, mark: Callable, follow_up: Callable, done: str) -> Callable[[], str]:
    """Apply: ``mark`` changes the ticket now, ``follow_up`` sends its mails once every
    command is applied."""
    def apply() -> str:
        mark(run.session, run.ticket, run.now, actor=run.actor, spool_id=run.spool_id)
        run.follow_ups.append(follow_up)
        return done

    return apply


def _setter(run: Run, name: str, value, shown: str) -> Callable[[], str]:
    def apply() -> str:
        before = getattr(run.ticket, name)
        setattr(run.ticket, name, value)
        run.ticket.updated_at = run.now
        run.session.add(run.ticket)
        run.event(name, f"{before or '-'} → {shown}")
        return f"{before or '-'} → {shown}"

    return apply


def quarter_hours(text: str) -> float:
    """``"1h30m"``, ``"0.5h"``, ``"20m"`` in hours, rounded up to 0.25 h."""
    seconds = parse_duration(text).total_seconds()
    if seconds <= 0:
        raise ValueError("the time must be more than zero")
    return math.ceil(seconds / 900 - 1e-9) / 4


def _time(run: Run, args: str) -> Callable[[], str]:
    try:
        hours = quarter_hours(args)
    except ValueError as exc:
        raise CommandError(f"{exc} (e.g. 1h30m, 0.5h, 20m)") from exc

    def apply() -> str:
        tickets.log_time(run.session, run.ticket, hours, run.now, actor=run.actor,
                         spool_id=run.spool_id)
        run.hours_logged += hours
        return f"{hours:.2f} h logged, {run.ticket.time_spent_hours:.2f} h in all"

    return apply


def _eta(run: Run, args: str) -> Callable[[], str]:
    try:
        local = datetime.strptime(args, "%Y-%m-%d %H:%M").replace(tzinfo=run.timezone)
    except ValueError as exc:
        raise CommandError("needs a date and time like 2026-11-25 14:00") from exc
    when = local.astimezone(ZoneInfo("UTC"))
    return _setter(run, "eta", when, f"{args} {run.timezone.key}")


def _note(run: Run, args: str) -> Callable[[], str]:
    if args:
        raise CommandError("takes no argument; the text below it is the note")
    run.internal = True
    return lambda: "kept as an internal note, not sent to the customer"


def _other_ticket(run: Run, args: str) -> Ticket:
    found = _TICKET_NUMBER.fullmatch(args)
    if not found:
        raise CommandError("needs a ticket number")
    digits = found.group(1).lstrip("0") or "0"
    # Longer than a subject tag's number (correlate.py) is no ticket; asked for, it
    # overflowed PostgreSQL's integer and failed the whole mail.
    other = None if len(digits) > MAX_TICKET_DIGITS else run.session.exec(
        select(Ticket).where(Ticket.number == int(digits))).first()
    if other is None:
        raise CommandError(f"there is no ticket {digits}")
    if other.id == run.ticket.id:
        raise CommandError("names this very ticket")
    return other


def _company_ticket(run: Run, args: str) -> Ticket:
    """Another live ticket of the same company (``#merge``, ``#project``)."""
    other = _other_ticket(run, args)
    if other.status == "merged":
        raise CommandError(f"ticket {other.number} is merged into {other.merged_into} itself")
    if other.company_id != run.ticket.company_id:
        raise CommandError(f"ticket {other.number} belongs to another company")
    return other


def _merge(run: Run, args: str) -> Callable[[], str]:
    target = _company_ticket(run, args)
    if "merged" not in phases.ALLOWED[run.draft_status]:
        raise CommandError(f"a {run.draft_status} ticket cannot be merged")
    run.draft_status = "merged"

    def apply() -> str:
        phases.merge(run.session, run.ticket, target, run.now, actor=run.actor,
                     spool_id=run.spool_id)
        return f"merged into {target.number}"

    return apply


def _link(run: Run, args: str) -> Callable[[], str]:
    other = _other_ticket(run, args)

    def apply() -> str:
        tickets.link(run.session, run.ticket, other, run.now, actor=run.actor,
                     spool_id=run.spool_id)
        return f"linked with {other.number}"

    return apply


def _quote(run: Run, args: str) -> Callable[[], str]:
    if args:
        raise CommandError("takes no argument; the ticket's history goes to sales")
    sales = run.sales_address
    if not sales:
        raise CommandError("no sales address: set sales_address in this [[mailbox]]")
    return _flow(run, partial(handover.to_sales, sales=sales),
                 partial(handover.tell_sales, sales=sales), f"handed to {sales}")


def _project(run: Run, args: str) -> Callable[[], str]:
    project = _company_ticket(run, args)
    return _flow(run, partial(handover.to_project, project=project),
                 partial(handover.tell_project, project=project),
                 f"the work continues on {project.number}")


def _cc(run: Run, args: str) -> Callable[[], str]:
    verb, _, address = args.partition(" ")
    address = address.strip().lower().removeprefix("<").removesuffix(">")
    # Exactly one plain address: a list or a bracketed form would become one strange
    # participant, and what is not one address must never reach a To header.
    if verb.lower() not in ("add", "remove") or not ADDRESS_RE.fullmatch(address):
        raise CommandError("needs 'add ADDRESS' or 'remove ADDRESS' (one plain address)")
    if verb.lower() == "remove" and address == run.ticket.requester:
        raise CommandError("the requester cannot be removed")

    def apply() -> str:
        if verb.lower() == "add":
            tickets.add_participant(run.session, run.ticket, address)
        else:
            tickets.remove_participant(run.session, run.ticket, address)
        run.event("participants", f"{verb.lower()} {address}")
        return f"{verb.lower()} {address}"

    return apply


STAFF_COMMANDS: dict[str, Spec] = {s.name: s for s in (
    Spec("status", "#status open|waiting|resolved|closed", "change the phase", _status),
    Spec("priority", "#priority P1", "change the priority", _priority),
    Spec("assign", "#assign alice@example.com | #assign me", "set the assignee", _assign),
    Spec("category", f"#category {'|'.join(CATEGORIES)}",
         "set the category; access and order wait for a manager's approval", _category),
    Spec("time", "#time 1h30m | 0.5h | 20m", "log work, rounded up to 0.25 h", _time),
    Spec("eta", "#eta 2026-11-25 14:00", "expected resolution, company time", _eta),
    Spec("note", "#note", "keep this mail internal: nothing goes to the customer", _note),
    Spec("merge", "#merge 15790", "merge this ticket into 15790", _merge),
    Spec("link", "#link 15790", "relate this ticket and 15790", _link),
    Spec("cc", "#cc add x@acme.it | #cc remove x@acme.it", "change the participants", _cc),
    Spec("quote", "#quote", "hand the ticket to sales for a quote", _quote),
    Spec("project", "#project 15790", "the work continues on project ticket 15790", _project),
)}
