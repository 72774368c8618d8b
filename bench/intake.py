"""Intake (issue 8, point 2): Postfix's ``smtp-source`` against ``mailgate serve`` and,
in the same run, against a bare aiosmtpd sink; acknowledged mails per second.

Three targets, each fresh: the bare sink (the ceiling of a Python SMTP door here),
``serve --intake-only`` (the door and the durable spool commit alone) and ``serve``
(the same while the pipeline processes what arrives, as in production).
``intake_msgs_per_s`` is the last; ``intake_ratio`` is it over the sink's rate.
``smtp-source`` runs ``SESSIONS`` sessions in parallel, each sending message after
message over one connection (``-d``), as a Postfix with a destination concurrency
of 16 would.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

from home import MAILBOX, Homes, Serve, free_port, wait_port

SESSIONS = 16
SIZE = 4096  # payload bytes: the size of a typical request without attachment
SENDER = "bench@rossimeccanica.it"  # a contact of a company: the pipeline does real work
WARMUP = 50  # mails sent before the clock starts (imports, first connections)
SINK = Path(__file__).with_name("sink.py")


def smtp_source_path() -> str:
    """Where Postfix's smtp-source is (Debian puts it in /usr/sbin)."""
    for candidate in (shutil.which("smtp-source"), "/usr/sbin/smtp-source",
                      "/usr/lib/postfix/smtp-source"):
        if candidate and Path(candidate).exists():
            return candidate
    raise FileNotFoundError("smtp-source not found: apt-get install postfix")


def smtp_source(port: int, count: int, sessions: int = SESSIONS, size: int = SIZE) -> float:
    """Send ``count`` mails with smtp-source; the seconds it took.  ``-A`` lets it go on
    after a refusal (a 451 under load): the caller counts what was acknowledged."""
    cmd = [smtp_source_path(), "-A", "-s", str(sessions), "-m", str(count), "-l", str(size),
           "-d", "-M", "bench.example", "-f", SENDER, "-t", MAILBOX,
           "-S", "Printer on the 2nd floor prints blank pages", f"127.0.0.1:{port}"]
    started = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=max(120, count / 10))
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        raise RuntimeError(f"smtp-source exited {proc.returncode}: {proc.stderr.strip()[-500:]}")
    return seconds


@contextmanager
def sink(expected: int) -> Iterator[int]:
    """A bare aiosmtpd sink listening for the block (its port); raises when it did not
    acknowledge ``expected`` mails in all."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(SINK), str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_port(port, proc, Path("/dev/null"))
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    if out.strip() != str(expected):
        raise RuntimeError(f"the sink acknowledged {out.strip()} of {expected} mails")


def bare_sink(count: int) -> float:
    """Mails/s that smtp-source gets acknowledged by the bare aiosmtpd sink."""
    with sink(WARMUP + count) as port:
        smtp_source(port, WARMUP)
        seconds = smtp_source(port, count)
    return count / seconds


def mailgate(homes: Homes, name: str, count: int, *args: str) -> tuple[float, int]:
    """Mails/s that smtp-source gets acknowledged by ``mailgate serve ARGS`` (every
    acknowledged mail is a spool row), and how many mails were refused."""
    home = homes.new(name)
    with Serve(home, *args):
        smtp_source(home.port, WARMUP)
        before = home.last_spool_id()
        seconds = smtp_source(home.port, count)
    acked = home.progress(after=before)[0]
    return acked / seconds, count - acked


def _bare(count: int) -> dict:
    return {"bare_smtp_msgs_per_s": round(bare_sink(count), 1), "intake_messages": count,
            "intake_sessions": SESSIONS, "intake_payload_bytes": SIZE}


def _serve(homes: Homes, count: int, key: str, *args: str) -> dict:
    rate, refused = mailgate(homes, key, count, *args)
    # Refused: 4xx/5xx replies, not acknowledged and not counted in the rate.
    prefix = key.replace("-", "_")
    return {f"{prefix}_msgs_per_s": round(rate, 1), f"{prefix}_refused": refused}


def steps(homes: Homes, quick: bool) -> list:
    """The intake measurements, each on its own (a failing one leaves the others);
    ``quick`` sends fewer mails.  ``targets.ratios`` relates them to the sink."""
    count = 1000 if quick else 10000
    return [partial(_bare, count), partial(_serve, homes, count, "intake-only", "--intake-only"),
            partial(_serve, homes, count, "intake")]
