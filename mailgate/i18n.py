"""Words the code itself needs in the customers' languages (templates hold the rest)."""

from __future__ import annotations

STATUS_LABELS = {
    "en": {"new": "new", "open": "in progress", "waiting": "waiting", "resolved": "resolved",
           "closed": "closed", "merged": "merged"},
    "it": {"new": "nuovo", "open": "in lavorazione", "waiting": "in attesa",
           "resolved": "risolto", "closed": "chiuso", "merged": "unito"},
    "hu": {"new": "új", "open": "folyamatban", "waiting": "várakozik", "resolved": "megoldva",
           "closed": "lezárva", "merged": "összevonva"},
    "ru": {"new": "новая", "open": "в работе", "waiting": "ожидает", "resolved": "решена",
           "closed": "закрыта", "merged": "объединена"},
}

# A reply to a resolved ticket whose first line starts with one of these confirms it
# (SPEC §4, tickets.confirm_words adds to them).  Starting, not containing: "non
# potete chiudere" must not close anything.
CONFIRM_WORDS = {
    "en": ["ok, you can close", "ok you can close", "you can close", "please close", "solved"],
    "it": ["ok chiudete", "ok, chiudete", "potete chiudere", "chiudete pure", "risolto"],
    "hu": ["lezárható", "lezárhatjátok", "le lehet zárni", "megoldódott", "rendben, lezárható"],
    "ru": ["закрывайте", "можно закрывать", "можно закрыть", "вопрос решён", "решено"],
}


def status_label(status: str, lang: str) -> str:
    """The status as the customer reads it."""
    return STATUS_LABELS.get(lang, STATUS_LABELS["en"]).get(status, status)


def confirm_words(lang: str, configured: list[str]) -> list[str]:
    """Phrases that confirm a resolution in ``lang``: configured ones first."""
    return [*configured, *CONFIRM_WORDS.get(lang, []), *CONFIRM_WORDS["en"]]


def confirms(text: str, words: list[str]) -> bool:
    """True when the first non-blank line of ``text`` starts with one of ``words``."""
    first = next((line.strip().lower() for line in text.splitlines() if line.strip()), "")
    return any(first.startswith(w.lower()) for w in words if w.strip())
