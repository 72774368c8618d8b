"""Business-time arithmetic for SLA deadlines (SPEC §5): calendars, units, response_due.

A calendar is a ``[calendar.NAME]`` table of ``rules/sla.toml``::

    timezone = "Europe/Rome"
    hours = { mon = "09:00-13:00,14:00-18:00", fri = "09:00-13:00" }   # absent day = closed
    holidays = "IT"                 # country code of the `holidays` package (optional)
    dates = ["2026-08-14"]          # extra closed dates
    working_days = ["2026-12-19"]   # extra working dates, e.g. a transferred Saturday
    working_hours = "09:00-13:00"   # their hours; default: Monday's

Which hours a local date has, first rule that applies wins: an explicit ``working_days``
date (``working_hours``); an explicit ``dates`` date (closed); a holiday of the country,
including the package's substituted days off (closed); a weekend day the package lists in
``weekend_workdays`` (a transferred working Saturday, ``working_hours``); else the weekday's
``hours``.  A calendar without ``hours`` is open Monday to Friday 09:00-18:00.

``holidays`` 0.109 exposes transferred working days as ``HolidayBase.weekend_workdays``
(a set of dates filled for each populated year; ``is_working_day()`` reads it).  It knows
them for RU (e.g. Saturday 2025-11-01), BY (2025-01-11, 2026-04-25, …) and HU
(2026-01-10, 2026-08-08, …); for IT the set is empty.  There is no ``workdays`` or
``get_workdays``; the ``workday`` category of BY lists working *holidays*, not days.

Arithmetic works per local day: each day's wall-clock ranges become aware instants with
zoneinfo and are compared in UTC, so a DST change makes a business day one hour shorter or
longer only when the change falls inside its hours.  A wall time inside a spring-forward
gap reads with the offset before the change (PEP 495, fold=0).  Every function takes aware
datetimes and returns UTC ones.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays as holidays_pkg

from mailgate.durations import parse_duration
from mailgate.policy import CalendarRule, CompanyRule, PlanRule, Policy

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_HOURS = "09:00-18:00"
_KEYS = ("hours", "holidays", "dates", "working_days", "working_hours")
_TIME = re.compile(r"(\d{1,2}):(\d{2})")
_DAYS = re.compile(r"(\d+)_business_days?")
_CLOCK = re.compile(r"(?:\d+(?:\.\d+)?[hm])+")
_MAX_CLOSED_DAYS = 3660  # ten years without an open hour: the calendar is unusable
_DAYS_KEPT = 4096  # dates whose intervals a calendar keeps (a search may walk years)
_RESPONSES = '"30m", "4h", "1h30m", "next_business_day", "N_business_days" or "best_effort"'

Span = tuple[int, int]  # minutes after local midnight, end may be 1440 ("24:00")
Interval = tuple[datetime, datetime]  # UTC


@dataclass(frozen=True, eq=False)
class Calendar:
    """Business hours of one place: weekly hours, holidays, extra closed and working dates."""

    name: str
    zone: ZoneInfo
    week: tuple[tuple[Span, ...], ...]  # index 0 is Monday
    closed: frozenset[date] = frozenset()
    working: frozenset[date] = frozenset()
    working_hours: tuple[Span, ...] = ()
    country: str | None = None
    _years: dict[int, tuple[frozenset[date], frozenset[date]]] = field(
        default_factory=dict, repr=False)
    # Each local date's open intervals once computed: every new ticket asks for the
    # same few days, and zoneinfo's conversions were most of its SLA arithmetic.
    _days: dict[date, tuple[Interval, ...]] = field(default_factory=dict, repr=False)

    @classmethod
    def from_rule(cls, name: str, rule: CalendarRule) -> Calendar:
        """Build the calendar of ``[calendar.NAME]``; ValueError names the first bad key."""
        parts, problems = _parse_calendar(name, rule)
        if problems:
            raise ValueError(problems[0])
        return cls(name=name, **parts)

    def spans(self, day: date) -> tuple[Span, ...]:
        """The open wall-clock ranges of the local date ``day`` (empty when closed)."""
        if day in self.working:
            return self.working_hours
        if day in self.closed:
            return ()
        days_off, transferred = self._country_year(day.year)
        if day in days_off:
            return ()
        weekly = self.week[day.weekday()]
        if day in transferred and not weekly:
            return self.working_hours
        return weekly

    def intervals(self, day: date) -> tuple[Interval, ...]:
        """The open intervals of the local date ``day`` as UTC instants."""
        found = self._days.get(day)
        if found is None:
            if len(self._days) >= _DAYS_KEPT:
                self._days.clear()
            found = self._days[day] = tuple(
                (lo, hi) for lo, hi in ((self._instant(day, start), self._instant(day, end))
                                        for start, end in self.spans(day)) if hi > lo)
        return found

    def is_open(self, when: datetime) -> bool:
        """Whether ``when`` falls inside business hours."""
        at = _utc(when)
        return any(lo <= at < hi for lo, hi in self.intervals(self._local_day(at)))

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """``start`` plus ``duration`` of business time.

        Time outside business hours does not count; a deadline that uses up an interval
        exactly is its end (four hours from 09:00 on a 09:00-13:00 morning is 13:00).
        """
        if duration < timedelta(0):
            raise ValueError("business time cannot be negative")
        at, remaining = _utc(start), duration
        for lo, hi in self._intervals_from(at):
            lo = max(lo, at)
            if remaining <= hi - lo:
                return lo + remaining
            remaining -= hi - lo
        raise AssertionError("unreachable: _intervals_from never ends quietly")

    def between(self, a: datetime, b: datetime) -> timedelta:
        """Business time from ``a`` to ``b`` (negative when ``b`` is earlier)."""
        a, b = _utc(a), _utc(b)
        if b < a:
            return -self.between(b, a)
        total = timedelta(0)
        for lo, hi in self._intervals_from(a):
            if lo >= b:
                break
            total += min(hi, b) - max(lo, a)
        return total

    def close_of_business_day(self, start: datetime, n: int) -> datetime:
        """The close of the ``n``-th business day after the local day of ``start``.

        ``n = 1`` is "next_business_day": a mail of Friday (or Saturday) is due at the close
        of Monday, when Monday is open.
        """
        if n < 1:
            raise ValueError("the number of business days must be at least 1")
        first = self._local_day(_utc(start)) + timedelta(days=1)
        for count, (_day, found) in enumerate(self._open_days(first), start=1):
            if count == n:
                return found[-1][1]
        raise AssertionError("unreachable: _open_days never ends quietly")

    def _open_days(self, first: date) -> Iterator[tuple[date, list[Interval]]]:
        day, closed_run = first, 0
        while closed_run < _MAX_CLOSED_DAYS:
            found = self.intervals(day)
            closed_run = 0 if found else closed_run + 1
            if found:
                yield day, found
            day += timedelta(days=1)
        raise ValueError(f"calendar.{self.name}: no business hours for ten years after {day}")

    def _intervals_from(self, at: datetime) -> Iterator[Interval]:
        for _day, found in self._open_days(self._local_day(at)):
            yield from ((lo, hi) for lo, hi in found if hi > at)

    def _local_day(self, at: datetime) -> date:
        return at.astimezone(self.zone).date()

    def _instant(self, day: date, minute: int) -> datetime:
        wall = datetime.combine(day, time()) + timedelta(minutes=minute)
        return wall.replace(tzinfo=self.zone).astimezone(UTC)

    def _country_year(self, year: int) -> tuple[frozenset[date], frozenset[date]]:
        """Days off and transferred working days of ``year`` from the holidays package."""
        if not self.country:
            return frozenset(), frozenset()
        cached = self._years.get(year)
        if cached is None:
            # Neighbouring years too: a transfer may cross the new year.
            table = holidays_pkg.country_holidays(self.country, years=range(year - 1, year + 2))
            days_off = frozenset(d for d in table if d.year == year)
            moved = frozenset(d for d in list(table.weekend_workdays) if d.year == year)
            cached = self._years[year] = (days_off, moved)
        return cached


FALLBACK = Calendar(
    name="fallback",
    zone=ZoneInfo("UTC"),
    week=(((540, 1080),),) * 5 + ((), ()),
    working_hours=((540, 1080),),
)
"""The calendar of a company without one: Monday to Friday 09:00-18:00 UTC, no holidays."""


def deadline(calendar: Calendar, start: datetime, response: str | None, *,
             around_the_clock: bool) -> datetime | None:
    """The deadline of ``response`` (a unit of SPEC §5) for a ticket arrived at ``start``.

    ``"30m"``, ``"4h"``, ``"1h30m"``: business time, or wall time when ``around_the_clock``;
    ``"next_business_day"`` and ``"N_business_days"``: the close of the N-th business day
    after the day of arrival; ``"best_effort"`` or None: no deadline (None).  Raises
    ValueError for any other text.
    """
    at = _utc(start)
    kind, value = parse_response(response)
    if kind == "none":
        return None
    if kind == "days":
        return calendar.close_of_business_day(at, value)
    return at + value if around_the_clock else calendar.add(at, value)


def parse_response(text: str | None) -> tuple[str, object]:
    """``("none", None)``, ``("days", N)`` or ``("time", timedelta)``; ValueError otherwise."""
    if text is None:
        return "none", None
    if not isinstance(text, str):
        raise ValueError(f"expected a string: {_RESPONSES}")
    compact = text.strip().lower().replace(" ", "")
    if compact == "best_effort":
        return "none", None
    if compact == "next_business_day":
        return "days", 1
    if match := _DAYS.fullmatch(compact):
        if int(match[1]) < 1:
            raise ValueError(f"{text!r}: at least 1 business day")
        return "days", int(match[1])
    if _CLOCK.fullmatch(compact):
        amount = parse_duration(compact)
        if amount <= timedelta(0):
            raise ValueError(f"{text!r}: the response time must be positive")
        return "time", amount
    raise ValueError(f"{text!r} is not a response time: use {_RESPONSES}")


def response_due(policy: Policy, company: str | None, priority: str,
                 start: datetime) -> datetime | None:
    """When the first response to a ticket of ``company`` with ``priority`` is due (UTC).

    The plan is the company's (the default plan "standard" without a company); a priority
    the plan does not declare, or one without ``response``, has no deadline (None).
    ``clock = "24x7"`` counts wall time only for a company with ``extra_time = true``.
    The calendar is the company's; without one (or when it is not declared) the FALLBACK
    calendar, Monday to Friday 09:00-18:00 UTC.  ValueError on an invalid rule — run
    ``validate`` when loading the policy.
    """
    rule = policy.company(company)
    plan = policy.plan(rule.plan if rule else _DEFAULT_PLAN)
    extra = _priority_extra(plan, priority)
    if extra is None:
        return None
    around = extra.get("clock") == "24x7" and bool(rule and rule.extra_time)
    return deadline(_calendar_for(policy, rule), start, extra.get("response"),
                    around_the_clock=around)


_DEFAULT_PLAN = CompanyRule.model_fields["plan"].default
_CACHE: dict[tuple[str, int], tuple[CalendarRule, Calendar]] = {}
_CACHE_SIZE = 64


def _priority_extra(plan: PlanRule, priority: str) -> dict | None:
    rule = plan.priority.get(priority)
    return None if rule is None else dict(rule.model_extra or {})


def calendar_for(policy: Policy, company: str | None) -> Calendar:
    """The business calendar of the company called ``company`` (FALLBACK without one)."""
    return _calendar_for(policy, policy.company(company))


def sla_times(policy: Policy, company: str | None, priority: str, start: datetime,
              warn_at: float) -> tuple[datetime | None, datetime | None]:
    """``(response_due, warn)``: the deadline, and when ``warn_at`` of the time allowed
    has passed, counted in business time (wall time for a 24x7 deadline)."""
    due = response_due(policy, company, priority, start)
    if due is None:
        return None, None
    calendar = calendar_for(policy, company)
    allowed = calendar.between(start, due)
    if allowed <= timedelta(0) or allowed >= due - start:
        return due, _utc(start + (due - start) * warn_at)
    return due, calendar.add(start, allowed * warn_at)


def pauses_on_waiting(policy: Policy, company: str | None) -> bool:
    """True when the company's plan says ``pause_on = ["waiting"]``."""
    rule = policy.company(company)
    plan = policy.plan(rule.plan if rule else _DEFAULT_PLAN)
    return "waiting" in (plan.model_extra or {}).get("pause_on", [])


def paused_due(policy: Policy, company: str | None, due: datetime, since: datetime,
               until: datetime) -> datetime:
    """``due`` moved on by the business time the ticket waited from ``since`` to ``until``."""
    calendar = calendar_for(policy, company)
    return calendar.add(due, calendar.between(since, until))


def _calendar_for(policy: Policy, company: CompanyRule | None) -> Calendar:
    """The company's built calendar, cached by name and rule object across mails."""
    name = company.calendar if company else None
    rule = policy.calendars.get(name) if name else None
    if rule is None:
        return FALLBACK
    key = (name, id(rule))
    hit = _CACHE.get(key)
    if hit is not None and hit[0] is rule:
        return hit[1]
    built = Calendar.from_rule(name, rule)
    if len(_CACHE) >= _CACHE_SIZE:
        _CACHE.clear()
    _CACHE[key] = (rule, built)  # keeping the rule alive keeps its id unique
    return built


def validate(policy: Policy) -> list[str]:
    """Every problem of the calendars and plans, as ``sla.toml:KEY: reason`` lines."""
    problems: list[str] = []
    for name, rule in policy.calendars.items():
        problems += _parse_calendar(name, rule)[1]
    for name, plan in policy.plans.items():
        problems += _plan_problems(name, plan)
    return [f"sla.toml:{p}" for p in problems]


def _plan_problems(name: str, plan: PlanRule) -> list[str]:
    key = f"plan.{name}"
    problems = []
    pause_on = (plan.model_extra or {}).get("pause_on", [])
    if not isinstance(pause_on, list) or not set(pause_on) <= {"waiting"}:
        problems.append(f'{key}.pause_on: expected [] or ["waiting"]')
    if plan.priority and plan.default_priority not in plan.priority:
        problems.append(f"{key}.default_priority: no priority {plan.default_priority!r} "
                        "in this plan")
    for priority, rule in plan.priority.items():
        extra = rule.model_extra or {}
        where = f"{key}.priority.{priority}"
        try:
            kind, _value = parse_response(extra.get("response"))
        except ValueError as exc:
            problems.append(f"{where}.response: {exc}")
            kind = "time"
        clock = extra.get("clock")
        if clock is not None and clock != "24x7":
            problems.append(f'{where}.clock: expected "24x7" (leave it out for business time)')
        elif clock == "24x7" and kind != "time":
            problems.append(f'{where}.clock: "24x7" applies only to durations like "1h"')
    return problems


def _parse_calendar(name: str, rule: CalendarRule) -> tuple[dict, list[str]]:
    """The Calendar fields of a rule and the problems found (``calendar.NAME.key: …``)."""
    raw, key = dict(rule.model_extra or {}), f"calendar.{name}"
    problems = [f"{key}.{k}: unknown key (expected timezone, {', '.join(_KEYS)})"
                for k in raw if k not in _KEYS]
    week = _parse_week(key, raw.get("hours"), problems)
    closed = _parse_dates(f"{key}.dates", raw.get("dates", []), problems)
    working = _parse_dates(f"{key}.working_days", raw.get("working_days", []), problems)
    problems += [f"{key}.working_days: {d} is also in dates" for d in sorted(closed & working)]
    extra_hours = _parse_spans(f"{key}.working_hours", raw.get("working_hours", ""), problems)
    fallback = week[0] or next((day for day in week if day), ())
    parts = {
        "zone": ZoneInfo(rule.timezone), "week": week, "closed": closed, "working": working,
        "working_hours": extra_hours or fallback,
        "country": _parse_country(f"{key}.holidays", raw.get("holidays"), problems),
    }
    return parts, problems


def _parse_week(key: str, hours: object, problems: list[str]) -> tuple[tuple[Span, ...], ...]:
    if hours is None:
        hours = dict.fromkeys(WEEKDAYS[:5], DEFAULT_HOURS)
    if not isinstance(hours, dict):
        problems.append(f'{key}.hours: expected a table like {{ mon = "09:00-18:00" }}')
        return ((),) * 7
    for day in hours:
        if day not in WEEKDAYS:
            problems.append(f"{key}.hours.{day}: unknown weekday (expected "
                            f"{', '.join(WEEKDAYS)})")
    known = len(problems)
    week = tuple(_parse_spans(f"{key}.hours.{d}", hours.get(d, ""), problems) for d in WEEKDAYS)
    if not any(week) and len(problems) == known:
        problems.append(f"{key}.hours: no business hours on any weekday")
    return week


def _parse_spans(key: str, text: object, problems: list[str]) -> tuple[Span, ...]:
    """``"09:00-13:00,14:00-18:00"`` to sorted minute ranges; ``""`` is closed."""
    if not isinstance(text, str):
        problems.append(f'{key}: expected a string like "09:00-13:00,14:00-18:00"')
        return ()
    spans = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        span = _parse_span(part)
        if isinstance(span, str):
            problems.append(f"{key}: {span}")
        else:
            spans.append(span)
    spans.sort()
    for (s1, e1), (s2, e2) in zip(spans, spans[1:], strict=False):
        if s2 < e1:
            problems.append(f"{key}: {_hhmm(s1)}-{_hhmm(e1)} overlaps {_hhmm(s2)}-{_hhmm(e2)}")
            return ()
    return tuple(spans)


def _parse_span(part: str) -> Span | str:
    """One ``HH:MM-HH:MM`` range, or the reason it is not one."""
    bounds = [b.strip() for b in part.split("-")]
    if len(bounds) != 2:
        return f"bad time range {part!r} (expected HH:MM-HH:MM)"
    start, end = _minute(bounds[0], end=False), _minute(bounds[1], end=True)
    if start is None or end is None:
        return f"bad time in {part!r} (expected HH:MM from 00:00 to 24:00)"
    if end <= start:
        return f"{part!r} ends before it starts"
    return start, end


def _minute(text: str, *, end: bool) -> int | None:
    match = _TIME.fullmatch(text)
    if not match:
        return None
    hour, minute = int(match[1]), int(match[2])
    if minute > 59 or hour > 24 or (hour == 24 and (minute or not end)):
        return None
    return hour * 60 + minute


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _parse_dates(key: str, values: object, problems: list[str]) -> frozenset[date]:
    if not isinstance(values, list):
        problems.append(f'{key}: expected a list of dates like ["2026-08-14"]')
        return frozenset()
    found = set()
    for i, value in enumerate(values):
        try:
            if isinstance(value, datetime) or not isinstance(value, date | str):
                raise ValueError
            found.add(value if isinstance(value, date) else date.fromisoformat(value))
        except ValueError:
            problems.append(f"{key}[{i}]: not a date like 2026-08-14: {value!r}")
    return frozenset(found)


def _parse_country(key: str, code: object, problems: list[str]) -> str | None:
    if code is None:
        return None
    if not isinstance(code, str):
        problems.append(f'{key}: expected a country code like "IT"')
        return None
    try:
        holidays_pkg.country_holidays(code.strip().upper())
    except NotImplementedError:
        problems.append(f"{key}: unknown country code {code!r} for the holidays package")
        return None
    return code.strip().upper()


def _utc(when: datetime) -> datetime:
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"{when!r} is a naive datetime; business time needs an aware one")
    return when.astimezone(UTC)
