"""policy.load_policy and its lookups: companies by domain, staff, plan labels."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailgate.config import ConfigError
from mailgate.policy import PlanRule, load_policy

SLA = """
[plan.standard]
default_priority = "P3"
[plan.standard.priority.P1plus]
label = "P1+"
[plan.standard.priority.P2]
label = "P2"
"""

STAFF = """
[[staff]]
address = "Alice@Example.com"
name = "Alice Rossi"
"""


def rules(tmp_path: Path, companies: str, sla: str = SLA, staff: str = STAFF) -> Path:
    (tmp_path / "companies.toml").write_text(companies, encoding="utf-8")
    (tmp_path / "sla.toml").write_text(sla, encoding="utf-8")
    (tmp_path / "staff.toml").write_text(staff, encoding="utf-8")
    return tmp_path


def company(name: str, *domains: str, plan: str = "standard") -> str:
    listed = ", ".join(f'"{d}"' for d in domains)
    return f'[[company]]\nname = "{name}"\ndomains = [{listed}]\nplan = "{plan}"\n'


def test_company_for_domain_exact_and_subdomain(tmp_path):
    policy = load_policy(rules(tmp_path, company("Acme", "ACME.it")))
    assert policy.company_for_domain("acme.it").name == "Acme"
    assert policy.company_for_domain("mail.acme.it").name == "Acme"
    assert policy.company_for_domain("Mail.Acme.IT").name == "Acme"


def test_company_for_domain_needs_a_dot_boundary(tmp_path):
    policy = load_policy(rules(tmp_path, company("Acme", "acme.it")))
    assert policy.company_for_domain("notacme.it") is None
    assert policy.company_for_domain("acme.it.evil.com") is None


def test_longest_domain_wins(tmp_path):
    text = company("Acme", "acme.it") + company("Acme Europe", "eu.acme.it")
    policy = load_policy(rules(tmp_path, text))
    assert policy.company_for_domain("eu.acme.it").name == "Acme Europe"
    assert policy.company_for_domain("mx.eu.acme.it").name == "Acme Europe"
    assert policy.company_for_domain("us.acme.it").name == "Acme"


def test_duplicate_domain_is_an_error_naming_file_and_key(tmp_path):
    text = company("Acme", "acme.it") + company("Other", "acme.it")
    with pytest.raises(ConfigError) as err:
        load_policy(rules(tmp_path, text))
    assert f"{tmp_path / 'companies.toml'}:company[1].domains" in str(err.value)
    assert "acme.it already belongs to Acme" in str(err.value)


def test_plan_missing_from_sla_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match=r"company\[0\]\.plan: no plan 'gold' in sla.toml"):
        load_policy(rules(tmp_path, company("Acme", "acme.it", plan="gold")))


def test_plan_labels_and_default_priority(tmp_path):
    policy = load_policy(rules(tmp_path, company("Acme", "acme.it")))
    plan = policy.plan("standard")
    assert plan.default_priority == "P3"
    assert plan.label("P1plus") == "P1+"
    assert plan.label("P4") == "P4"
    assert PlanRule().label("P1plus") == "P1plus"


def test_staff_member_is_case_insensitive(tmp_path):
    policy = load_policy(rules(tmp_path, company("Acme", "acme.it")))
    assert policy.staff_member("ALICE@example.com").name == "Alice Rossi"
    assert policy.staff_member("bob@example.com") is None
