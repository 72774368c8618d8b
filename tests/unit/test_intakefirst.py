"""intakefirst: on SQLite the pipeline gives way to a commit the listener has due."""

from __future__ import annotations

import threading
import time

from mailgate import intakefirst
from mailgate.intakefirst import IntakeFirst


def worker_then(gate: IntakeFirst, events: list[str]) -> threading.Thread:
    """A pipeline worker that gives way, then begins its transaction."""
    thread = threading.Thread(target=lambda: (gate.give_way(), events.append("pipeline")))
    thread.start()
    return thread


def test_the_pipeline_begins_after_the_listeners_commit():
    gate, events = IntakeFirst(enabled=True), []
    with gate.committing():
        worker = worker_then(gate, events)
        time.sleep(0.05)  # the worker is there, waiting
        events.append("intake")
    worker.join()
    assert events == ["intake", "pipeline"]
    assert gate.waiting.value == 0


def test_nobody_waiting_means_no_wait():
    gate, events = IntakeFirst(enabled=True), []
    worker_then(gate, events).join()
    assert events == ["pipeline"]


def test_postgresql_never_waits_for_intake():
    gate, events = IntakeFirst(enabled=False), []
    with gate.committing():
        worker_then(gate, events).join()
        events.append("intake")
    assert events == ["pipeline", "intake"]


def test_a_flood_of_intake_cannot_stop_processing(monkeypatch):
    monkeypatch.setattr(intakefirst, "LONGEST_YIELD", 0.02)
    gate, events = IntakeFirst(enabled=True), []
    with gate.committing():
        worker_then(gate, events).join()  # returns although the listener still waits
        assert gate.waiting.value == 1
        events.append("intake")
    assert events == ["pipeline", "intake"]


def test_the_count_drops_when_the_commit_fails():
    gate = IntakeFirst(enabled=True)
    try:
        with gate.committing():
            raise OSError("disk full")
    except OSError:
        pass
    assert gate.waiting.value == 0


def test_under_a_flood_the_pipeline_takes_its_turn_after_one_commit(monkeypatch):
    monkeypatch.setattr(intakefirst, "LONGEST_YIELD", 60.0)  # only the turn can end the wait
    gate, events = IntakeFirst(enabled=True), []
    first = gate.committing()
    first.__enter__()
    with gate.committing():  # the next batch waits already
        worker = worker_then(gate, events)
        time.sleep(0.05)
        events.append("commit 1")
        first.__exit__(None, None, None)
        worker.join(10)
        assert not worker.is_alive(), "the pipeline waited past the commit it let go"
        events.append("commit 2")
    assert events == ["commit 1", "pipeline", "commit 2"]


def test_a_worker_that_gives_way_works_meanwhile_then_waits():
    # The worker parses its next mails while the listener commits (turns.py), and once
    # it has nothing left to do it still waits for the commit.
    gate, work = IntakeFirst(enabled=True), []

    def meanwhile() -> bool:
        if len(work) == 3:
            return False
        work.append("parsed")
        return True

    with gate.committing():
        worker = threading.Thread(target=gate.give_way, args=(meanwhile,))
        worker.start()
        time.sleep(0.05)
        assert work == ["parsed"] * 3
        assert worker.is_alive(), "the worker went on before the listener's commit"
    worker.join(10)
    assert not worker.is_alive()


def test_intake_is_quiet_a_moment_after_its_last_commit(monkeypatch):
    monkeypatch.setattr(intakefirst, "QUIET", 0.05)
    gate = IntakeFirst(enabled=False)  # on PostgreSQL as well: it is about the cores
    assert gate.quiet()  # nothing has arrived yet
    with gate.committing():
        assert not gate.quiet()  # a commit is due
    assert not gate.quiet()  # it has just been made
    time.sleep(0.06)
    assert gate.quiet()
