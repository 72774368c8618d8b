"""Policy files under ``rules/``: companies, staff and the SLA plans' default priority.

Policy is data (ARCHITECTURE principle 4): this module only loads and validates it and
answers lookups (which company owns a domain, who is staff).  Errors read
``file:key: reason`` like the configuration's.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mailgate.config import ConfigError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CompanyRule(_Strict):
    name: str
    domains: list[str] = Field(min_length=1)
    language: str = "en"
    plan: str = "standard"
    calendar: str | None = None
    extra_time: bool = False
    prepaid_hours: float | None = None
    hours_low_threshold: float | None = None
    managers: list[str] = []
    managers_copy: bool = False

    @field_validator("domains", "managers")
    @classmethod
    def _lower(cls, values: list[str]) -> list[str]:
        return [v.strip().lower().lstrip("@") for v in values]


class StaffRule(_Strict):
    address: str
    name: str = ""
    skills: list[str] = []

    @field_validator("address")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.strip().lower()


class PriorityRule(BaseModel):
    """One priority of a plan; SLA keys beyond ``label`` belong to the SLA engine."""

    model_config = ConfigDict(extra="allow")
    label: str | None = None


class PlanRule(BaseModel):
    model_config = ConfigDict(extra="allow")
    default_priority: str = "P3"
    priority: dict[str, PriorityRule] = {}

    def label(self, priority: str) -> str:
        """The display label of ``priority`` (``P1plus`` shows as ``P1+``)."""
        rule = self.priority.get(priority)
        return rule.label if rule and rule.label else priority


class CalendarRule(BaseModel):
    """A business calendar; this module reads its timezone, the SLA engine the rest."""

    model_config = ConfigDict(extra="allow")
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {value!r}") from exc
        return value


@dataclass
class Policy:
    """Everything loaded from ``rules/``, with the lookups the pipeline needs."""

    companies: list[CompanyRule] = field(default_factory=list)
    staff: list[StaffRule] = field(default_factory=list)
    plans: dict[str, PlanRule] = field(default_factory=dict)
    calendars: dict[str, CalendarRule] = field(default_factory=dict)

    def company(self, name: str | None) -> CompanyRule | None:
        """The company called ``name``."""
        return next((c for c in self.companies if c.name == name), None)

    def timezone(self, company: str | None) -> ZoneInfo:
        """The timezone of the company's calendar (UTC when it has none)."""
        rule = self.company(company)
        calendar = self.calendars.get(rule.calendar or "") if rule else None
        return ZoneInfo(calendar.timezone if calendar else "UTC")

    def company_for_domain(self, domain: str) -> CompanyRule | None:
        """The company whose domain is ``domain`` or a parent of it (longest match wins)."""
        domain = domain.lower()
        best, best_len = None, -1
        for company in self.companies:
            for d in company.domains:
                if (domain == d or domain.endswith("." + d)) and len(d) > best_len:
                    best, best_len = company, len(d)
        return best

    def staff_member(self, address: str) -> StaffRule | None:
        """The staff entry for ``address``, or None."""
        address = address.lower()
        return next((s for s in self.staff if s.address == address), None)

    def plan(self, name: str | None) -> PlanRule:
        """The plan called ``name``; an empty default plan when it is not declared."""
        found = self.plans.get(name or "")
        # Made only when needed: validating a new model for every mail cost 0.4 %.
        return found if found is not None else PlanRule()


def load_policy(rules_dir: Path) -> Policy:
    """Load ``companies.toml``, ``staff.toml`` and ``sla.toml`` (each optional)."""
    problems: list[str] = []
    companies = _load_list(rules_dir / "companies.toml", "company", CompanyRule, problems)
    staff = _load_list(rules_dir / "staff.toml", "staff", StaffRule, problems)
    sla = _read(rules_dir / "sla.toml", problems)
    plans = _load_tables(rules_dir / "sla.toml", sla, "plan", PlanRule, problems)
    calendars = _load_tables(rules_dir / "sla.toml", sla, "calendar", CalendarRule, problems)
    policy = Policy(companies, staff, plans, calendars)
    problems += _cross_check(policy, rules_dir)
    if problems:
        raise ConfigError(problems)
    return policy


def _read(path: Path, problems: list[str]) -> dict:
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        problems.append(f"{path}: {exc}")
        return {}


def _load_list(path: Path, key: str, model, problems: list[str]) -> list:
    items = []
    for i, raw in enumerate(_read(path, problems).get(key, [])):
        try:
            items.append(model.model_validate(raw))
        except ValidationError as exc:
            for err in exc.errors():
                loc = ".".join(str(p) for p in err["loc"])
                problems.append(f"{path}:{key}[{i}].{loc}: {err['msg']}")
    return items


def _load_tables(path: Path, data: dict, key: str, model, problems: list[str]) -> dict:
    tables = {}
    for name, raw in data.get(key, {}).items():
        try:
            tables[name] = model.model_validate(raw)
        except ValidationError as exc:
            problems += [f"{path}:{key}.{name}: {e['msg']}" for e in exc.errors()]
    return tables


def _cross_check(policy: Policy, rules_dir: Path) -> list[str]:
    problems = []
    seen: dict[str, str] = {}
    path = rules_dir / "companies.toml"
    for i, company in enumerate(policy.companies):
        for domain in company.domains:
            if domain in seen:
                problems.append(
                    f"{path}:company[{i}].domains: {domain} already belongs to {seen[domain]}"
                )
            seen[domain] = company.name
        if policy.plans and company.plan not in policy.plans:
            problems.append(f"{path}:company[{i}].plan: no plan {company.plan!r} in sla.toml")
        if company.calendar and policy.calendars and company.calendar not in policy.calendars:
            problems.append(f"{path}:company[{i}].calendar: no calendar {company.calendar!r} "
                            "in sla.toml")
    return problems
