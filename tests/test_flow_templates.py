"""The templates of the request flows, rendered in every shipped language with the
variables the code gives them: each says its own thing in its own language, and
customer text stays data."""

from __future__ import annotations

import pytest

from mailgate.checks import TEMPLATE_NAMES
from mailgate.outbound.compose import Templates
from mailgate.outbound.samples import SUBJECT, full_context
from tests.helpers import PROJECT

NEW = ("approval_request", "approval_pending", "approval_granted", "approval_rejected",
       "quote_request", "quote_notice", "project_notice", "complaint_copy")
LANGUAGES = ("en", "it", "hu", "ru")
TEMPLATES = Templates(PROJECT / "templates")
INJECTED = "{{ 7*7 }} {% if x %}"

# A phrase of each template in each language, and the values it must show.
SAYS = {
    "approval_request": {"en": "written approval", "it": "approvazione scritta",
                         "hu": "írásos", "ru": "письменного согласия"},
    "approval_pending": {"en": "written approval", "it": "approvazione scritta",
                         "hu": "írásos", "ru": "письменное согласие"},
    "approval_granted": {"en": "approved", "it": "approvata", "hu": "jóváhagyta",
                         "ru": "согласован"},
    "approval_rejected": {"en": "rejected", "it": "respinta", "hu": "elutasította",
                          "ru": "отклонён"},
    "quote_request": {"en": "quote", "it": "preventivo", "hu": "árajánlat",
                      "ru": "коммерческого предложения"},
    "quote_notice": {"en": "salesperson", "it": "commerciale", "hu": "értékesítési",
                     "ru": "отдел продаж"},
    "project_notice": {"en": "project ticket", "it": "ticket di progetto",
                       "hu": "projektjegy", "ru": "проектной заявки"},
    "complaint_copy": {"en": "complaint", "it": "reclamo", "hu": "reklamáció",
                       "ru": "жалоб"},
}
SHOWS = {
    "approval_request": ["#approve", "#reject", "mario.rossi@acme.it", INJECTED],
    "approval_pending": ["it-manager@acme.it"],
    "approval_granted": ["it-manager@acme.it"],
    "approval_rejected": ["it-manager@acme.it", "Non previsto nel budget"],
    "quote_request": [INJECTED, "#quote", "2025-03-04 09:30", "mario.rossi@acme.it"],
    "quote_notice": [],
    "project_notice": ["10050", "[#10050]", "Rinnovo stampanti"],
    "complaint_copy": [INJECTED],
}


def context(name: str) -> dict:
    """The sample context, with customer text that looks like template code."""
    ctx = full_context(name)
    if "request_text" in ctx:
        ctx["request_text"] = f"{ctx['request_text']} {INJECTED}"
    if "history" in ctx:
        ctx["history"] = [{**ctx["history"][0], "text": INJECTED}, *ctx["history"][1:]]
    return ctx


def test_check_config_knows_the_new_templates():
    assert set(NEW) <= set(TEMPLATE_NAMES)


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("name", NEW)
def test_every_new_template_renders_in_every_language(name, lang):
    assert TEMPLATES.exists(lang, name), f"templates/{lang}/{name} missing"
    rendered = TEMPLATES.render(name, lang, context(name))
    assert rendered.subject.startswith("[#10042] ") and SUBJECT in rendered.subject
    assert SAYS[name][lang] in rendered.text.lower() + rendered.subject.lower()
    for value in SHOWS[name]:
        assert value in rendered.text, f"{lang}/{name} does not show {value!r}"
    assert "10042" in rendered.text
    if lang != "en":
        assert rendered.text != TEMPLATES.render(name, "en", context(name)).text


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_approval_request_says_when_it_did_not_come_in_writing(lang):
    spoken = TEMPLATES.render("approval_request", lang, context("approval_request")).text
    written = TEMPLATES.render("approval_request", lang,
                               {**context("approval_request"), "in_writing": True}).text
    assert len(spoken.splitlines()) == len(written.splitlines()) + 3


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_stats_report_shows_complaints(lang):
    text = TEMPLATES.render("stats_report", lang, full_context("stats_report")).text
    complaints = {"en": "Complaints: 1", "it": "Reclami: 1", "hu": "Reklamációk: 1",
                  "ru": "Жалоб: 1"}
    assert complaints[lang] in text
