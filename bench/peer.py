"""The peer (issue 8, point 4): Roundup's mail gateway on the same corpus, in the same run.

Roundup is installed with pip into a venv of the bench's own (``bench/.venv-roundup``,
not in git) and a tracker is made from its ``classic`` template with the sqlite
backend.  Two changes make it a help desk's gateway: anonymous mail may open issues
(the ``Email Access`` line the template ships commented out), and outgoing mail goes to
a file (``[mail] debug``) as mailgate's goes to a Maildir.  The corpus's senders are
registered first, as the customers of a help desk that has run for a while are: new
users cost Roundup a PBKDF2 password hash each (~0.25 s), which would make it look
slower than it is at steady state.

``roundup_mbox_msgs_per_s``: ``roundup-mailgw TRACKER mailbox MBOX`` over the corpus,
``[#N]`` rewritten to ``[issueK]``.  ``roundup_pipe_msgs_per_s``: one ``roundup-mailgw
TRACKER < mail`` process per mail, as an MTA pipe runs it.
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import corpus

VENV = Path(__file__).with_name(".venv-roundup")
ROUNDUP = "roundup==2.6.0"

# Registers (address, name) pairs read from stdin, one tab-separated pair a line.
REGISTER = """
import sys
import roundup.instance
db = roundup.instance.open(sys.argv[1]).open("admin")
for line in sys.stdin:
    address, name = line.rstrip("\\n").split("\\t")
    db.user.create(username=address, address=address, realname=name, roles="User")
db.commit()
db.close()
"""


def ensure_roundup() -> Path:
    """The venv's bin folder, with Roundup installed into it on first use."""
    bindir = VENV / "bin"
    if not (bindir / "roundup-mailgw").exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True,
                       capture_output=True, timeout=300)
        subprocess.run([str(bindir / "pip"), "install", "-q", ROUNDUP], check=True,
                       capture_output=True, timeout=600)
    return bindir


def make_tracker(bindir: Path, root: Path, mails: list[corpus.Mail]) -> Path:
    """A classic/sqlite tracker under ``root`` that takes mail from anybody, with the
    corpus's senders registered."""
    tracker = root / "tracker"
    admin = str(bindir / "roundup-admin")
    _run([admin, "-i", str(tracker), "install", "classic", "sqlite",
          "mail_domain=example.com,mail_host=localhost,tracker_web=http://localhost/"])
    schema = tracker / "schema.py"
    schema.write_text(re.sub(r"(?m)^#(db\.security\.addPermissionToRole\('Anonymous', "
                             r"'Email Access'\))", r"\1", schema.read_text()))
    config = tracker / "config.ini"
    text = config.read_text()
    mail_section = text.index("\n[mail]")
    debug = re.compile(r"(?m)^debug = .*$")
    at = debug.search(text, mail_section)
    config.write_text(text[:at.start()] + f"debug = {root / 'outgoing.txt'}" + text[at.end():])
    _run([admin, "-i", str(tracker), "initialise", "bench-admin-password"])
    people = {m.sender: m.name for m in mails}
    _run([str(bindir / "python"), "-c", REGISTER, str(tracker)],
         stdin="".join(f"{a}\t{n}\n" for a, n in people.items()))
    return tracker


def _run(cmd: list[str], stdin: str | None = None, timeout: float = 600) -> float:
    """Run ``cmd``; its seconds, or RuntimeError with its output when it fails."""
    started = time.monotonic()
    proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{Path(cmd[0]).name} exited {proc.returncode}: "
                           f"{(proc.stderr or proc.stdout).strip()[-1000:]}")
    return time.monotonic() - started


def counts(tracker: Path) -> dict[str, int]:
    """Issues, messages and users in the tracker's sqlite database."""
    conn = sqlite3.connect(tracker / "db" / "db")
    try:
        return {k: conn.execute(f"SELECT count(*) FROM _{k}").fetchone()[0]
                for k in ("issue", "msg", "user")}
    finally:
        conn.close()


def mbox_import(bindir: Path, tracker: Path, mails: list[corpus.Mail]) -> dict:
    """Time ``roundup-mailgw mailbox`` over ``mails``; every mail must become a message."""
    mbox = tracker.parent / "corpus.mbox"
    corpus.write_mbox([corpus.for_roundup(m) for m in mails], mbox)
    before = counts(tracker)
    seconds = _run([str(bindir / "roundup-mailgw"), str(tracker), "mailbox", str(mbox)],
                   timeout=3600)
    after = counts(tracker)
    made = after["msg"] - before["msg"]
    if made != len(mails):
        raise RuntimeError(f"Roundup stored {made} of {len(mails)} mails")
    return {"roundup_mbox_msgs_per_s": round(len(mails) / seconds, 2),
            "roundup_mbox_messages": len(mails), "roundup_issues": after["issue"]}


def pipe_mode(bindir: Path, tracker: Path, mails: list[corpus.Mail]) -> dict:
    """One ``roundup-mailgw`` process per mail (fresh Message-IDs, after the import)."""
    total = 0.0
    for mail in mails:
        raw = corpus.renamed(corpus.for_roundup(mail), f"<pipe.{mail.message_id[1:]}")
        started = time.monotonic()
        proc = subprocess.run([str(bindir / "roundup-mailgw"), str(tracker)], input=raw,
                              capture_output=True, timeout=120)
        total += time.monotonic() - started
        if proc.returncode != 0:
            raise RuntimeError(f"roundup-mailgw exited {proc.returncode}: "
                               f"{proc.stderr.decode(errors='replace')[-500:]}")
    return {"roundup_pipe_msgs_per_s": round(len(mails) / total, 2),
            "roundup_pipe_ms_per_mail": round(total / len(mails) * 1000, 1),
            "roundup_pipe_messages": len(mails)}


def measure(workdir: Path, mails: list[corpus.Mail], quick: bool) -> dict:
    """Roundup's mbox and pipe figures on (a prefix of) the corpus."""
    bindir = ensure_roundup()
    root = workdir / "roundup"
    root.mkdir(parents=True, exist_ok=True)
    imported = mails[:100] if quick else mails
    tracker = make_tracker(bindir, root, mails)
    result = mbox_import(bindir, tracker, imported)
    result.update(pipe_mode(bindir, tracker, mails[:pipe_count(quick)]))
    return result


def pipe_count(quick: bool) -> int:
    """Mails sent through a pipe, one process each (Roundup's, and mailgate's)."""
    return 10 if quick else 50
