"""Several ``mailgate serve`` instances on one database and one IMAP account: one
polls it at a time (its lease), and another takes over when that one stops.
Against a real Dovecot; the database is the one this run uses (SQLite or PostgreSQL).
"""

from __future__ import annotations

import signal
import time

import pytest

from mailgate.inbound.imap import LEASE_RETRY
from tests import dbs
from tests.e2e.test_imap import append, folder_flags
from tests.helpers import mail, make_home, serving, start_serve

pytestmark = pytest.mark.e2e

POLLS = "this instance polls the account"
WAITS = "polled by another instance; waiting to take over"
LOST = "the account's lease ended with its database connection; stopped polling"


def log_of(home) -> str:
    return (home.root / "serve.log").read_text()


def wait_for_log(home, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while text not in log_of(home):
        assert time.monotonic() < deadline, f"{text!r} not logged:\n{log_of(home)}"
        time.sleep(0.1)


def test_one_instance_polls_and_another_takes_over_when_it_stops(tmp_path, imap_user):
    imap = imap_user.imap_toml(poll_interval="10m")
    first = make_home(tmp_path / "first", extra=imap)
    second = make_home(tmp_path / "second", extra=imap, upgrade=False)
    second.use_database(first.db_url)
    append(imap_user, *[mail(f"user{n}@acme.it", f"Before start {n}") for n in range(5)])
    with serving(second):
        wait_for_log(second, POLLS, timeout=10)
        with serving(first):
            wait_for_log(first, WAITS, timeout=10)
            append(imap_user, *[mail(f"user{n}@acme.it", f"Both up {n}") for n in range(5)])
            first.wait_settled(10, timeout=30)
        assert POLLS not in log_of(first)
    with serving(first):  # the second instance stopped: the first polls at once
        wait_for_log(first, POLLS, timeout=10)
        append(imap_user, mail("anna@beta.hu", "Second is gone"))
        first.wait_settled(11, timeout=30)
    subjects = [t["subject"] for t in first.json("tickets", "list")]
    assert len(subjects) == len(set(subjects)) == 11
    assert folder_flags(imap_user, "INBOX") == []
    assert len(folder_flags(imap_user, "Processed")) == 11


def test_a_waiting_instance_takes_over_within_seconds_when_the_poller_stops(tmp_path,
                                                                           imap_user):
    imap = imap_user.imap_toml(poll_interval="10m")
    first = make_home(tmp_path / "first", extra=imap)
    second = make_home(tmp_path / "second", extra=imap, upgrade=False)
    second.use_database(first.db_url)
    poller = start_serve(first)
    with serving(second):
        wait_for_log(first, POLLS, timeout=10)
        wait_for_log(second, WAITS, timeout=10)
        poller.send_signal(signal.SIGTERM)
        assert poller.wait(timeout=30) == 0
        append(imap_user, mail("mario@acme.it", "After the poller stopped"))
        wait_for_log(second, POLLS, timeout=LEASE_RETRY + 5)
        second.wait_settled(1, timeout=30)
    [ticket] = second.json("tickets", "list")
    assert ticket["subject"] == "After the poller stopped"


def test_poll_once_while_serve_polls_says_so_and_exits_75(tmp_path, imap_user):
    home = make_home(tmp_path, extra=imap_user.imap_toml(poll_interval="10m"))
    with serving(home):
        wait_for_log(home, POLLS, timeout=10)
        done = home.cli("poll", "--once", check=False)
    assert done.returncode == 75
    assert "another instance is polling this account now; nothing fetched" in done.stderr


def test_a_poller_whose_lease_ended_stops_and_the_other_takes_over(tmp_path, imap_user):
    """A PostgreSQL restart ends the connection that holds the poller's lease (here
    only that connection is ended).  Another instance takes the lease over; the old
    poller must stop polling, not go on fetching every mail beside it."""
    # Polling every second, not IDLE: the test is about who polls, not about when IDLE
    # announces a mail (CI once saw the new poller's IDLE stay silent for 30 s).
    imap = imap_user.imap_toml(poll_interval="1s", idle=False)
    first = make_home(tmp_path / "first", extra=imap)
    if not first.db_url.startswith("postgresql"):
        pytest.skip("on SQLite a lease is an flock, which only the poller's death ends")
    second = make_home(tmp_path / "second", extra=imap, upgrade=False)
    second.use_database(first.db_url)
    with serving(first), serving(second):
        wait_for_log(first, POLLS, timeout=10)
        wait_for_log(second, WAITS, timeout=10)
        assert dbs.end_lease_holders(first.db_url) == [True]
        wait_for_log(second, POLLS, timeout=LEASE_RETRY + 5)
        append(imap_user, mail("mario@acme.it", "After the lease ended"))
        wait_for_log(first, LOST, timeout=30)
        second.wait_settled(1, timeout=30)
    [ticket] = second.json("tickets", "list")
    assert ticket["subject"] == "After the lease ended"
    assert len(folder_flags(imap_user, "Processed")) == 1
    assert log_of(first).count(POLLS) == 1  # it did not take the lease back
