"""mailgate's pipe door timed as an MTA runs it: one ``mailgate deliver`` process per
mail, on a fresh home each, with ``serve`` running (deliver hands the message over the
daemon's deliver.sock) and with no daemon (deliver stores, processes and sends it
itself).  The time is that of the deliver processes, what the MTA waits for, as for
Roundup's pipe mode in peer.py; with a daemon, processing goes on after exit 0 and the
run waits until every mail is processed before it ends.

``python bench/pipedoor.py [N]`` prints the figures for N mails of the corpus;
run.py takes them in its peer section, in the same run as Roundup's.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import corpus
from home import MAILBOX, Home, Homes, Serve, mailgate_cmd, mailgate_env

SOCKET_WAIT = 20.0  # seconds for serve's deliver.sock to appear


def measure(homes: Homes, mails: list[corpus.Mail], count: int) -> dict:
    """ms per mail and mails/s of ``count`` deliver processes, with and without serve."""
    chosen = mails[:count]
    handed = _timed(homes.new("pipe-serve"), chosen, daemon=True)
    alone = _timed(homes.new("pipe-alone"), chosen, daemon=False)
    return {"mailgate_pipe_msgs_per_s": round(len(chosen) / handed, 2),
            "mailgate_pipe_ms_per_mail": round(handed / len(chosen) * 1000, 1),
            "mailgate_pipe_alone_msgs_per_s": round(len(chosen) / alone, 2),
            "mailgate_pipe_alone_ms_per_mail": round(alone / len(chosen) * 1000, 1),
            "mailgate_pipe_messages": len(chosen)}


def _timed(home: Home, mails: list[corpus.Mail], daemon: bool) -> float:
    """Seconds the deliver processes took; every mail must end up processed, by the
    pipe door."""
    before = home.last_spool_id()
    with Serve(home) if daemon else nullcontext():
        if daemon:
            _wait_socket(home)
        total = sum(_deliver(home, mail) for mail in mails)
        home.wait_settled(len(mails), timeout=300, after=before)
    doors = home.query("SELECT door, count(*) FROM spool WHERE id > ? GROUP BY door", before)
    if doors != [("pipe", len(mails))]:
        raise RuntimeError(f"expected {len(mails)} mails by the pipe door, got {doors}")
    return total


def _deliver(home: Home, mail: corpus.Mail) -> float:
    started = time.monotonic()
    proc = subprocess.run([*mailgate_cmd(home.tree), "-c", str(home.config), "deliver",
                           "--sender", mail.sender, "--recipient", MAILBOX],
                          input=mail.raw, capture_output=True, cwd=home.root,
                          env=mailgate_env(home.tree), timeout=120)
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        raise RuntimeError(f"deliver exited {proc.returncode}: "
                           f"{proc.stderr.decode(errors='replace')[-500:]}")
    return seconds


def _wait_socket(home: Home) -> None:
    path = home.root / "var" / "deliver.sock"
    deadline = time.monotonic() + SOCKET_WAIT
    while not path.is_socket():
        if time.monotonic() > deadline:
            raise RuntimeError(f"serve made no {path}")
        time.sleep(0.05)


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    with tempfile.TemporaryDirectory(prefix="mailgate-pipedoor.") as tmp:
        figures = measure(Homes(Path(tmp)), corpus.generate(max(count, 20), 8), count)
    print(json.dumps(figures, indent=2))
