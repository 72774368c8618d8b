"""A throw-away mailgate installation for one measurement, and ``mailgate serve`` in it
(``python bench/home.py DIR`` makes one by hand).

The home is what a sysadmin would set up: the shipped SLA plans, staff and triage
rules, the ~50 companies of the corpus, SQLite in WAL mode, outbound mail to a Maildir.
Two limits are opened so that the work measured is the work of every mail: the
per-address auto-reply limit (every request is answered) and the attachment size
(the 25 MB attachment is stored, the worst case).  The daemon is started through its
CLI, as systemd would start it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import corpus
import procmem

PROJECT = Path(__file__).resolve().parents[1]
MAILBOX = "hd@example.com"
POLL = 0.05  # seconds between looks at the database while waiting for the daemon


def mailgate_cmd(tree: Path | None = None) -> list[str]:
    """The mailgate CLI: the project venv's entry point, else this interpreter's; for
    another source ``tree``, this interpreter with the tree first on its path."""
    script = PROJECT / ".venv" / "bin" / "mailgate"
    if tree is None and script.exists():
        return [str(script)]
    return [sys.executable, "-m", "mailgate"]


def mailgate_env(tree: Path | None = None) -> dict[str, str]:
    """The environment of a mailgate process (``tree`` first on PYTHONPATH)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if tree is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tree), env.get("PYTHONPATH")]))
    return env


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config_text(port: int, source: Path = PROJECT) -> str:
    """The bench configuration (see the module docstring for what differs from the
    defaults, and why), with the templates of the ``source`` tree."""
    return f"""
[database]
url = "sqlite:///var/mailgate.db"

[paths]
rules = "rules"
templates = "{source / 'templates'}"

[smtp]
host = "127.0.0.1"
port = {port}
max_message_size = 67108864

[[mailbox]]
address = "{MAILBOX}"
aliases = ["support@example.com"]
unknown_sender = "sales"
sales_address = "sales@example.com"

[outbound]
transport = "maildir"
maildir = "var/outbox"
auto_reply_limit = 1000000

[tickets]
first_number = {corpus.FIRST_NUMBER}
max_attachment_size = 33554432
auto_mail_per_ticket = 1000

[staff]
notify = "staff@example.com"
authserv_id = "mx.example.com"
"""


@dataclass
class Home:
    """A mailgate installation in ``root``, listening (when served) on ``port``."""

    root: Path
    port: int
    tree: Path | None = None  # another mailgate source tree to run (run.py --tree)
    config: Path = field(init=False)
    db_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.config = self.root / "config.toml"
        self.db_path = self.root / "var" / "mailgate.db"  # as config_text's [database] says

    def cli(self, *args: str, timeout: float = 300) -> str:
        """Run ``mailgate -c CONFIG ARGS``; its stdout, or RuntimeError with stderr."""
        proc = subprocess.run([*mailgate_cmd(self.tree), "-c", str(self.config), *args],
                              cwd=self.root, capture_output=True, text=True, timeout=timeout,
                              env=mailgate_env(self.tree))
        if proc.returncode != 0:
            raise RuntimeError(f"mailgate {' '.join(args)} exited {proc.returncode}: "
                               f"{proc.stderr.strip()[-2000:]}")
        return proc.stdout

    def query(self, sql: str, *params) -> list[tuple]:
        """Rows of a read-only query on the SQLite database."""
        conn = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=30)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def last_spool_id(self) -> int:
        """The id of the newest spool row (0 when empty): what came before a run."""
        return self.query("SELECT coalesce(max(id), 0) FROM spool")[0][0]

    def progress(self, after: int = 0) -> tuple[int, int, int]:
        """(spool rows after id ``after``, those still pending, outbox rows queued).
        Cheap on a big database: a rowid range and the state indexes."""
        spooled = self.query("SELECT count(*) FROM spool WHERE id > ?", after)[0][0]
        pending = self.query("SELECT count(*) FROM spool WHERE state = 'pending' AND id > ?",
                             after)[0][0]
        queued = self.query("SELECT count(*) FROM outbox WHERE state = 'queued'")[0][0]
        return spooled, pending, queued

    def wait_settled(self, expected: int, timeout: float, after: int = 0) -> float:
        """Wait until ``expected`` mails (after spool id ``after``) are spooled and
        processed and no mail waits in the outbox; the monotonic time when that was seen."""
        return self.wait_done(expected, timeout, after)[1]

    def wait_done(self, expected: int, timeout: float, after: int = 0) -> tuple[float, float]:
        """As ``wait_settled``; the moments when every mail was processed and when the
        outbox was empty as well."""
        deadline, processed = time.monotonic() + timeout, None
        while True:
            spooled, pending, queued = self.progress(after)
            now = time.monotonic()
            if spooled >= expected and not pending:
                processed = processed or now
                if not queued:
                    return processed, now
            if now > deadline:
                raise TimeoutError(f"not settled after {timeout:.0f}s: {spooled} of {expected} "
                                   f"spooled, {pending} pending, {queued} in the outbox")
            time.sleep(POLL)

    def outcomes(self, after: int = 0) -> dict[str, int]:
        """Processed mails by outcome (created, threaded, …): what the corpus caused."""
        rows = self.query("SELECT coalesce(outcome, state), count(*) FROM spool WHERE id > ? "
                          "GROUP BY 1", after)
        return {str(k): n for k, n in rows}


def make_home(root: Path, *, upgrade: bool = True, tree: Path | None = None) -> Home:
    """Write config and rules under ``root`` and bring the schema to head; the shipped
    rules and templates come from ``tree`` when given."""
    home, source = Home(root, free_port(), tree), tree or PROJECT
    rules = root / "rules"
    rules.mkdir(parents=True, exist_ok=True)
    for name in ("staff.toml", "sla.toml", "triage.toml"):
        shutil.copy(source / "rules" / name, rules / name)
    (rules / "companies.toml").write_text(corpus.companies_toml(corpus.companies()))
    home.config.write_text(config_text(home.port, source))
    if upgrade:
        home.cli("db", "upgrade")
    return home


class Homes:
    """Fresh homes under one work folder.  The schema is migrated once (``mailgate db
    upgrade``, in the first home) and the migrated database copied into the others."""

    def __init__(self, workdir: Path, tree: Path | None = None):
        self.workdir, self.tree = workdir, tree
        self.schema = workdir / "schema.db"

    def new(self, name: str) -> Home:
        """A fresh home in ``workdir/name`` with the schema at head."""
        if not self.schema.exists():
            home = make_home(self.workdir / name, tree=self.tree)
            conn = sqlite3.connect(home.db_path)
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # everything in the main file
            conn.close()
            shutil.copy(home.db_path, self.schema)
            return home
        home = make_home(self.workdir / name, upgrade=False, tree=self.tree)
        home.db_path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(self.schema, home.db_path)
        return home


class Serve:
    """``mailgate serve`` (with extra ``args``) in ``home`` for a ``with`` block."""

    def __init__(self, home: Home, *args: str):
        self.home, self.args = home, args
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Serve:
        log = open(self.home.root / "serve.log", "ab")  # noqa: SIM115 - the daemon keeps it
        self.proc = subprocess.Popen(
            [*mailgate_cmd(self.home.tree), "-c", str(self.home.config), "serve", *self.args],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL, cwd=self.home.root,
            env=mailgate_env(self.home.tree))
        log.close()
        wait_port(self.home.port, self.proc, self.home.root / "serve.log")
        return self

    @property
    def pid(self) -> int:
        """The daemon's process id."""
        return self.proc.pid

    def rss_mb(self) -> float:
        """Resident memory of serve and its children now, in MB."""
        return procmem.tree_kb(self.pid, "VmRSS") / 1024

    def peak_mb(self) -> float:
        """Peak resident memory (VmHWM) of serve and its children, in MB."""
        return procmem.tree_kb(self.pid, "VmHWM") / 1024

    def __exit__(self, *exc) -> None:
        stop(self.proc)


def wait_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    """Wait until ``port`` accepts connections; RuntimeError if ``proc`` ends first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    stop(proc)
    raise RuntimeError(f"nothing listened on port {port} after {timeout}s")


def stop(proc: subprocess.Popen | None, grace: float = 30) -> None:
    """SIGTERM ``proc`` (a daemon drains), SIGKILL it if it is still there after
    ``grace`` seconds, and then any of its children that are left."""
    if proc is None or proc.poll() is not None:
        return
    kids = procmem.descendants(proc.pid)
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
    # Worker processes of the daemon that outlived it would skew the next measurement.
    procmem.kill_all(kids, signal.SIGKILL)


def main() -> None:
    """``python bench/home.py DIR``: a bench home in DIR (for profiling by hand)."""
    if len(sys.argv) != 2:
        sys.exit("usage: python bench/home.py DIR")
    home = make_home(Path(sys.argv[1]).resolve())
    print(f"home {home.root}, SMTP port {home.port}\n"
          f"  {' '.join(mailgate_cmd())} -c {home.config} serve")


if __name__ == "__main__":
    main()
