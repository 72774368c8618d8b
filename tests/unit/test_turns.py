"""turns and workers.steady_count: pipeline workers take turns on SQLite, and how many
work while mail arrives."""

from __future__ import annotations

import fcntl
import os
import threading
import time

from mailgate.db import make_engine
from mailgate.intakefirst import IntakeFirst
from mailgate.turns import Turns
from mailgate.workers import steady_count


def test_one_turn_at_a_time_on_a_sqlite_file(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'mailgate.db'}")
    gate = IntakeFirst(enabled=True)
    # Two Turns open the lock file twice, as two worker processes do.
    first, second = Turns(engine, gate), Turns(engine, gate)
    events = []

    def other_worker():
        with second():
            events.append("second")

    with first():
        thread = threading.Thread(target=other_worker)
        thread.start()
        time.sleep(0.1)
        events.append("first done")
    thread.join(5)
    assert events == ["first done", "second"]


def test_a_database_without_a_file_takes_no_turn():
    engine = make_engine("sqlite:///:memory:")
    turn = Turns(engine, IntakeFirst(enabled=True))
    assert turn.handle is None
    with turn(), turn():  # nested: nothing to wait for
        pass



def test_a_worker_lets_a_waiting_outbox_go_first(tmp_path):
    # flock is not fair: a worker trying for the turn between the messages it parses
    # won it again and again, and the outbox's queue grew.  While the outbox waits
    # (it holds the "first" lock, as here), a free turn is left to it.
    engine = make_engine(f"sqlite:///{tmp_path / 'mailgate.db'}")
    gate = IntakeFirst(enabled=True)
    worker, outbox = Turns(engine, gate), Turns(engine, gate, first=True)
    parsed, events = [], []

    def parse_ahead() -> bool:
        # A worker's read-ahead with a long backlog: always a message to parse.
        parsed.append(len(parsed))
        time.sleep(0.001)
        return True

    def work():
        with worker(parse_ahead):
            events.append("worker")

    fcntl.flock(outbox.ahead, fcntl.LOCK_EX)  # the outbox waits for the turn
    thread = threading.Thread(target=work)
    thread.start()
    time.sleep(0.2)
    assert events == [] and parsed, "the worker took the turn the outbox waits for"
    with outbox():  # takes the turn, then lets go of the "first" lock it already held
        time.sleep(0.1)
        events.append("outbox")
    thread.join(5)
    assert events == ["outbox", "worker"]


def test_one_core_stays_for_the_listener_while_mail_arrives(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    assert steady_count(2) == 1 and steady_count(1) == 1
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    assert steady_count(3) == 1  # one core: one worker still works
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))
    assert steady_count(4) == 4 and steady_count(12) == 7
