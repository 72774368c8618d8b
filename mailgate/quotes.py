"""Quoted replies and signatures: the part of a mail that its sender wrote.

A reply carries the history it answers, in one of two shapes:

- an *attribution* line ("On … wrote:", "Il giorno … ha scritto:", "… írta:",
  "… написал(а):", "Am … schrieb …:") followed by ``>``-quoted lines;
- a *header block* ("From:/Sent:/To:/Subject:" and its Italian, Hungarian, Russian and
  German forms, "-----Original Message-----" and its localised forms) followed by the
  old mail, unquoted;

and it may end with a signature after the delimiter line ``-- `` (RFC 3676 §4.3:
dash, dash, space, alone on a line; ``--`` alone is taken too, since some clients and
line-stripping relays drop the space).

``new_part`` keeps what the sender wrote:

- the text before the history (top-posting), with any ``#`` command lines at its top;
- the text after and between ``>``-quoted blocks (bottom-posting, interleaved answers):
  the sender's words are kept, the quoted lines dropped;
- nothing after a header block, a separator, or an attribution line that is not
  followed by ``>`` lines: all of that is history;
- nothing from a ``-- `` line to the next history mark (or the end).

A forwarded mail ("---------- Forwarded message ---------", "Begin forwarded message:"
and their localised forms) is kept from the forward marker on: what was forwarded is
the point of the mail.  When nothing would be left (the mail is all quote, or all
signature) the whole text is returned, stripped: a mail is never reduced to nothing,
and "nothing recognised" and "nothing new" both give the whole text.

The attribution and header-block patterns for the languages it knows (en, de, it, …)
come from mail-parser-reply's ``MAIL_LANGUAGES`` table; Hungarian and Russian, the
localised separators, forward markers and signature delimiter are ours.  The cutting is
ours too: mail-parser-reply's ``EmailReplyParser`` strips every line, keeps signatures
in ``latest_reply``, returns a bottom-posted answer together with the quote above it,
and its ``body`` drops everything after a "- item" list line or a line starting
"Thanks,".

``html_new_part`` removes the quote elements of Gmail, Thunderbird, Apple Mail, Yahoo,
Yandex, mail.ru and Outlook (web) HTML, converts the rest with inscriptis and applies
the plain-text rules to it, which catch the "From:/Sent:" blocks that Outlook desktop
and Hotmail put after an ``<hr>`` or a bordered ``<div>``, and attribution lines left
outside the removed elements (Yandex, mail.ru).
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable

import lxml.html
from inscriptis import get_text
from mailparser_reply.constants import GENERIC_MAIL_SEPARATOR, MAIL_LANGUAGES

DEFAULT_LANGUAGES = ("en", "it", "hu", "ru", "de")

#: Lines longer than this are never a header; they are not scanned (bounds regex time).
MAX_HEADER_LINE = 400
#: An attribution, even wrapped on two lines, is shorter than this.
MAX_ATTRIBUTION = 300
#: How many lines a header block ("From:", "Sent:", …) is looked for in.
BLOCK_WINDOW = 8

_FLAGS = re.IGNORECASE | re.MULTILINE

#: A time of day, present in every client's attribution line we add.
_TIME = re.compile(r"(?<!\d)\d{1,2}:\d{2}(?!\d)")

#: The verb of mail-parser-reply's attribution pattern, where we know it.
_VERBS = {"en": "wrote", "de": "schrieb", "it": "scritto"}

#: Attribution endings for the languages mail-parser-reply lacks; the line (or the two
#: lines of a wrapped one) must also hold a time.  "ru" includes the Yandex and mail.ru
#: form, which has no verb: "26.06.2014, 14:41, "Name" <a@b.ru>:".
_ATTRIBUTION_ENDS = {
    "hu": [r"(?<!\w)írta(?:\s*\([^()]*\))?\s*:$"],
    "ru": [r"(?<!\w)(?:написал(?:\(а\)|а)?|пишет)\s*:$", r"<[^<>\s@]+@[^<>\s]+>\s*:$"],
}

#: Header-block labels for the languages mail-parser-reply lacks, in its own shape.
_BLOCK_LABELS = {
    "hu": ("Feladó", "Küldve", "Elküldve", "Címzett", "Tárgy", "Dátum", "Másolat",
           "Másolatot kap"),
    "ru": ("От", "Отправлено", "Кому", "Тема", "Дата", "Копия"),
}

#: A header block must name a sender: "Date:/Subject:" alone is too common in prose.
_FROM_LABEL = re.compile(r"^[>* ]*(?:From|Da|Von|Feladó|От)[ *]*:", _FLAGS)

#: A line that may open a header block: a short label and a colon.
_LABEL_LINE = re.compile(r"^[* ]*[^\W\d_][\w ]{0,30}[ *]*:")

_SEPARATOR = re.compile(
    r"^-{2,}\s*(?:original message|messaggio originale|ursprüngliche nachricht|"
    r"eredeti üzenet|исходное сообщение|оригинальное сообщение)\s*-{2,}$",
    re.IGNORECASE,
)
_LIBRARY_SEPARATOR = re.compile(GENERIC_MAIL_SEPARATOR, _FLAGS)

#: Outlook's "________________________________" above a header block belongs to it.
_RULE_LINE = re.compile(r"^[_\-=]{8,}$")

_FORWARD = re.compile(
    r"^(?:-{2,}\s*(?:forwarded message|messaggio inoltrato|weitergeleitete nachricht|"
    r"továbbított (?:levél|üzenet)|пересылаемое сообщение|пересланное сообщение)\s*-{2,}"
    r"|(?:begin forwarded message|inizio messaggio inoltrato|"
    r"anfang der weitergeleiteten nachricht)\s*:)$",
    re.IGNORECASE,
)

#: RFC 3676 §4.3 signature delimiter (and its space-stripped form).
_SIGNATURE = re.compile(r"^-- ?$")

#: Yahoo's "--- On Wed, 4/4/12, x <x@y> wrote:" is an "On … wrote:" line.
_DASH_PREFIX = re.compile(r"^-{2,}\s*")

ATTRIBUTION, BLOCK, FORWARD = "attribution", "block", "forward"


def new_part(text: str, languages: tuple[str, ...] = DEFAULT_LANGUAGES) -> str:
    """The part of ``text`` its sender wrote: quoted history and signature removed.

    The whole text, stripped, when nothing is recognised or nothing would be left.
    Never raises.
    """
    try:
        return _new_part(text, languages)
    except Exception:  # noqa: BLE001 - a mail we cannot cut is kept whole
        return text.strip() if isinstance(text, str) else ""


def html_new_part(html: str) -> str | None:
    """The new part of an HTML reply as text; ``None`` when the HTML cannot be read."""
    try:
        return _html_new_part(html)
    except Exception:  # noqa: BLE001 - pathological HTML: let the caller use the text part
        return None


# --- plain text ---------------------------------------------------------------------------


def _new_part(text: str, languages: Iterable[str]) -> str:
    return _kept(text, languages).strip() or text.strip()


def _kept(text: str, languages: Iterable[str]) -> str:
    """The sender's lines, runs separated by a blank line, indentation untouched."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    probe = [line.strip() for line in lines]
    marks = _marks(probe, _Patterns.of(tuple(languages)))
    return "\n\n".join(segment for segment in _segments(lines, probe, marks) if segment)


def _segments(lines: list[str], probe: list[str], marks: dict[int, tuple[str, int]]):
    """The runs of the sender's own lines, each trimmed of blank lines at its ends."""
    current: list[str] = []
    i = 0
    while i < len(lines):
        kind, end = marks.get(i, ("", i + 1))
        if kind == FORWARD:
            current.extend(lines[i:])
            break
        if kind == BLOCK or (kind == ATTRIBUTION and not _quote_follows(probe, end)):
            break
        if kind == ATTRIBUTION or _quoted(probe[i]) or _SIGNATURE.match(lines[i]):
            yield _trimmed(current)
            current = []
            i = _signature_end(probe, marks, i) if _SIGNATURE.match(lines[i]) else end
            continue
        current.append(lines[i])
        i += 1
    yield _trimmed(current)


def _trimmed(lines: list[str]) -> str:
    """``lines`` joined, without the blank lines at either end."""
    filled = [i for i, line in enumerate(lines) if line.strip()]
    return "\n".join(lines[filled[0]:filled[-1] + 1]) if filled else ""


def _quoted(line: str) -> bool:
    return line.startswith(">")


def _quote_follows(probe: list[str], start: int) -> bool:
    """Whether the first non-blank line from ``start`` on is ``>``-quoted."""
    following = next((line for line in probe[start:] if line), "")
    return _quoted(following)


def _signature_end(probe: list[str], marks: dict[int, tuple[str, int]], start: int) -> int:
    """A signature runs from its delimiter to the next quote or history mark."""
    i = start + 1
    while i < len(probe) and not _quoted(probe[i]) and i not in marks:
        i += 1
    return i


# --- history marks ------------------------------------------------------------------------


class _Patterns:
    """The compiled patterns for one tuple of languages (cached: built once each)."""

    _cache: dict[tuple[str, ...], _Patterns] = {}

    def __init__(self, languages: tuple[str, ...]):
        known = [lang for lang in languages if lang in MAIL_LANGUAGES]
        self.attributions = [
            (_VERBS.get(lang, ""), re.compile(MAIL_LANGUAGES[lang]["wrote_header"], _FLAGS))
            for lang in known if "wrote_header" in MAIL_LANGUAGES[lang]
        ]
        self.blocks = [re.compile(MAIL_LANGUAGES[lang]["from_header"], _FLAGS)
                       for lang in known if "from_header" in MAIL_LANGUAGES[lang]]
        self.blocks += [_block_regex(_BLOCK_LABELS[lang]) for lang in languages
                        if lang in _BLOCK_LABELS]
        self.attribution_ends = [re.compile(end, re.IGNORECASE) for lang in languages
                                 for end in _ATTRIBUTION_ENDS.get(lang, ())]

    @classmethod
    def of(cls, languages: tuple[str, ...]) -> _Patterns:
        if languages not in cls._cache:
            cls._cache[languages] = cls(languages)
        return cls._cache[languages]


def _block_regex(labels: tuple[str, ...]) -> re.Pattern:
    """A header-block pattern shaped like mail-parser-reply's ``from_header``:
    two or more consecutive "Label: value" lines."""
    names = "|".join(re.escape(label) for label in labels)
    return re.compile(rf"((?:(?:^|\n)[* ]*(?:{names})[ *]*:[ *]*(?:\s{{,2}}).*){{2,}})", _FLAGS)


def _marks(probe: list[str], patterns: _Patterns) -> dict[int, tuple[str, int]]:
    """Where history starts: line index → (kind, index of the line after the mark)."""
    marks: dict[int, tuple[str, int]] = {}
    attributions = _Attributions(patterns)
    for i, line in enumerate(probe):
        if not line or len(line) > MAX_HEADER_LINE or _quoted(line):
            continue
        if _FORWARD.match(line):
            marks[i] = (FORWARD, i + 1)
        elif _SEPARATOR.match(line) or _LIBRARY_SEPARATOR.match(line):
            marks[_block_start(probe, i)] = (BLOCK, i + 1)
        elif line.endswith(":") and (start := attributions.start(probe, i)) is not None:
            marks[start] = (ATTRIBUTION, i + 1)
        elif _LABEL_LINE.match(line) and _is_block(probe, i, patterns):
            marks[_block_start(probe, i)] = (BLOCK, i + 1)
    return marks


class _Attributions:
    """Attribution lines of one mail.  mail-parser-reply's patterns backtrack a lot on
    long lines, so each runs only on lines holding its verb, at most a budget of times
    per mail (a real mail has a handful of candidates; a hostile one, thousands)."""

    budget = 200

    def __init__(self, patterns: _Patterns):
        self.patterns = patterns
        self.searches = 0

    def start(self, probe: list[str], i: int) -> int | None:
        """The first line of an attribution ending on line ``i`` (one line, or two when
        a client wrapped it), or ``None``."""
        line = _DASH_PREFIX.sub("", probe[i])
        if self.matches(line):
            return i
        previous = probe[i - 1] if i > 0 else ""
        if not previous or _quoted(previous) or len(previous) > MAX_HEADER_LINE:
            return None
        return i - 1 if self.matches(f"{_DASH_PREFIX.sub('', previous)}\n{line}") else None

    def matches(self, text: str) -> bool:
        """Whether ``text`` is, from start to end, an attribution."""
        if len(text) > MAX_ATTRIBUTION:
            return False
        folded = text.casefold()
        for verb, pattern in self.patterns.attributions:
            if verb not in folded or self.searches >= self.budget:
                continue
            self.searches += 1
            found = pattern.search(text)
            if found and found.start() == 0 and found.end() == len(text):
                return True
        return bool(_TIME.search(text)) and any(
            end.search(text) for end in self.patterns.attribution_ends)


def _is_block(probe: list[str], i: int, patterns: _Patterns) -> bool:
    window = "\n".join(line[:MAX_HEADER_LINE] for line in probe[i:i + BLOCK_WINDOW])
    for pattern in patterns.blocks:
        found = pattern.match(window)
        if found and _FROM_LABEL.search(found.group()):
            return True
    return False


def _block_start(probe: list[str], i: int) -> int:
    """A rule line just above a header block (blank lines between) starts it."""
    j = i - 1
    while j >= 0 and not probe[j]:
        j -= 1
    return j if j >= 0 and _RULE_LINE.match(probe[j]) else i


# --- HTML ---------------------------------------------------------------------------------

#: Elements that hold only quoted history: removed whole.
_QUOTE_XPATH = (
    "//blockquote"
    " | //*[contains(concat(' ', normalize-space(@class), ' '), ' gmail_quote ')]"
    " | //*[contains(concat(' ', normalize-space(@class), ' '), ' gmail_quote_container ')]"
    " | //*[contains(concat(' ', normalize-space(@class), ' '), ' moz-cite-prefix ')]"
    " | //*[contains(concat(' ', normalize-space(@class), ' '), ' yahoo_quoted ')]"
)
#: Elements that start the history: they and everything after them go.
_CUT_XPATH = "//*[@id='divRplyFwdMsg' or @id='OLK_SRC_BODY_SECTION']"
_CUT_MARK = "mailgate-quote-cut-7d3f1a"
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
_RULE = "_" * 32
_TRAILING_RULE = re.compile(rf"\n[ \t]*{_RULE}\s*$")


def _html_new_part(html: str) -> str | None:
    if not html or not html.strip():
        return None
    root = lxml.html.document_fromstring(_XML_DECLARATION.sub("", html))
    for element in root.xpath(_QUOTE_XPATH):
        if _is_quote(element):
            _drop(element)
    for rule in root.iter("hr"):
        _as_rule_line(rule)
    cut = root.xpath(_CUT_XPATH)
    if cut:
        cut[0].addprevious(_text_block(_CUT_MARK))
    text = get_text(lxml.html.tostring(root, encoding="unicode")).partition(_CUT_MARK)[0]
    # inscriptis indents nested blocks; what is left is shown on its own, so dedent it.
    kept = textwrap.dedent(_kept(text, DEFAULT_LANGUAGES))
    # An <hr> just above the removed history (Outlook web's, above #divRplyFwdMsg).
    kept = _TRAILING_RULE.sub("", kept).strip()
    return kept or text.strip() or None


def _text_block(text: str):
    block = lxml.html.Element("div")
    block.text = text
    return block


def _as_rule_line(rule) -> None:
    """inscriptis draws no line for ``<hr>`` (Hotmail, Outlook and Zimbra put one above
    the quoted header block): make it Outlook's plain-text rule line, a line of its own."""
    rule.tag = "div"
    rule.attrib.clear()
    rule.text = _RULE


def _is_quote(element) -> bool:
    """Not an indent (Gmail and Apple Mail indent with a borderless blockquote), not a
    forward (Gmail puts a forwarded mail in a ``gmail_quote`` div), not the root."""
    if element.getparent() is None:
        return False
    style = (element.get("style") or "").replace(" ", "").lower()
    if element.tag == "blockquote" and "border:none" in style:
        return False
    head = " ".join(element.text_content().split())[:300]
    return not _FORWARD_WORDS.search(head)


_FORWARD_WORDS = re.compile(
    r"forwarded message|messaggio inoltrato|weitergeleitete nachricht|továbbított (?:levél|üzenet)"
    r"|пересылаемое сообщение|пересланное сообщение|weitergeleiteten nachricht",
    re.IGNORECASE,
)


def _drop(element) -> None:
    """Remove ``element`` but keep the text that follows it (its tail)."""
    parent = element.getparent()
    if parent is None:
        return
    tail = element.tail or ""
    previous = element.getprevious()
    if previous is not None:
        previous.tail = (previous.tail or "") + tail
    else:
        parent.text = (parent.text or "") + tail
    parent.remove(element)
