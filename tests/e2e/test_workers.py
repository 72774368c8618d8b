"""``[processing] workers``: ``serve`` processes in worker processes.

A flood is processed once each; a reload reaches the workers; a killed daemon leaves
no worker running on; a TERM stops them with the daemon; the outbox has a process of
its own, which comes back when it dies; a worker resting while mail arrives holds
none of it up.
"""

from __future__ import annotations

import fcntl
import os
import re
import signal
import smtplib
import time

import pytest

from tests import dbs
from tests.helpers import flood, mail, make_home, serving, start_serve

pytestmark = pytest.mark.e2e

WORKERS = "\n[processing]\nworkers = 2\n"


def children(pid: int) -> list[int]:
    """The live child processes of ``pid`` (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read()  # noqa: SIM115
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry))
    return found


def alive(pid: int) -> bool:
    try:
        state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]  # noqa: SIM115
    except OSError:
        return False
    return state != "Z"


def test_a_flood_is_processed_once_by_the_workers(tmp_path):
    home = make_home(tmp_path, extra=WORKERS)
    with serving(home) as proc:
        acked = flood([home], 300)
        home.wait_settled(300, timeout=120)
        assert len(children(proc.pid)) >= 2  # the two workers (and the resource tracker)
    rows = home.query("SELECT message_id, state, attempts FROM spool")
    assert {r[0] for r in rows} == acked and len(rows) == 300
    assert {(r[1], r[2]) for r in rows} == {("processed", 1)}
    numbers = sorted(n for (n,) in home.query("SELECT number FROM ticket"))
    assert numbers == list(range(10000, 10300))
    assert "processing in 2 worker processes" in (home.root / "serve.log").read_text()


def test_mail_arriving_all_the_time_waits_for_no_resting_worker(tmp_path):
    # On 2 cores the second worker rests while mail arrives (workers.steady_count);
    # the first works all along: no mail waits for the stream to stop.  A mail every
    # 50 ms keeps intake from ever being quiet.
    home = make_home(tmp_path, extra=WORKERS)
    with serving(home), smtplib.SMTP("127.0.0.1", home.port, timeout=30) as client:
        for i in range(60):
            client.send_message(mail(f"user{i}@acme.it", f"stream {i}"))
            time.sleep(0.05)
        rows = home.query("SELECT id, state FROM spool ORDER BY id")
    waiting = [row_id for row_id, state in rows[:-20] if state != "processed"]
    assert len(rows) == 60 and waiting == []


@pytest.mark.skipif(dbs.POSTGRESQL, reason="the workers take turns on SQLite only")
def test_a_message_is_read_and_parsed_by_one_worker(tmp_path):
    # The test holds the workers' turn (turns.py): the first worker reads and parses
    # the message, then waits for the turn; the second joins once intake is quiet and
    # must leave the message to the first rather than read and parse it too (twice
    # the memory for a 25 MB mail) only to lose the claim (hands.py).
    home = make_home(tmp_path, extra=WORKERS + '\n[logging]\nlevel = "debug"\n')
    with serving(home), open(f"{home.db_path}-turn", "a+b") as turn:
        fcntl.flock(turn, fcntl.LOCK_EX)
        with smtplib.SMTP("127.0.0.1", home.port, timeout=30) as client:
            client.send_message(mail("anna@acme.it", "Stampante guasta"))
        time.sleep(1.0)  # intake is quiet after 0.2 s: both workers look at the spool
        fcntl.flock(turn, fcntl.LOCK_UN)
        home.wait_settled(1, timeout=30)
    log = (home.root / "serve.log").read_text()
    assert "was claimed by another worker first" not in log
    assert home.query("SELECT state, attempts FROM spool") == [("processed", 1)]


def test_a_reload_reaches_the_workers(tmp_path):
    home = make_home(tmp_path, extra=WORKERS)
    with serving(home) as proc:
        with open(home.root / "rules" / "companies.toml", "a") as rules:
            rules.write('\n[[company]]\nname = "Delta GmbH"\ndomains = ["delta.de"]\n'
                        'language = "en"\nplan = "standard"\n')
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 20
        while "reloaded:" not in (home.root / "serve.log").read_text():
            assert time.monotonic() < deadline, "no reload"
            time.sleep(0.1)
        time.sleep(1.0)  # the workers re-read between two messages
        with smtplib.SMTP("127.0.0.1", home.port, timeout=30) as client:
            client.send_message(mail("hans@delta.de", "Drucker kaputt"))
        home.wait_settled(1, timeout=30)
    [ticket] = home.json("tickets", "list")
    assert ticket["company"] == "Delta GmbH"


def test_a_killed_daemon_leaves_no_worker_behind(tmp_path):
    home = make_home(tmp_path, extra=WORKERS)
    proc = start_serve(home)
    deadline = time.monotonic() + 20
    while len(found := children(proc.pid)) < 2:
        assert time.monotonic() < deadline, "no workers started"
        time.sleep(0.1)
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in found):
        assert time.monotonic() < deadline, "a worker outlived its daemon"
        time.sleep(0.1)


def outbox_processes(home) -> list[int]:
    """The outbox processes that said they were sending, in order (serve.log)."""
    return [int(pid) for pid in re.findall(r"outbox process (\d+) sending",
                                           (home.root / "serve.log").read_text())]


def test_the_outbox_sends_from_a_process_that_comes_back(tmp_path):
    home = make_home(tmp_path, extra=WORKERS)
    with serving(home) as proc:
        [first] = outbox_processes(home)  # ready before the doors opened
        assert first in children(proc.pid) and first != proc.pid
        os.kill(first, signal.SIGKILL)
        with smtplib.SMTP("127.0.0.1", home.port, timeout=30) as client:
            client.send_message(mail("anna@acme.it", "Stampante guasta"))
        home.wait_settled(1, timeout=30)  # the auto-reply and the staff mail are sent
        [_, second] = outbox_processes(home)
        assert second in children(proc.pid)
    assert "[#10000]" in str(home.mails_to("anna@acme.it")[0]["Subject"])
    assert f"mailgate-outbox ended with -{signal.SIGKILL}" in (home.root / "serve.log").read_text()
