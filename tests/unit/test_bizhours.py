"""bizhours: business-time arithmetic, the SPEC §5 units, response_due and validation.

Every expected instant is written by hand from the calendar of the day: Italy is UTC+1 in
winter and UTC+2 in summer (DST 2026-03-29 and 2026-10-25), Hungary the same, Russia and
Belarus UTC+3 all year.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from mailgate import bizhours
from mailgate.bizhours import Calendar, deadline, response_due, validate
from mailgate.policy import CalendarRule, CompanyRule, PlanRule, Policy, load_policy

RULES = Path(__file__).resolve().parents[2] / "rules"
ROME, BUDAPEST, MOSCOW, MINSK = (ZoneInfo(z) for z in (
    "Europe/Rome", "Europe/Budapest", "Europe/Moscow", "Europe/Minsk"))
LUNCH = "09:00-13:00,14:00-18:00"


def calendar(name: str = "x", **table) -> Calendar:
    table.setdefault("timezone", "Europe/Rome")
    return Calendar.from_rule(name, CalendarRule.model_validate(table))


def weekdays(hours: str) -> dict[str, str]:
    return dict.fromkeys(("mon", "tue", "wed", "thu", "fri"), hours)


IT = calendar("it", hours=weekdays(LUNCH), holidays="IT")
HU = calendar("hu", timezone="Europe/Budapest", hours=weekdays("08:00-12:00,12:30-16:30"),
              holidays="HU")
RU = calendar("ru", timezone="Europe/Moscow", hours=weekdays(LUNCH), holidays="RU")
BY = calendar("by", timezone="Europe/Minsk", hours=weekdays(LUNCH), holidays="BY")
ALWAYS = calendar("always", hours=dict.fromkeys(
    ("mon", "tue", "wed", "thu", "fri", "sat", "sun"), "00:00-24:00"))


def rome(*args: int) -> datetime:
    return datetime(*args, tzinfo=ROME)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(("day", "weekday"), [
    (date(2026, 2, 10), 1), (date(2026, 2, 13), 4), (date(2026, 2, 14), 5),
    (date(2026, 3, 29), 6), (date(2026, 10, 25), 6), (date(2026, 10, 23), 4),
    (date(2026, 12, 25), 4), (date(2026, 12, 31), 3), (date(2027, 1, 1), 4),
    (date(2027, 1, 6), 2), (date(2025, 11, 1), 5), (date(2026, 4, 25), 5),
])
def test_the_dates_below_are_the_weekdays_they_claim(day, weekday):
    assert day.weekday() == weekday


# --- adding business time -------------------------------------------------------------

@pytest.mark.parametrize(("start", "duration", "expected"), [
    # inside hours (Tuesday 10 February 2026)
    (rome(2026, 2, 10, 10), "1h30m", rome(2026, 2, 10, 11, 30)),
    (rome(2026, 2, 10, 10), "4h", rome(2026, 2, 10, 15)),     # 3h before lunch, 1h after
    (rome(2026, 2, 10, 10), "8h", rome(2026, 2, 11, 10)),     # 7h left on Tuesday, 1h Wednesday
    # before opening: the morning is used up exactly, the deadline is its end
    (rome(2026, 2, 10, 7, 30), "4h", rome(2026, 2, 10, 13)),
    # during lunch: counting starts at 14:00
    (rome(2026, 2, 10, 13, 20), "4h", rome(2026, 2, 10, 18)),
    (rome(2026, 2, 10, 13, 20), "30m", rome(2026, 2, 10, 14, 30)),
    # after closing
    (rome(2026, 2, 10, 19), "4h", rome(2026, 2, 11, 13)),
    (rome(2026, 2, 10, 18), "2h", rome(2026, 2, 11, 11)),
    # weekend and a Friday afternoon
    (rome(2026, 2, 14, 11), "4h", rome(2026, 2, 16, 13)),
    (rome(2026, 2, 13, 16, 30), "4h", rome(2026, 2, 16, 11, 30)),
    # Christmas 2026 is a Friday, St Stephen a Saturday
    (rome(2026, 12, 24, 17), "4h", rome(2026, 12, 28, 12)),
    # year end: New Year's Day is a Friday in 2027
    (rome(2026, 12, 31, 16), "4h", rome(2027, 1, 4, 11)),
])
def test_add_business_time_in_italy(start, duration, expected):
    assert deadline(IT, start, duration, around_the_clock=False) == expected


def test_hungarian_lunch_break_of_half_an_hour():
    # Tuesday 10 Feb 2026 11:00 CET: 11-12, then 12:30-13:30.
    start = datetime(2026, 2, 10, 11, tzinfo=BUDAPEST)
    assert deadline(HU, start, "2h", around_the_clock=False) == utc(2026, 2, 10, 12, 30)


def test_hungarian_national_day_on_a_friday_with_the_dst_change_over_the_weekend():
    # Thu 22 Oct 2026 15:30 CEST: one hour to 16:30; Fri 23 Oct is National Day; the clocks
    # go back on Sunday; Monday 26 Oct 08:00 CET + 3h = 11:00 CET = 10:00 UTC.
    start = datetime(2026, 10, 22, 15, 30, tzinfo=BUDAPEST)
    assert start == utc(2026, 10, 22, 13, 30)
    assert deadline(HU, start, "4h", around_the_clock=False) == utc(2026, 10, 26, 10)
    assert HU.between(start, utc(2026, 10, 26, 10)) == timedelta(hours=4)


def test_a_calendar_answers_the_same_once_it_has_kept_its_days(monkeypatch):
    # Each date's intervals are computed once and kept (at most _DAYS_KEPT dates):
    # asking again, or past a full store, gives what a new calendar computes.
    monkeypatch.setattr(bizhours, "_DAYS_KEPT", 3)

    def hungarian() -> Calendar:
        return calendar("hu", timezone="Europe/Budapest",
                        hours=weekdays("08:00-12:00,12:30-16:30"), holidays="HU")

    kept = hungarian()
    start = datetime(2026, 10, 22, 15, 30, tzinfo=BUDAPEST)  # over a holiday and the DST change
    dues = ("4h", "3_business_days", "4h", "next_business_day", "3_business_days")
    answers = [deadline(kept, start, due, around_the_clock=False) for due in dues]
    fresh = [deadline(hungarian(), start, due, around_the_clock=False) for due in dues]
    assert answers == fresh and answers[0] == utc(2026, 10, 26, 10)
    assert 0 < len(kept._days) <= 3


def test_output_is_utc_and_input_may_be_any_aware_zone():
    due = deadline(IT, rome(2026, 2, 10, 10), "4h", around_the_clock=False)
    assert due.utcoffset() == timedelta(0)
    assert due == utc(2026, 2, 10, 14)


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError, match="naive"):
        deadline(IT, datetime(2026, 2, 10, 10), "4h", around_the_clock=False)


# --- is_open ----------------------------------------------------------------------------

@pytest.mark.parametrize(("when", "is_open"), [
    (rome(2026, 2, 10, 8, 59), False),
    (rome(2026, 2, 10, 9), True),
    (rome(2026, 2, 10, 12, 59), True),
    (rome(2026, 2, 10, 13), False),
    (rome(2026, 2, 10, 13, 30), False),
    (rome(2026, 2, 10, 17, 59), True),
    (rome(2026, 2, 10, 18), False),
    (rome(2026, 2, 14, 10), False),          # Saturday
    (rome(2026, 12, 25, 10), False),         # Christmas
    (rome(2027, 1, 6, 10), False),           # Epiphany
    (utc(2026, 2, 10, 8, 30), True),         # 09:30 in Rome
])
def test_is_open(when, is_open):
    assert IT.is_open(when) is is_open


# --- business days --------------------------------------------------------------------

@pytest.mark.parametrize(("start", "response", "expected"), [
    (rome(2026, 2, 10, 10), "next_business_day", rome(2026, 2, 11, 18)),
    (rome(2026, 2, 10, 20), "next_business_day", rome(2026, 2, 11, 18)),   # after hours
    (rome(2026, 2, 10, 7), "next_business_day", rome(2026, 2, 11, 18)),    # before hours
    (rome(2026, 2, 13, 10), "next_business_day", rome(2026, 2, 16, 18)),   # Friday
    (rome(2026, 2, 14, 10), "next_business_day", rome(2026, 2, 16, 18)),   # Saturday
    (rome(2026, 2, 11, 10), "5_business_days", rome(2026, 2, 18, 18)),     # over a weekend
    (rome(2026, 2, 11, 10), "1_business_day", rome(2026, 2, 12, 18)),
    (rome(2026, 12, 24, 10), "next_business_day", rome(2026, 12, 28, 18)),
    (rome(2026, 12, 23, 10), "5_business_days", rome(2026, 12, 31, 18)),
    (rome(2026, 12, 31, 10), "next_business_day", rome(2027, 1, 4, 18)),
    # 4, 5, (6 Epiphany), 7, 8, 11 January 2027
    (rome(2026, 12, 31, 10), "5_business_days", rome(2027, 1, 11, 18)),
])
def test_business_days_in_italy(start, response, expected):
    assert deadline(IT, start, response, around_the_clock=False) == expected


def test_close_of_business_day_counts_from_the_local_day():
    # 23:30 UTC on Monday 9 Feb is already Tuesday 00:30 in Rome.
    assert IT.close_of_business_day(utc(2026, 2, 9, 23, 30), 1) == rome(2026, 2, 11, 18)
    with pytest.raises(ValueError, match="at least 1"):
        IT.close_of_business_day(rome(2026, 2, 10, 10), 0)


def test_russian_new_year_holidays():
    # 31 Dec 2026 is a day off (moved from 4 Jan 2026), 1-8 January are holidays,
    # 9-10 January 2027 a weekend: the next business day is Monday 11 January.
    start = datetime(2026, 12, 30, 10, tzinfo=MOSCOW)
    assert deadline(RU, start, "next_business_day", around_the_clock=False) == \
        utc(2027, 1, 11, 15)


# --- transferred working days -----------------------------------------------------------

def test_russian_transferred_working_saturday_from_the_holidays_package():
    # Saturday 1 Nov 2025 was worked in Russia; Monday 3 Nov was off and 4 Nov is Unity Day.
    assert RU.is_open(datetime(2025, 11, 1, 10, tzinfo=MOSCOW))
    assert not RU.is_open(datetime(2025, 11, 3, 10, tzinfo=MOSCOW))
    friday = datetime(2025, 10, 31, 10, tzinfo=MOSCOW)
    assert deadline(RU, friday, "next_business_day", around_the_clock=False) == \
        utc(2025, 11, 1, 15)
    assert deadline(RU, friday, "2_business_days", around_the_clock=False) == \
        utc(2025, 11, 5, 15)
    saturday = datetime(2025, 11, 1, 10, tzinfo=MOSCOW)
    assert deadline(RU, saturday, "2h", around_the_clock=False) == utc(2025, 11, 1, 9)


def test_belarusian_transferred_working_saturday():
    # Saturday 25 Apr 2026 is worked for Monday 20 April (Radunitsa is on the 21st).
    friday = datetime(2026, 4, 24, 10, tzinfo=MINSK)
    assert deadline(BY, friday, "next_business_day", around_the_clock=False) == \
        utc(2026, 4, 25, 15)
    assert not BY.is_open(datetime(2026, 4, 20, 10, tzinfo=MINSK))


def test_hungarian_bridge_day_and_working_saturday():
    # Friday 2 Jan 2026 off, Saturday 10 Jan 2026 worked.
    assert not HU.is_open(datetime(2026, 1, 2, 10, tzinfo=BUDAPEST))
    assert HU.is_open(datetime(2026, 1, 10, 10, tzinfo=BUDAPEST))


def test_explicit_working_days_use_working_hours_or_mondays():
    short = calendar(hours=weekdays(LUNCH), working_days=["2026-02-14"],
                     working_hours="09:00-13:00")
    # Friday 13 Feb 17:00: one hour, then Saturday 09:00 + 3h.
    assert short.add(rome(2026, 2, 13, 17), timedelta(hours=4)) == rome(2026, 2, 14, 12)
    assert short.add(rome(2026, 2, 14, 12), timedelta(hours=2)) == rome(2026, 2, 16, 10)
    mondays = calendar(hours=weekdays(LUNCH), working_days=["2026-02-14"])
    assert mondays.add(rome(2026, 2, 14, 12), timedelta(hours=2)) == rome(2026, 2, 14, 15)


def test_explicit_closed_dates_and_days_absent_from_hours():
    closed = calendar(hours=weekdays(LUNCH), dates=["2026-02-16"])
    assert closed.close_of_business_day(rome(2026, 2, 13, 10), 1) == rome(2026, 2, 17, 18)
    four_days = calendar(hours={"mon": LUNCH, "tue": LUNCH, "wed": LUNCH, "thu": LUNCH})
    assert four_days.close_of_business_day(rome(2026, 2, 12, 10), 1) == rome(2026, 2, 16, 18)


def test_working_day_wins_over_a_holiday():
    # A company open on Epiphany 2027 although Italy is not.
    open_epiphany = calendar(hours=weekdays(LUNCH), holidays="IT", working_days=["2027-01-06"])
    assert open_epiphany.is_open(rome(2027, 1, 6, 10))


# --- DST ------------------------------------------------------------------------------

@pytest.mark.parametrize(("start", "expected"), [
    # Friday before the spring change: 16:00 CET + 2h, Monday 09:00 CEST + 2h = 11:00 CEST.
    (utc(2026, 3, 27, 15), utc(2026, 3, 30, 9)),
    # Saturday before it: Monday 09:00-13:00 CEST.
    (utc(2026, 3, 28, 12), utc(2026, 3, 30, 11)),
    # Monday after: 10:00 CEST + 3h + 1h after lunch = 15:00 CEST.
    (utc(2026, 3, 30, 8), utc(2026, 3, 30, 13)),
    # Friday before the autumn change: 16:00 CEST + 2h, Monday 09:00 CET + 2h = 11:00 CET.
    (utc(2026, 10, 23, 14), utc(2026, 10, 26, 10)),
    # Monday after: 10:00 CET + 4h = 15:00 CET.
    (utc(2026, 10, 26, 9), utc(2026, 10, 26, 14)),
    # Sunday of the change itself, 10:00 local.
    (utc(2026, 3, 29, 8), utc(2026, 3, 30, 11)),
    (utc(2026, 10, 25, 9), utc(2026, 10, 26, 12)),     # Monday 09:00-13:00 CET
])
def test_four_business_hours_across_dst_in_rome(start, expected):
    assert deadline(IT, start, "4h", around_the_clock=False) == expected
    assert IT.between(start, expected) == timedelta(hours=4)


@pytest.mark.parametrize(("start", "hours", "expected"), [
    # On an always-open calendar business time is real time, not wall time.
    (utc(2026, 3, 28, 11), 24, utc(2026, 3, 29, 11)),     # 12:00 CET -> 13:00 CEST
    (utc(2026, 10, 24, 10), 24, utc(2026, 10, 25, 10)),   # 12:00 CEST -> 11:00 CET
])
def test_always_open_calendar_across_dst(start, hours, expected):
    assert ALWAYS.add(start, timedelta(hours=hours)) == expected


@pytest.mark.parametrize(("a", "b", "hours"), [
    (rome(2026, 3, 28, 0), rome(2026, 3, 30, 0), 47),   # 24 + 23
    (rome(2026, 10, 24, 0), rome(2026, 10, 26, 0), 49),  # 24 + 25
])
def test_between_on_dst_weekends(a, b, hours):
    assert ALWAYS.between(a, b) == timedelta(hours=hours)
    assert ALWAYS.between(b, a) == -timedelta(hours=hours)


@pytest.mark.parametrize(("a", "b", "expected"), [
    (rome(2026, 2, 10, 10), rome(2026, 2, 10, 15), timedelta(hours=4)),
    (rome(2026, 2, 10, 13, 10), rome(2026, 2, 10, 13, 50), timedelta(0)),
    (rome(2026, 2, 13, 17), rome(2026, 2, 16, 10), timedelta(hours=2)),
    # 24, 28, 29, 30, 31 December, 4 and 5 January (6th Epiphany), 8 hours each.
    (rome(2026, 12, 24, 9), rome(2027, 1, 7, 9), timedelta(hours=7 * 8)),
])
def test_between(a, b, expected):
    assert IT.between(a, b) == expected


@pytest.mark.parametrize("start", [
    utc(2026, 3, 27, 15, 17), utc(2026, 3, 29, 1, 30), utc(2026, 10, 24, 23, 59),
    utc(2026, 12, 24, 16, 45), utc(2026, 12, 31, 23, 0),
])
@pytest.mark.parametrize("minutes", [1, 45, 240, 421, 2000])
def test_between_undoes_add(start, minutes):
    for cal in (IT, HU, RU, BY, ALWAYS):
        due = cal.add(start, timedelta(minutes=minutes))
        assert cal.between(start, due) == timedelta(minutes=minutes)


# --- units ----------------------------------------------------------------------------

@pytest.mark.parametrize("response", ["best_effort", None])
def test_no_deadline(response):
    assert deadline(IT, rome(2026, 2, 10, 10), response, around_the_clock=False) is None
    assert deadline(IT, rome(2026, 2, 10, 10), response, around_the_clock=True) is None


def test_around_the_clock_counts_wall_time():
    assert deadline(IT, utc(2026, 2, 14, 22, 30), "1h", around_the_clock=True) == \
        utc(2026, 2, 14, 23, 30)
    assert deadline(IT, utc(2026, 3, 29, 0, 30), "2h", around_the_clock=True) == \
        utc(2026, 3, 29, 2, 30)


@pytest.mark.parametrize("response", [
    "soon", "2d", "0m", "0_business_days", "business_days", "1x", "", "-1h", "5 days", 4,
])
def test_bad_units(response):
    with pytest.raises(ValueError):
        deadline(IT, rome(2026, 2, 10, 10), response, around_the_clock=False)


# --- response_due with the shipped rules --------------------------------------------------

SHIPPED = load_policy(RULES)


def policy_with(*companies: CompanyRule) -> Policy:
    return Policy(list(companies), [], SHIPPED.plans, SHIPPED.calendars)


def company(name: str = "Acme", plan: str = "standard", calendar: str | None = "it-office",
            extra_time: bool = False) -> CompanyRule:
    return CompanyRule(name=name, domains=[f"{name.lower()}.example"], plan=plan,
                       calendar=calendar, extra_time=extra_time)


def test_shipped_rules_validate():
    assert validate(SHIPPED) == []
    assert set(SHIPPED.calendars) >= {"it-office", "hu-office", "ru-office", "by-office"}


# Arrival Tuesday 10 Feb 2026 10:00 in Rome (09:00 UTC), it-office, no extra time.
EXPECTED = {
    "standard": {
        "P1plus": utc(2026, 2, 10, 10), "P1": utc(2026, 2, 10, 11),
        "P2": utc(2026, 2, 10, 14), "P3": utc(2026, 2, 11, 17),
        "P4": utc(2026, 2, 17, 17), "P7": None,
    },
    "severity": {
        "S1": utc(2026, 2, 10, 14), "S2": utc(2026, 2, 11, 17), "S3": utc(2026, 2, 17, 17),
    },
    "problem-type": {
        "user": utc(2026, 2, 11, 9), "system": utc(2026, 2, 10, 14),
        "infrastructure": utc(2026, 2, 10, 11),
    },
}


@pytest.mark.parametrize("plan", sorted(EXPECTED))
def test_each_shipped_plan_gives_a_deadline_per_priority(plan):
    assert set(SHIPPED.plans[plan].priority) == set(EXPECTED[plan])
    policy = policy_with(company(plan=plan))
    for priority, expected in EXPECTED[plan].items():
        assert response_due(policy, "Acme", priority, utc(2026, 2, 10, 9)) == expected, priority


def test_shipped_labels():
    assert SHIPPED.plans["standard"].label("P1plus") == "P1+"
    assert SHIPPED.plans["severity"].label("S1") == "Severity 1 (High)"
    assert SHIPPED.plans["problem-type"].default_priority == "user"


@pytest.mark.parametrize(("extra_time", "expected"), [
    (True, utc(2026, 2, 14, 23, 30)),   # Saturday 23:30 UTC, around the clock
    (False, utc(2026, 2, 16, 9)),       # Monday 09:00 + 1h in Rome = 10:00 CET
])
def test_24x7_only_with_extra_time(extra_time, expected):
    policy = policy_with(company(extra_time=extra_time))
    assert response_due(policy, "Acme", "P1plus", utc(2026, 2, 14, 22, 30)) == expected


def test_24x7_does_not_touch_the_other_priorities():
    policy = policy_with(company(extra_time=True))
    assert response_due(policy, "Acme", "P1", utc(2026, 2, 14, 22, 30)) == utc(2026, 2, 16, 10)


@pytest.mark.parametrize("who", [None, "Nocal", "Ghost"])
def test_fallback_calendar_is_weekdays_nine_to_six_utc(who):
    # Friday 13 Feb 2026 16:00 UTC + 4h: 2h on Friday, Monday 09:00 + 2h.
    policy = policy_with(company("Nocal", calendar=None), company("Ghost", calendar="nowhere"))
    assert response_due(policy, who, "P2", utc(2026, 2, 13, 16)) == utc(2026, 2, 16, 11)


def test_unknown_priority_or_missing_response_has_no_deadline():
    plans = {"standard": PlanRule.model_validate(
        {"default_priority": "A", "priority": {"A": {"label": "A"}}})}
    policy = Policy([company(calendar=None)], [], plans, {})
    assert response_due(policy, "Acme", "A", utc(2026, 2, 10, 9)) is None
    assert response_due(SHIPPED, None, "P9", utc(2026, 2, 10, 9)) is None


def test_built_calendars_are_cached():
    policy = policy_with(company())
    acme = policy.company("Acme")
    assert bizhours._calendar_for(policy, acme) is bizhours._calendar_for(policy, acme)


# --- validation -----------------------------------------------------------------------

@pytest.mark.parametrize(("table", "message"), [
    ({"hours": {"mon": "9-13"}}, "calendar.x.hours.mon: bad time in '9-13'"),
    ({"hours": {"mon": "09:00"}}, "calendar.x.hours.mon: bad time range '09:00'"),
    ({"hours": {"mon": "13:00-09:00"}}, "calendar.x.hours.mon: '13:00-09:00' ends before"),
    ({"hours": {"tue": "09:00-13:00,12:00-18:00"}},
     "calendar.x.hours.tue: 09:00-13:00 overlaps 12:00-18:00"),
    ({"hours": {"mon": "09:00-24:30"}}, "calendar.x.hours.mon: bad time"),
    ({"hours": {"monday": LUNCH}}, "calendar.x.hours.monday: unknown weekday"),
    ({"hours": {}}, "calendar.x.hours: no business hours"),
    ({"hours": "09:00-18:00"}, "calendar.x.hours: expected a table"),
    ({"hours": {"mon": 9}}, "calendar.x.hours.mon: expected a string"),
    ({"holidays": "XX"}, "calendar.x.holidays: unknown country code 'XX'"),
    ({"dates": ["2026-02-30"]}, r"calendar.x.dates\[0\]: not a date"),
    ({"dates": "2026-02-14"}, "calendar.x.dates: expected a list"),
    ({"working_days": ["2026-02-14"], "dates": ["2026-02-14"]},
     "calendar.x.working_days: 2026-02-14 is also in dates"),
    ({"working_hours": "25:00-26:00"}, "calendar.x.working_hours: bad time"),
    ({"holiday": "IT"}, "calendar.x.holiday: unknown key"),
])
def test_calendar_errors_name_the_key(table, message):
    with pytest.raises(ValueError, match=message):
        calendar(**table)


def test_calendar_without_hours_is_open_weekdays_nine_to_six():
    plain = calendar()
    assert plain.add(rome(2026, 2, 13, 17), timedelta(hours=2)) == rome(2026, 2, 16, 10)


def test_validate_reports_every_problem():
    plans = {"p": PlanRule.model_validate({"default_priority": "Z", "priority": {
        "A": {"response": "3 days"},
        "B": {"response": "0_business_days"},
        "C": {"response": "2d"},
        "D": {"response": "1h", "clock": "24/7"},
        "E": {"response": "next_business_day", "clock": "24x7"},
        "F": {"response": "4h", "clock": "24x7"},
    }})}
    calendars = {"bad": CalendarRule.model_validate(
        {"hours": {"mon": "9-13", "tue": "13:00-09:00"}, "holidays": "XX"})}
    problems = validate(Policy([], [], plans, calendars))
    assert [p.split(": ")[0] for p in problems] == [
        "sla.toml:calendar.bad.hours.mon",
        "sla.toml:calendar.bad.hours.tue",
        "sla.toml:calendar.bad.holidays",
        "sla.toml:plan.p.default_priority",
        "sla.toml:plan.p.priority.A.response",
        "sla.toml:plan.p.priority.B.response",
        "sla.toml:plan.p.priority.C.response",
        "sla.toml:plan.p.priority.D.clock",
        "sla.toml:plan.p.priority.E.clock",
    ]
