"""Leases: one holder at a time across processes, freed when the holder dies.

Another process takes the lease on the same database (SQLite file or PostgreSQL);
this one must then be refused, and must get it once that process is killed.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from mailgate import leases
from tests import dbs

HOLDER = """
import sys, time
from sqlalchemy import create_engine
from mailgate import leases
with leases.held(create_engine(sys.argv[1]), sys.argv[2]) as mine:
    print("held" if mine else "refused", flush=True)
    time.sleep(60)
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'mailgate.db'}"
    if why := dbs.postgres_unavailable():
        pytest.skip(why)
    return dbs.new_postgres_database()


def holder(url: str, name: str) -> subprocess.Popen:
    """A process that holds the lease ``name`` until it is killed."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, url, name], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_lease_held_elsewhere_is_refused_until_its_holder_dies(url):
    engine = create_engine(url, poolclass=NullPool)
    proc = holder(url, "imap hd@example.com@imap.example.com/INBOX")
    try:
        with leases.held(engine, "imap hd@example.com@imap.example.com/INBOX") as mine:
            assert not mine
        with leases.held(engine, "imap another account") as mine:
            assert mine  # other names are independent
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    with leases.held(engine, "imap hd@example.com@imap.example.com/INBOX") as mine:
        assert mine


def test_a_released_lease_can_be_taken_again(url):
    engine = create_engine(url, poolclass=NullPool)
    with leases.held(engine, "jobs") as mine:
        assert mine
    proc = holder(url, "jobs")  # released on leaving the block: another process gets it
    proc.kill()
    proc.wait()


def test_lock_keys_are_stable_signed_64_bit_numbers():
    key = leases.lock_key("imap a")
    assert key == leases.lock_key("imap a") != leases.lock_key("imap b")
    assert -2**63 <= key < 2**63


def test_a_lease_whose_connection_ends_is_lost_and_free_for_another(url):
    """A PostgreSQL restart ends the session that held the advisory lock: the holder
    must learn that it holds the lease no more, since another instance may take it."""
    if not url.startswith("postgresql"):
        pytest.skip("on SQLite a lease is an flock, which only the holder's death ends")
    engine = create_engine(url, poolclass=NullPool)
    name = "imap hd@example.com@imap.example.com/INBOX"
    with leases.held(engine, name) as lease:
        assert lease and not lease.lost()
        assert dbs.end_lease_holders(url) == [True]
        assert lease.lost()
        other = holder(url, name)  # another process takes it meanwhile
    other.kill()
    other.wait()
    assert taken_within(engine, name, seconds=10)  # and this one again once it is gone


def taken_within(engine, name: str, seconds: float) -> bool:
    """Whether this process takes the lease ``name`` within ``seconds`` (the server
    ends a killed client's session as soon as it sees the connection closed)."""
    deadline = time.monotonic() + seconds
    while True:
        with leases.held(engine, name) as lease:
            if lease and not lease.lost():
                return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
