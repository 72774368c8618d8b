"""rules: loading triage.toml, matching ``when``, applying ``set``, dedupe keys."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mailgate.config import ConfigError
from mailgate.message import ParsedMail, parse
from mailgate.rules import Rule, Triage, dedupe_key, is_recovery, load_rules, triage

SHIPPED = Path(__file__).resolve().parents[2] / "rules" / "triage.toml"
RESOLVE = re.compile(r"(?i)^(RECOVERY|OK)\b")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "triage.toml"
    path.write_text(text, encoding="utf-8")
    return path


def rules_of(tmp_path: Path, text: str) -> list[Rule]:
    return load_rules(write(tmp_path, text))


def problems_of(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_rules(write(tmp_path, text))
    return info.value.problems


def mail(
    sender: str = "mario@acme.it",
    to: str = "hd@example.com",
    subject: str = "Printer broken",
    body: str = "It jams.",
    *headers: str,
) -> ParsedMail:
    lines = [f"From: Mario <{sender}>", f"To: {to}", f"Subject: {subject}", *headers]
    return parse(("\r\n".join(lines) + "\r\n\r\n" + body + "\r\n").encode())


def run(rules: list[Rule], message: ParsedMail, company: str | None = None,
        recipients: list[str] | None = None) -> Triage:
    return triage(rules, message, company=company, recipients=recipients or [])


def one_rule(tmp_path: Path, when: str) -> list[Rule]:
    text = f'[[rule]]\nname = "r"\nwhen = {{ {when} }}\nset = {{ queue = "q" }}\n'
    return rules_of(tmp_path, text)


def hit(tmp_path: Path, when: str, message: ParsedMail, **kwargs) -> bool:
    return run(one_rule(tmp_path, when), message, **kwargs).hits == ["r"]


# --- loading ------------------------------------------------------------------------


def test_shipped_file_loads():
    rules = load_rules(SHIPPED)
    names = [r.name for r in rules]
    assert names[:2] == ["monitoring alerts", "urgent address"]
    monitoring = rules[0]
    assert monitoring.dedupe == "subject"
    assert monitoring.resolve_on.search("RECOVERY: disk full")
    assert monitoring.set_.values() == {"origin": "monitor", "priority": "P2",
                                        "category": "infrastructure", "auto_reply": False}
    assert any(r.when.header for r in rules)
    assert any(r.when.company and r.when.body for r in rules)


def test_shipped_monitoring_rule_takes_problem_and_recovery():
    rules = load_rules(SHIPPED)
    for subject in ("PROBLEM: disk full on srv1", "RECOVERY: disk full on srv1"):
        result = run(rules, mail("monitor@altec.example", subject=subject))
        assert result.hits == ["monitoring alerts"]
        assert (result.origin, result.priority, result.auto_reply) == ("monitor", "P2", False)
        assert result.dedupe == "subject"
        assert dedupe_key(subject, result.resolve_on) == "disk full on srv1"
    recovery = run(rules, mail("monitor@altec.example", subject="OK - disk full on srv1"))
    assert is_recovery("OK - disk full on srv1", recovery.resolve_on)


def test_shipped_urgent_address_and_header_rules():
    rules = load_rules(SHIPPED)
    assert run(rules, mail(to="Urgent@Example.com")).priority == "P1"
    assert run(rules, mail(), recipients=["urgent@example.com"]).priority == "P1"
    flagged = mail("a@b.example", "hd@example.com", "x", "y", "X-Priority: 1 (Highest)")
    assert run(rules, flagged).priority == "P2"
    assert run(rules, mail()).priority is None


def test_missing_file_has_no_rules(tmp_path):
    assert load_rules(tmp_path / "absent.toml") == []


def test_empty_file_has_no_rules(tmp_path):
    assert rules_of(tmp_path, "# nothing yet\n") == []


def test_toml_syntax_error_names_the_file(tmp_path):
    [problem] = problems_of(tmp_path, "[[rule]\nname = 1\n")
    assert problem.startswith(f"{tmp_path / 'triage.toml'}: ")


def test_header_as_table_and_as_quoted_key(tmp_path):
    text = ('[[rule]]\nname = "a"\nwhen = { "header.X-Prio" = "^1" }\n'
            '[[rule]]\nname = "b"\n[rule.when.header]\nX-Prio = "^1"\n')
    a, b = rules_of(tmp_path, text)
    assert a.when.header.keys() == b.when.header.keys() == {"X-Prio"}


# --- when ---------------------------------------------------------------------------


def test_empty_when_matches_everything(tmp_path):
    rules = rules_of(tmp_path, '[[rule]]\nname = "all"\nset = { queue = "general" }\n')
    assert run(rules, mail()).queue == "general"
    assert run(rules, ParsedMail()).hits == ["all"]


def test_from_plain_address_is_whole_and_case_insensitive(tmp_path):
    when = 'from = "Monitor@Altec.example"'
    assert hit(tmp_path, when, mail("monitor@altec.example"))
    assert not hit(tmp_path, when, mail("xmonitor@altec.example"))
    assert not hit(tmp_path, when, mail("monitor@altec.example.evil"))


def test_from_address_with_plus_is_plain(tmp_path):
    when = 'from = "alerts+nagios@altec.example"'
    assert hit(tmp_path, when, mail("alerts+nagios@altec.example"))
    assert not hit(tmp_path, when, mail("alertsnagios@altec.example"))


def test_from_regex(tmp_path):
    when = r'from = "@altec\\.example$"'
    assert hit(tmp_path, when, mail("anyone@altec.example"))
    assert not hit(tmp_path, when, mail("anyone@altecxexample"))


def test_to_matches_to_cc_and_envelope(tmp_path):
    when = 'to = "urgent@example.com"'
    assert hit(tmp_path, when, mail(to="URGENT@example.com"))
    cc = mail("a@b.example", "hd@example.com", "s", "b", "Cc: Urgent <urgent@example.com>")
    assert hit(tmp_path, when, cc)
    assert hit(tmp_path, when, mail(), recipients=["Urgent@Example.com"])
    assert not hit(tmp_path, when, mail(), recipients=["hd@example.com"])


def test_to_regex(tmp_path):
    assert hit(tmp_path, 'to = "^urgent(-it)?@"', mail(to="urgent-it@example.com"))
    assert not hit(tmp_path, 'to = "^urgent(-it)?@"', mail(to="noturgent@example.com"))


def test_company_exact_case_insensitive(tmp_path):
    when = 'company = "acme srl"'
    assert hit(tmp_path, when, mail(), company="Acme Srl")
    assert not hit(tmp_path, when, mail(), company="Acme Srl Europe")
    assert not hit(tmp_path, when, mail(), company=None)


def test_subject_regex_is_searched_and_case_sensitive(tmp_path):
    assert hit(tmp_path, 'subject = "VPN"', mail(subject="Re: VPN down"))
    assert not hit(tmp_path, 'subject = "VPN"', mail(subject="vpn down"))
    assert hit(tmp_path, 'subject = "(?i)vpn"', mail(subject="VPN down"))
    assert not hit(tmp_path, 'subject = "^VPN"', mail(subject="Re: VPN down"))


def test_body_regex(tmp_path):
    when = 'body = "(?i)\\\\binvoice\\\\b"'
    assert hit(tmp_path, when, mail(body="Where is the Invoice?"))
    assert not hit(tmp_path, when, mail(body="invoices are late"))


def test_header_regex_any_value_missing_header_never(tmp_path):
    when = '"header.X-Priority" = "^1"'
    assert hit(tmp_path, when, mail("a@b.example", "c@d.example", "s", "b", "x-priority: 1"))
    repeated = mail("a@b.example", "c@d.example", "s", "b", "X-Priority: 3", "X-Priority: 1")
    assert hit(tmp_path, when, repeated)
    assert not hit(tmp_path, when, mail("a@b.example", "c@d.example", "s", "b", "X-Priority: 3"))
    assert not hit(tmp_path, when, mail())


def test_all_when_keys_must_match(tmp_path):
    when = 'from = "monitor@altec.example", subject = "^PROBLEM"'
    assert hit(tmp_path, when, mail("monitor@altec.example", subject="PROBLEM: x"))
    assert not hit(tmp_path, when, mail("monitor@altec.example", subject="hello"))
    assert not hit(tmp_path, when, mail("other@altec.example", subject="PROBLEM: x"))


def test_company_and_body_together(tmp_path):
    when = 'company = "Acme Srl", body = "fattura"'
    assert hit(tmp_path, when, mail(body="la fattura"), company="Acme Srl")
    assert not hit(tmp_path, when, mail(body="la fattura"), company="Other")
    assert not hit(tmp_path, when, mail(body="stampante"), company="Acme Srl")


# --- set: first match wins per key -------------------------------------------------

LAYERED = """
[[rule]]
name = "urgent"
when = { to = "urgent@example.com" }
set = { priority = "P1" }

[[rule]]
name = "never"
when = { subject = "^NOPE$" }
set = { priority = "P4", queue = "nope" }

[[rule]]
name = "acme"
when = { company = "Acme Srl" }
set = { priority = "P3", queue = "acme", auto_reply = false }

[[rule]]
name = "default"
set = { queue = "general", category = "user", auto_reply = true }
"""


def test_first_match_wins_per_key_and_later_rules_fill_the_rest(tmp_path):
    rules = rules_of(tmp_path, LAYERED)
    result = run(rules, mail(to="urgent@example.com"), company="Acme Srl")
    assert result.hits == ["urgent", "acme", "default"]
    assert result.priority == "P1"          # from "urgent", not overridden by "acme"
    assert result.queue == "acme"           # "acme" before "default"
    assert result.auto_reply is False       # an explicit false is not overridden by true
    assert result.category == "user"        # only "default" sets it


def test_nothing_matches_gives_defaults(tmp_path):
    rules = rules_of(tmp_path, LAYERED.split('[[rule]]\nname = "default"')[0])
    result = run(rules, mail())
    assert result == Triage()
    assert result.auto_reply is True and result.hits == []


def test_dedupe_comes_from_the_first_rule_that_has_it(tmp_path):
    text = """
[[rule]]
name = "plain"
set = { priority = "P2" }
[[rule]]
name = "first dedupe"
dedupe = "subject"
resolve_on = "^OK"
[[rule]]
name = "second dedupe"
dedupe = "subject"
"""
    result = run(rules_of(tmp_path, text), mail())
    assert result.hits == ["plain", "first dedupe", "second dedupe"]
    assert result.dedupe == "subject"
    assert result.resolve_on.pattern == "^OK"


def test_assignee_is_lower_cased(tmp_path):
    rules = rules_of(tmp_path, '[[rule]]\nname = "r"\nset = { assignee = " Alice@Example.COM " }\n')
    assert run(rules, mail()).assignee == "alice@example.com"


# --- validation ---------------------------------------------------------------------


def prefix(tmp_path: Path, index: int, name: str) -> str:
    return f"{tmp_path / 'triage.toml'}:rule[{index}] {name!r}."


@pytest.mark.parametrize(
    ("body", "key", "reason"),
    [
        ('when = { sender = "x@y.z" }', "when.sender", "unknown key"),
        ('set = { colour = "red" }', "set.colour", "unknown key"),
        ('colour = "red"', "colour", "unknown key"),
        ('when = { subject = "(PROBLEM" }', "when.subject", "bad regex"),
        ('when = { body = "[a-" }', "when.body", "bad regex"),
        ('when = { from = "(.*@x" }', "when.from", "bad regex"),
        ('when = { to = "*@x" }', "when.to", "bad regex"),
        ('when = { "header.X-Priority" = "(" }', "when.header.X-Priority", "bad regex"),
        ('when = { "header.Bad Name" = "x" }', "when.header.Bad Name", "not a header name"),
        ('when = { subject = 5 }', "when.subject", "must be a string"),
        ('when = { company = 5 }', "when.company", "valid string"),
        ('set = { origin = "fax" }', "set.origin", "'mail', 'monitor', 'phone' or 'web'"),
        ('set = { category = "hardware" }', "set.category", "'user', 'system'"),
        ("set = { priority = 1 }", "set.priority", "valid string"),
        ('set = { priority = "" }', "set.priority", "at least 1 character"),
        ('set = { auto_reply = "false" }', "set.auto_reply", "valid boolean"),
        ("set = { auto_reply = 0 }", "set.auto_reply", "valid boolean"),
        ('set = { assignee = "alice" }', "set.assignee", "not a mail address"),
        ("set = { queue = [1] }", "set.queue", "valid string"),
        ('dedupe = "body"', "dedupe", "'subject'"),
        ('when = "x"', "when", "must be a table"),
        ('set = "P1"', "set", "must be a table"),
        ('dedupe = "subject"\nresolve_on = "(OK"', "resolve_on", "bad regex"),
        ('resolve_on = "^OK"', "resolve_on", "needs dedupe"),
    ],
)
def test_each_problem_names_file_rule_and_key(tmp_path, body, key, reason):
    text = '[[rule]]\nname = "fine"\n\n[[rule]]\nname = "broken"\n' + body + "\n"
    [problem] = problems_of(tmp_path, text)
    assert problem.startswith(prefix(tmp_path, 1, "broken") + key + ": "), problem
    assert reason in problem


def test_unknown_key_lists_the_expected_ones(tmp_path):
    [problem] = problems_of(tmp_path, '[[rule]]\nname = "r"\nwhen = { form = "a@b.c" }\n')
    assert "expected one of: from, to, company, subject, body, header.<Name>" in problem


def test_every_problem_is_reported(tmp_path):
    text = """
[[rule]]
name = "one"
when = { subject = "(", nope = "x" }
set = { origin = "fax" }

[[rule]]
name = "two"
set = { auto_reply = "yes" }
"""
    problems = problems_of(tmp_path, text)
    assert sorted(problems) == sorted([
        prefix(tmp_path, 0, "one") + "when.subject: bad regex '(': missing ), unterminated "
        "subpattern at position 0",
        prefix(tmp_path, 0, "one") + "when.nope: unknown key (expected one of: from, to, "
        "company, subject, body, header.<Name>)",
        prefix(tmp_path, 0, "one") + "set.origin: Input should be 'mail', 'monitor', 'phone' "
        "or 'web'",
        prefix(tmp_path, 1, "two") + "set.auto_reply: Input should be a valid boolean",
    ])


def test_missing_name(tmp_path):
    [problem] = problems_of(tmp_path, '[[rule]]\nset = { priority = "P1" }\n')
    assert problem == f"{tmp_path / 'triage.toml'}:rule[0] '?'.name: Field required"


def test_duplicate_names(tmp_path):
    [problem] = problems_of(tmp_path, '[[rule]]\nname = "a"\n[[rule]]\nname = "a"\n')
    assert problem == prefix(tmp_path, 1, "a") + "name: same name as rule[0]"


def test_unknown_top_level_key(tmp_path):
    [problem] = problems_of(tmp_path, '[[rules]]\nname = "a"\n')
    assert problem.startswith(f"{tmp_path / 'triage.toml'}:rules: unknown key")


# --- dedupe keys --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "key"),
    [
        ("PROBLEM: disk full on srv1", "disk full on srv1"),
        ("RECOVERY: disk full on srv1", "disk full on srv1"),
        ("Re: PROBLEM: disk full on srv1", "disk full on srv1"),
        ("RE: Fwd: PROBLEM: disk full on srv1", "disk full on srv1"),
        ("AW: Re[2]: CRITICAL: disk full on srv1", "disk full on srv1"),
        ("CRITICAL - Disk  Full   on SRV1", "disk full on srv1"),
        ("warning: disk full on srv1", "disk full on srv1"),
        ("OK: disk full on srv1", "disk full on srv1"),
        ("OK - disk full on srv1", "disk full on srv1"),
        ("RESOLVED: disk full on srv1", "disk full on srv1"),
        ("DOWN: host srv1", "host srv1"),
        ("UP: host srv1", "host srv1"),
        ("  PROBLEM :disk full on srv1  ", "disk full on srv1"),
        ("Problem with the printer", "problem with the printer"),   # no separator: kept
        ("Uptime report", "uptime report"),
        ("", ""),
    ],
)
def test_dedupe_key(subject, key):
    assert dedupe_key(subject, RESOLVE) == key


def test_dedupe_key_without_separator_only_strips_what_resolve_on_matches():
    # The state words need ":" or "-"; resolve_on is the rule's own word and is
    # stripped wherever it matches, so the key agrees with is_recovery.
    assert dedupe_key("OK then, the printer", None) == "ok then, the printer"
    assert is_recovery("OK then, the printer", RESOLVE)
    assert dedupe_key("OK then, the printer", RESOLVE) == "then, the printer"


def test_dedupe_key_strips_a_custom_recovery_word():
    assert dedupe_key("FIXED disk full on srv1", r"^FIXED\b") == "disk full on srv1"
    assert dedupe_key("FIXED disk full on srv1", None) == "fixed disk full on srv1"


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("RECOVERY: disk full on srv1", True),
        ("ok - disk full on srv1", True),
        ("  OK: disk full", True),
        ("PROBLEM: disk full on srv1", False),
        ("Re: RECOVERY: disk full on srv1", False),   # a person's reply, not the monitor
        ("OKAY then", False),
    ],
)
def test_is_recovery(subject, expected):
    assert is_recovery(subject, RESOLVE) is expected


def test_is_recovery_needs_a_pattern():
    assert is_recovery("RECOVERY: disk full", None) is False
    assert is_recovery("RECOVERY: disk full", r"^RECOVERY") is True
