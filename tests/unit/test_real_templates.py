"""The project's own templates render in every language with the pipeline's context."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailgate.checks import TEMPLATE_NAMES
from mailgate.outbound.compose import Templates
from mailgate.outbound.samples import SUBJECT, TICKET, context, full_context

ROOT = Path(__file__).resolve().parents[2] / "templates"
LANGUAGES = sorted(p.name for p in ROOT.iterdir() if p.is_dir())
def test_all_languages_are_present():
    assert set(LANGUAGES) >= {"en", "it", "hu", "ru"}


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("name", TEMPLATE_NAMES)
def test_template_renders(name, lang):
    templates = Templates(ROOT)
    assert templates.exists(lang, name), f"{lang}/{name} missing"
    rendered = templates.render(name, lang, full_context(name))
    assert rendered.subject and "\n" not in rendered.subject
    if name not in ("ticket_list", "stats_report"):
        assert SUBJECT in rendered.subject
    assert rendered.text.strip()
    if name in {"sales_forward", "staff_new_ticket", "staff_customer_reply"}:
        assert "{{ not a template }}" in rendered.text


@pytest.mark.parametrize("lang", LANGUAGES)
def test_auto_reply_names_ticket_priority_and_subject(lang):
    rendered = Templates(ROOT).render("auto_reply", lang, context(True))
    assert rendered.subject.startswith("[#10042] ")
    for expected in ("10042", "P1+", SUBJECT, "[#10042]", "2025-03-04"):
        assert expected in rendered.text
    assert rendered.html is not None and "10042" in rendered.html


@pytest.mark.parametrize("lang", LANGUAGES)
def test_auto_reply_without_response_due(lang):
    ctx = context(True)
    ctx["ticket"] = {**TICKET, "response_due": None}
    rendered = Templates(ROOT).render("auto_reply", lang, ctx)
    assert "10042" in rendered.text and "2025-03-04" not in rendered.text
