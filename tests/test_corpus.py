"""Robustness over the shared corpus of real-world mail (SPEC §3: degrade, never crash).

Every file under ``corpus_root()`` except the *.md / *.json notes is parsed, classified
and run through the whole pipeline; the talon *.html files are not mails but must not
crash either.  Each file goes through two mailboxes: ``create@`` (anyone opens a ticket,
so the auto reply and the staff mail are rendered from the file's headers and text) and
``hd@`` (unknown senders are forwarded to sales with the original attached).

The envelope sender is a plain address, so classification rests on the headers alone.

Corpus files that share a Message-ID (or bytes) would dedupe against each other on one
desk, so each mailbox keeps a few desks ("lanes") and a file goes to the first lane
that has not seen its dedupe key: every file really runs through the pipeline.
"""

from __future__ import annotations

import email
import logging
import re
from collections.abc import Iterator
from email import feedparser

import pytest

from mailgate import bigparts
from mailgate.classify import classify
from mailgate.message import parse
from mailgate.pipeline import Result
from mailgate.spool import dedupe_key
from tests.conftest import corpus_root
from tests.desk import Desk

ROOT = corpus_root()
if not ROOT.is_dir():
    pytest.skip(f"mail corpus not found at {ROOT} (set MAILGATE_CORPUS to its folder)",
                allow_module_level=True)

FILES = sorted(p.relative_to(ROOT).as_posix() for p in ROOT.rglob("*")
               if p.is_file() and p.suffix not in (".md", ".json"))
BOUNCES = [f for f in FILES if f.startswith("sisimai/bsd/")]  # sisimai/not/ are not bounces
ENVELOPE_FROM = "corpus@example.net"
MAILBOXES = ("create@example.com", "hd@example.com")

def _pipeline_param(rel: str, rcpt: str):
    return pytest.param(rel, rcpt, id=f"{rcpt.partition('@')[0]}:{rel}")


class Lanes:
    """Desks of one mailbox; a file goes to the first desk that has not seen its key."""

    def __init__(self, factory, rcpt: str):
        self.factory, self.rcpt = factory, rcpt
        self.desks: list[tuple[Desk, set[str]]] = []
        self.results: dict[str, tuple[Desk, Result | None]] = {}

    def deliver(self, rel: str) -> tuple[Desk, Result | None]:
        if rel not in self.results:
            raw = (ROOT / rel).read_bytes()
            key = dedupe_key(raw)[0]
            lane = next((lane for lane in self.desks if key not in lane[1]), None)
            if lane is None:
                lane = (Desk(self.factory.mktemp("corpus")), set())
                self.desks.append(lane)
            lane[1].add(key)
            result = lane[0].deliver(raw, rcpt=self.rcpt, mail_from=ENVELOPE_FROM)
            self.results[rel] = (lane[0], result)
        return self.results[rel]


@pytest.fixture(scope="module")
def lanes(tmp_path_factory) -> Iterator[dict[str, Lanes]]:
    logging.getLogger("mailgate").setLevel(logging.CRITICAL)  # failures are asserted on
    yield {rcpt: Lanes(tmp_path_factory, rcpt) for rcpt in MAILBOXES}
    logging.getLogger("mailgate").setLevel(logging.NOTSET)


@pytest.fixture(scope="module")
def own(tmp_path_factory):
    return Desk(tmp_path_factory.mktemp("own")).svc.own


def test_corpus_is_there():
    assert len(FILES) > 100 and BOUNCES, f"corpus at {ROOT} looks incomplete"


@pytest.mark.parametrize("rel", FILES)
def test_parse_and_classify(rel, own):
    parsed = parse((ROOT / rel).read_bytes())
    assert isinstance(parsed.subject, str) and isinstance(parsed.text, str)
    assert classify(parsed, ENVELOPE_FROM, own).kind


def test_long_base64_runs_parse_as_the_whole_mail_does(monkeypatch):
    """The files whose long base64 runs are parsed from the raw bytes (bigparts.py)
    give what the plain parse gives, attachments and all."""
    raws = {rel: raw for rel in FILES if bigparts.split(raw := (ROOT / rel).read_bytes())[1]}
    assert raws, "no corpus file has a base64 run long enough to be elided"
    elided = {rel: parse(raw) for rel, raw in raws.items()}
    monkeypatch.setattr(bigparts, "MIN_RUN", 1 << 40)
    differ = [rel for rel, raw in raws.items() if parse(raw) != elided[rel]]
    assert not differ


def test_boundaries_split_every_mail_as_the_stdlib_pattern_does(monkeypatch):
    """The feed parser's boundary lines matched without a pattern per part
    (boundaries.py) give the tree its own patterns give, for every corpus file."""
    ours = {rel: _shape((ROOT / rel).read_bytes()) for rel in FILES}
    monkeypatch.setattr(feedparser, "re", re)
    differ = [rel for rel in FILES if _shape((ROOT / rel).read_bytes()) != ours[rel]]
    assert not differ


def _shape(raw: bytes) -> list[tuple]:
    """Every part of the compat32 tree of ``raw``: type, preamble, epilogue, defects,
    and the payload of a leaf."""
    return [(part.get_content_type(), part.preamble, part.epilogue,
             [type(defect).__name__ for defect in part.defects],
             None if part.is_multipart() else part.get_payload())
            for part in email.message_from_bytes(raw).walk()]


@pytest.mark.parametrize(("rel", "rcpt"),
                         [_pipeline_param(f, rcpt) for rcpt in MAILBOXES for f in FILES])
def test_whole_pipeline_never_fails(rel, rcpt, lanes):
    desk, result = lanes[rcpt].deliver(rel)
    key = dedupe_key((ROOT / rel).read_bytes())[0]
    [(state, error)] = desk.home.query("SELECT state, error FROM spool WHERE dedupe_key = ?", key)
    assert result is not None, f"{rel}: not processed, spool row is {state}: {error}"
    assert result.state != "failed", f"{rel}: the pipeline raised:\n{error}"


def tickets_opened_by_bounces(lanes) -> list[str]:
    opened = []
    for rel in BOUNCES:
        _desk, result = lanes["create@example.com"].deliver(rel)
        if result is not None and result.ticket is not None:
            opened.append(f"{rel} ({result.outcome})")
    return opened


def test_bounces_and_auto_replies_open_no_ticket(lanes):
    # One sisimai file stays normal (tests/test_bounces.py KNOWN_KINDS says why): a
    # bounce that a person forwarded, which is a support request.
    known = {"sisimai/bsd/lhost-sendmail-14.eml"}
    opened = [o for o in tickets_opened_by_bounces(lanes) if o.partition(" ")[0] not in known]
    assert not opened, f"{len(opened)} bounces opened a ticket:\n" + "\n".join(opened)


def test_bounces_opening_tickets_do_not_grow_beyond_the_known_1(lanes):
    opened = tickets_opened_by_bounces(lanes)
    assert len(opened) <= 1, "\n".join(opened)
