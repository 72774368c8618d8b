"""Triage rules from ``rules/triage.toml`` (SPEC §7): who gets which priority, category,
assignee, origin, queue and auto-reply, which requests need a manager's approval, and
which monitoring alerts are deduplicated.

A rule is ``name``, ``when`` (conditions), ``set`` (values) and optionally ``dedupe`` and
``resolve_on``::

    [[rule]]
    name = "monitoring alerts"
    when = { from = "monitor@altec.example", subject = "(?i)^(PROBLEM|CRITICAL|RECOVERY|OK)\\b" }
    set = { origin = "monitor", priority = "P2", auto_reply = false }
    dedupe = "subject"
    resolve_on = "(?i)^(RECOVERY|OK)\\b"

Matching (``when``):

* Every key of a ``when`` must match (AND); an empty ``when`` matches every message.
* ``subject``, ``body`` (the text part) and ``header.<Name>`` are Python regexes,
  searched (not anchored unless the pattern says ``^``), case-sensitive unless the
  pattern says ``(?i)``.  ``header.<Name>`` matches when any value of a repeated header
  matches; a missing header never matches.  The header may also be written as a table,
  ``[rule.when.header]`` / ``when.header.X-Priority = "^1"``.
* ``from`` and ``to`` are plain addresses when the value is made only of address
  characters (letters, digits, ``.``, ``_``, ``%``, ``+``, ``-``) around one ``@``:
  then the whole address is compared, case-insensitively.  Anything else is a regex
  searched in the (lower-cased) address.  ``to`` matches any To, Cc or envelope
  recipient.
* ``company`` is the company name as in ``companies.toml``, compared exactly but
  case-insensitively; a sender of no company never matches.

Applying (``set``): SPEC §7 says "first match wins within a group; all groups apply in
order".  Here a *group* is one ``set`` key.  Rules are tried in file order and every
matching rule contributes; for each key the first matching rule that sets it wins and
later rules cannot override it.  So a specific rule placed early (``priority = "P1"``)
and a broad rule placed late (``priority = "P3", queue = "general"``) combine: the
message gets P1 from the first and the queue from the second.  ``dedupe`` together with
its ``resolve_on`` is one more group.  The names of all matching rules are recorded as
``Triage.hits``, in file order.

Dedupe: with ``dedupe = "subject"`` a message whose ``dedupe_key`` equals that of an open
ticket is added to it as an article instead of opening a ticket; when ``is_recovery``
(the subject matches ``resolve_on``) it may resolve that ticket.  Finding the ticket is
the pipeline's job; this module only computes the key.

Errors read ``file:rule[i] 'name'.key: reason`` so ``mailgate check-config`` can print
them as they are; ``load_rules`` reports every problem of the file at once.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    StrictBool,
    StrictStr,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from mailgate.config import ConfigError
from mailgate.correlate import strip_reply_prefixes
from mailgate.message import ParsedMail

WHEN_KEYS = ("from", "to", "company", "subject", "body", "header.<Name>")
SET_KEYS = ("priority", "category", "assignee", "origin", "auto_reply", "queue",
            "needs_approval")
RULE_KEYS = ("name", "when", "set", "dedupe", "resolve_on")

# A value of ``from``/``to`` made only of these characters is an address, not a regex.
_PLAIN_ADDRESS = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9._-]+$")
# RFC 5322 §2.2: a field name is printable US-ASCII except the colon.
_HEADER_NAME = re.compile(r"^[!-9;-~]+$")

# A leading monitoring state word followed by ":" or a dash.
_STATE_WORD = re.compile(
    r"^\s*(?:problem|critical|warning|recovery|ok|resolved|up|down)\s*[:\-–—]\s*",
    re.IGNORECASE,
)
_SEPARATOR = re.compile(r"^\s*[:\-–—]?\s*")


# --- value types --------------------------------------------------------------------


def _regex(value: Any) -> re.Pattern:
    """``value`` compiled as a regex; a ValueError says why it is not one."""
    if not isinstance(value, str):
        raise ValueError(f"must be a string (a regex), not {type(value).__name__}")
    try:
        return re.compile(value)
    except re.error as exc:
        raise ValueError(f"bad regex {value!r}: {exc}") from exc


@dataclass(frozen=True)
class AddressPattern:
    """A ``from``/``to`` condition: a plain address or a regex over addresses."""

    text: str
    address: str | None = None
    regex: re.Pattern | None = None

    def matches(self, addresses: Iterable[str]) -> bool:
        """True when any of ``addresses`` is this address or matches this regex."""
        for addr in addresses:
            addr = addr.strip().lower()
            if self.address is not None and addr == self.address:
                return True
            if self.regex is not None and self.regex.search(addr):
                return True
        return False


def _address_pattern(value: Any) -> AddressPattern:
    if isinstance(value, str) and _PLAIN_ADDRESS.match(value.strip()):
        return AddressPattern(value, address=value.strip().lower())
    return AddressPattern(value, regex=_regex(value))


def _header_name(value: Any) -> str:
    if not isinstance(value, str) or not _HEADER_NAME.match(value):
        raise ValueError(f"{value!r} is not a header name")
    return value


def _address(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a string (a mail address), not {type(value).__name__}")
    value = value.strip().lower()
    if not re.fullmatch(r"[^@\s]+@[^@\s]+", value):
        raise ValueError(f"{value!r} is not a mail address")
    return value


Regex = Annotated[re.Pattern, BeforeValidator(_regex)]
AddressMatch = Annotated[AddressPattern, PlainValidator(_address_pattern)]
HeaderName = Annotated[str, BeforeValidator(_header_name)]
Address = Annotated[str, PlainValidator(_address)]
Text = Annotated[StrictStr, StringConstraints(strip_whitespace=True, min_length=1)]


# --- models -------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class When(_Strict):
    """The conditions of a rule; all given ones must match."""

    from_: AddressMatch | None = Field(None, alias="from")
    to: AddressMatch | None = None
    company: StrictStr | None = None
    subject: Regex | None = None
    body: Regex | None = None
    header: dict[HeaderName, Regex] = {}

    @model_validator(mode="before")
    @classmethod
    def _gather_headers(cls, data: Any) -> Any:
        """``"header.X-Priority" = …`` keys become entries of ``header``."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        headers = data.get("header", {})
        if isinstance(headers, dict):
            headers = dict(headers)
            for key in [k for k in data if isinstance(k, str) and k.startswith("header.")]:
                headers[key.removeprefix("header.")] = data.pop(key)
            data["header"] = headers
        return data

    @field_validator("company")
    @classmethod
    def _company(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value.strip()

    def matches(self, mail: ParsedMail, company: str | None, recipients: list[str]) -> bool:
        """True when ``mail`` meets every condition (an empty ``when`` always does)."""
        if self.from_ and not self.from_.matches([mail.from_addr]):
            return False
        if self.to and not self.to.matches([*mail.to, *mail.cc, *recipients]):
            return False
        if self.company and (company or "").strip().casefold() != self.company.casefold():
            return False
        if self.subject and not self.subject.search(mail.subject):
            return False
        if self.body and not self.body.search(mail.text):
            return False
        return all(_header_matches(mail, name, rx) for name, rx in self.header.items())


def _header_matches(mail: ParsedMail, name: str, regex: re.Pattern) -> bool:
    return any(regex.search(value) for value in mail.headers.get(name.lower(), []))


class Actions(_Strict):
    """The ``set`` table of a rule: the values a matching rule gives the ticket."""

    priority: Text | None = None
    category: Literal["user", "system", "infrastructure", "access", "order",
                      "complaint"] | None = None
    assignee: Address | None = None
    origin: Literal["mail", "monitor", "phone", "web"] | None = None
    auto_reply: StrictBool | None = None
    queue: Text | None = None
    # A manager's written approval is needed (implied by category access or order).
    needs_approval: StrictBool | None = None

    def values(self) -> dict[str, Any]:
        """The keys this rule sets, with their values."""
        return self.model_dump(exclude_none=True)


class Rule(_Strict):
    """One ``[[rule]]`` of ``triage.toml``."""

    name: Text
    when: When = When()
    set_: Actions = Field(Actions(), alias="set")
    dedupe: Literal["subject"] | None = None
    resolve_on: Regex | None = None

    @field_validator("resolve_on")
    @classmethod
    def _needs_dedupe(cls, value: re.Pattern, info: ValidationInfo) -> re.Pattern:
        # A failed ``dedupe`` is missing from info.data and reported on its own.
        if "dedupe" in info.data and info.data["dedupe"] is None:
            raise ValueError('needs dedupe = "subject" (it resolves the deduplicated ticket)')
        return value


# --- loading ------------------------------------------------------------------------


def load_rules(path: Path) -> list[Rule]:
    """The rules of ``path`` in file order; a missing file has none.

    Raises ``ConfigError`` listing every problem as ``file:rule[i] 'name'.key: reason``.
    """
    if not path.exists():
        return []
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError([f"{path}: {exc}"]) from exc
    problems = [f"{path}:{key}: unknown key (rules are [[rule]] tables)"
                for key in data if key != "rule"]
    raw_rules = data.get("rule", [])
    if not isinstance(raw_rules, list):
        raise ConfigError([*problems, f"{path}:rule: must be an array of tables ([[rule]])"])
    rules = [_load_one(path, i, raw, problems) for i, raw in enumerate(raw_rules)]
    problems += _duplicate_names(path, raw_rules)
    if problems:
        raise ConfigError(problems)
    return [r for r in rules if r is not None]


def _load_one(path: Path, index: int, raw: Any, problems: list[str]) -> Rule | None:
    """Rule ``index`` validated; its problems are appended to ``problems``."""
    try:
        return Rule.model_validate(raw)
    except ValidationError as exc:
        where = f"{path}:rule[{index}] {_name_of(raw)!r}"
        for err in exc.errors():
            key = _key_of(err["loc"])
            problems.append(f"{where}.{key}: {_reason(err)}" if key else f"{where}: {_reason(err)}")
        return None


def _name_of(raw: Any) -> str:
    name = raw.get("name") if isinstance(raw, dict) else None
    return name if isinstance(name, str) else "?"


def _key_of(loc: tuple) -> str:
    """The key as written in the file: ``when.subject``, ``set.origin``, ``when.header.X``."""
    return ".".join(str(part) for part in loc if part != "[key]")


def _reason(err: dict) -> str:
    """Pydantic's message, worded for a rule file."""
    if err["type"] == "extra_forbidden":
        section = err["loc"][0] if len(err["loc"]) > 1 else None
        expected = {"when": WHEN_KEYS, "set": SET_KEYS}.get(section, RULE_KEYS)
        return f"unknown key (expected one of: {', '.join(expected)})"
    if err["type"] in ("model_type", "model_attributes_type", "dict_type"):
        return "must be a table"
    if err["type"] == "value_error":
        return str(err["ctx"]["error"])
    return err["msg"]


def _duplicate_names(path: Path, raw_rules: list) -> list[str]:
    """Hits are recorded by name, so two rules must not share one."""
    problems, seen = [], {}
    for i, raw in enumerate(raw_rules):
        name = _name_of(raw)
        if name == "?":
            continue
        if name in seen:
            problems.append(f"{path}:rule[{i}] {name!r}.name: same name as rule[{seen[name]}]")
        seen.setdefault(name, i)
    return problems


# --- applying -----------------------------------------------------------------------


@dataclass
class Triage:
    """What the rules decided for one message; None means "no rule said"."""

    priority: str | None = None
    category: str | None = None
    assignee: str | None = None
    origin: str | None = None
    auto_reply: bool = True
    queue: str | None = None
    needs_approval: bool = False
    dedupe: str | None = None
    resolve_on: re.Pattern | None = None
    hits: list[str] = field(default_factory=list)


def triage(
    rules: Iterable[Rule], mail: ParsedMail, *, company: str | None, recipients: list[str]
) -> Triage:
    """Apply ``rules`` in order to ``mail`` from ``company`` sent to envelope ``recipients``.

    Every matching rule is a hit; per ``set`` key (and for ``dedupe``) the first matching
    rule that gives a value wins.
    """
    result = Triage()
    decided: set[str] = set()
    for rule in rules:
        if not rule.when.matches(mail, company, recipients):
            continue
        result.hits.append(rule.name)
        for key, value in rule.set_.values().items():
            if key not in decided:
                setattr(result, key, value)
                decided.add(key)
        if rule.dedupe and "dedupe" not in decided:
            result.dedupe, result.resolve_on = rule.dedupe, rule.resolve_on
            decided.add("dedupe")
    return result


# --- dedupe -------------------------------------------------------------------------


def dedupe_key(subject: str, resolve_on: re.Pattern | str | None = None) -> str:
    """``subject`` normalised so that an alert, its repeats and its recovery share a key.

    Strips reply/forward prefixes, a leading state word (PROBLEM, CRITICAL, WARNING,
    RECOVERY, OK, RESOLVED, UP, DOWN) followed by ``:`` or ``-``, and a leading match of
    ``resolve_on`` with its separator; collapses white space and lower-cases.  So
    "PROBLEM: disk full on srv1", "Re: PROBLEM: disk full on srv1" and
    "RECOVERY: disk full on srv1" all give "disk full on srv1".
    """
    pattern = _compiled(resolve_on)
    text, previous = " ".join(subject.split()), None
    while text != previous:
        previous = text
        text = strip_reply_prefixes(text)
        text = _strip_recovery(text, pattern)
        text = _STATE_WORD.sub("", text, count=1)
    return " ".join(text.split()).casefold()


def is_recovery(subject: str, resolve_on: re.Pattern | str | None) -> bool:
    """True when ``subject`` matches the rule's ``resolve_on`` (never without one).

    The subject is tested as it stands (only leading white space dropped), so with an
    anchored pattern a person's "Re: RECOVERY: …" is a reply, not a recovery.
    """
    pattern = _compiled(resolve_on)
    return bool(pattern and pattern.search(subject.lstrip()))


def _compiled(pattern: re.Pattern | str | None) -> re.Pattern | None:
    return re.compile(pattern) if isinstance(pattern, str) else pattern


def _strip_recovery(text: str, pattern: re.Pattern | None) -> str:
    """``text`` without a recovery marker at its very start (and the separator after it)."""
    match = pattern.match(text) if pattern else None
    if not match or not match.group(0).strip():
        return text
    return _SEPARATOR.sub("", text[match.end():], count=1)
