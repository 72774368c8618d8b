"""The benchmark corpus: a deterministic mix of help-desk mail (issue 8, point 1).

``generate(count, seed)`` gives the same bytes for the same arguments on every machine:
60% new requests from ~50 company domains, 30% replies that carry ``[#N]`` and
References to the request they answer, 10% new requests with a 50–500 KB attachment;
bodies in Italian, Hungarian, Russian and English, in UTF-8 (base64 or
quoted-printable), ISO-8859-2 and KOI8-R, half of them text+HTML.

Ticket numbers are predictable because mailgate processes mail in arrival order: the
k-th mail that opens a ticket gets ``first_number + k``.  A reply also names the
request's Message-ID in References, so it threads even when two connections reorder
neighbouring mails.  ``python bench/corpus.py --out DIR [--mbox FILE]`` writes the
corpus as .eml files (and as an mbox), with the companies.toml that goes with it.
"""

from __future__ import annotations

import argparse
import mailbox
import random
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from pathlib import Path

import mimeparts
import texts

NEW, REPLY, ATTACHMENT = "new", "reply", "attachment"
MIX = {NEW: 0.6, REPLY: 0.3, ATTACHMENT: 0.1}
FIRST_NUMBER = 10000  # mailgate's tickets.first_number in the bench home
REPLY_GAP = 50  # a reply answers a request at least this many mails earlier
PEOPLE = 12  # customers who write, per company
RECENT = 300  # ... and one of the last RECENT requests, as customers answer recent tickets
BASE_DATE = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
HELPDESK = "hd@example.com"


@dataclass(frozen=True)
class Company:
    """A contracted company as ``rules/companies.toml`` declares it."""

    name: str
    domain: str
    language: str
    plan: str
    calendar: str | None


@dataclass(frozen=True)
class Mail:
    """One corpus mail; ``ticket`` is the index (among ticket-opening mails) of the
    ticket it opens or answers."""

    index: int
    kind: str
    sender: str
    name: str
    message_id: str
    subject: str
    ticket: int
    text: str  # the plain body, which a reply quotes
    raw: bytes


def companies() -> list[Company]:
    """The ~50 companies of the bench (independent of the corpus size)."""
    found = []
    plans = ["standard", "standard", "severity", "problem-type"]
    for lang, stems in texts.STEMS.items():
        for n, stem in enumerate(stems):
            found.append(Company(f"{stem} {texts.SUFFIX[lang]}", _domain(stem, lang), lang,
                                 plans[n % len(plans)], texts.CALENDAR[lang]))
    return found


def _domain(stem: str, lang: str) -> str:
    ascii_stem = "".join(texts.CYRILLIC.get(c, c) for c in stem.lower())
    ascii_stem = ascii_stem.translate(str.maketrans("áéíóöőúüű", "aeiooouuu"))
    return re.sub(r"[^a-z0-9]", "", ascii_stem) + "." + texts.TLD[lang]


def companies_toml(found: list[Company]) -> str:
    """``rules/companies.toml`` declaring ``found``."""
    blocks = []
    for c in found:
        lines = ["[[company]]", f'name = "{c.name}"', f'domains = ["{c.domain}"]',
                 f'language = "{c.language}"', f'plan = "{c.plan}"',
                 f'managers = ["it-manager@{c.domain}"]']
        if c.calendar:
            lines.append(f'calendar = "{c.calendar}"')
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


class _Writer:
    """Builds the corpus one mail at a time with one seeded random generator."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.seed = seed
        self.companies = companies()
        self.openers: list[Mail] = []  # mails that open a ticket, in order
        self.people: dict[str, list[tuple[str, str]]] = {}

    def mail(self, index: int) -> Mail:
        """The corpus mail at ``index``: a request, a reply, or a request with a file."""
        kind = self.rng.choices(list(MIX), weights=list(MIX.values()))[0]
        if kind == REPLY and len(self.openers) > REPLY_GAP:
            return self._reply(index)
        return self._request(index, kind if kind == ATTACHMENT else NEW)

    def _person(self, company: Company) -> tuple[str, str]:
        """One of the company's PEOPLE customers: the same people write again."""
        if company.domain not in self.people:
            rng = random.Random(f"{self.seed}:{company.domain}")
            lang, found = company.language, []
            for n in range(PEOPLE):
                first, last = rng.choice(texts.FIRST[lang]), rng.choice(texts.LAST[lang])
                local = "".join(texts.CYRILLIC.get(c, c) for c in f"{first}.{last}".lower())
                local = local.translate(str.maketrans("áéíóöőúüű", "aeiooouuu"))
                found.append((f"{first} {last}", f"{local}{n}@{company.domain}"))
            self.people[company.domain] = found
        return self.rng.choice(self.people[company.domain])

    def _charset(self, lang: str) -> str:
        if lang == "hu" and self.rng.random() < 0.5:
            return "iso-8859-2"
        if lang == "ru" and self.rng.random() < 0.5:
            return "koi8-r"
        return self.rng.choice(["utf-8", "utf-8-qp"])

    def _request(self, index: int, kind: str) -> Mail:
        company = self.rng.choice(self.companies)
        lang = company.language
        name, addr = self._person(company)
        subject = self.rng.choice(texts.SUBJECTS[lang])
        sentences = self.rng.sample(texts.SENTENCES[lang], self.rng.randint(2, 6))
        body = mimeparts.letter(lang, sentences, name, self.rng.random() < 0.4)
        charset = self._charset(lang)
        part = self._body(body, charset, lang, index)
        if kind == ATTACHMENT:
            part = self._attach(part, index)
        cc = self._person(company) if self.rng.random() < 0.2 else None
        mail = self._finish(part, index, kind, (name, addr), subject, body, charset, cc=cc)
        self.openers.append(mail)
        return mail

    def _reply(self, index: int) -> Mail:
        eligible = self.openers[:len(self.openers) - REPLY_GAP]
        original = self.rng.choice(eligible[-RECENT:])
        company = next(c for c in self.companies if original.sender.endswith("@" + c.domain))
        lang = company.language
        name, addr = self._person(company)
        if self.rng.random() < 0.75:  # mostly the requester, else a colleague
            name, addr = original.name, original.sender
        prefix = self.rng.choice(texts.REPLY_PREFIX[lang])
        subject = f"{prefix} [#{FIRST_NUMBER + original.ticket}] {original.subject}"
        body = mimeparts.reply_text(lang, self.rng.choice(texts.REPLIES[lang]), name,
                                    original, _date(original.index))
        charset = self._charset(lang)
        part = self._body(body, charset, lang, index)
        return self._finish(part, index, REPLY, (name, addr), subject, body, charset,
                            answers=original)

    def _body(self, text: str, charset: str, lang: str, index: int):
        if self.rng.random() < 0.5:
            return mimeparts.text_part(text, charset)
        return mimeparts.alternative(text, charset, lang, f"=_alt_{self.seed}_{index}")

    def _attach(self, part, index: int):
        size = self.rng.randint(50_000, 500_000)
        outer = MIMEMultipart("mixed", boundary=f"=_mix_{self.seed}_{index}")
        outer.attach(part)
        if self.rng.random() < 0.3:
            attachment = MIMEText(mimeparts.log_text(self.rng, size), "plain", "utf-8")
            filename = f"event-log-{index}.txt"
        else:
            subtype, filename = self.rng.choice([("pdf", f"report-{index}.pdf"),
                                                 ("octet-stream", f"dump-{index}.bin")])
            attachment = MIMEApplication(self.rng.randbytes(size), subtype)
        attachment.add_header("Content-Disposition", "attachment", filename=filename)
        outer.attach(attachment)
        return outer

    def _finish(self, part, index: int, kind: str, who: tuple[str, str], subject: str,
                text: str, charset: str, *, cc=None, answers: Mail | None = None) -> Mail:
        domain = who[1].rpartition("@")[2]
        message_id = f"<{self.seed}.{index}.{self.rng.getrandbits(40):x}@{domain}>"
        headers = mimeparts.Headers(who, HELPDESK, subject, _date(index), message_id,
                                    cc=cc, answers=answers.message_id if answers else None)
        raw = mimeparts.envelope(part, headers, charset, self.rng)
        ticket = answers.ticket if answers else len(self.openers)
        return Mail(index, kind, who[1], who[0], message_id, subject, ticket, text, raw)


def _date(index: int) -> datetime:
    return BASE_DATE + timedelta(seconds=37 * index)


def generate(count: int = 3000, seed: int = 8) -> list[Mail]:
    """``count`` mails; the same ``count`` and ``seed`` give the same bytes."""
    writer = _Writer(seed)
    return [writer.mail(i) for i in range(count)]


def stats(mails: list[Mail]) -> dict:
    """Counts by kind, total and mean size: what the corpus is, for the report."""
    kinds = {k: sum(m.kind == k for m in mails) for k in MIX}
    total = sum(len(m.raw) for m in mails)
    return {"mails": len(mails), **kinds, "bytes": total,
            "mean_kb": round(total / max(len(mails), 1) / 1024, 1)}


def for_roundup(mail: Mail) -> bytes:
    """The mail as Roundup expects it: ``[#N]`` becomes ``[issueK]`` (Roundup numbers
    issues from 1, in the same order)."""
    return re.sub(rb"\[#(\d+)\]", lambda m: b"[issue%d]" % (int(m[1]) - FIRST_NUMBER + 1),
                  mail.raw)


def write_mbox(raws: list[bytes], path: Path) -> None:
    """An mbox holding ``raws`` in order (From_ lines, >From quoting by ``mailbox``)."""
    box = mailbox.mbox(str(path), create=True)
    try:
        for raw in raws:
            box.add(raw.replace(b"\r\n", b"\n"))
        box.flush()
    finally:
        box.close()


def big_mail(size: int, seed: int = 8) -> Mail:
    """A new request with one attachment of ``size`` random bytes (a zip of logs)."""
    writer = _Writer(seed)
    company = writer.companies[0]
    name, addr = writer._person(company)
    body = mimeparts.letter(company.language, texts.SENTENCES[company.language][:3], name, True)
    outer = MIMEMultipart("mixed", boundary=f"=_big_{seed}")
    outer.attach(mimeparts.text_part(body, "utf-8"))
    attachment = MIMEApplication(writer.rng.randbytes(size), "zip")
    attachment.add_header("Content-Disposition", "attachment", filename="all-logs.zip")
    outer.attach(attachment)
    return writer._finish(outer, 0, ATTACHMENT, (name, addr), "Logs of the whole week", body,
                          "utf-8")


def renamed(raw: bytes, message_id: str) -> bytes:
    """``raw`` with another Message-ID (the soak sends the corpus many times)."""
    return re.sub(rb"(?m)^Message-ID: <[^>]*>", b"Message-ID: " + message_id.encode(), raw,
                  count=1)


def main() -> None:
    """Write the corpus as .eml files plus the companies.toml that goes with it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--out", type=Path, required=True, help="folder for the .eml files")
    parser.add_argument("--mbox", type=Path, help="also write the corpus as this mbox")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    mails = generate(args.count, args.seed)
    for mail in mails:
        (args.out / f"{mail.index:05d}-{mail.kind}.eml").write_bytes(mail.raw)
    (args.out / "companies.toml").write_text(companies_toml(companies()))
    if args.mbox:
        write_mbox([m.raw for m in mails], args.mbox)
    print(stats(mails))


if __name__ == "__main__":
    main()
