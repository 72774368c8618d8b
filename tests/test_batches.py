"""Batches: several pending mails processed in one transaction.

What an operator relies on: a mail that fails in a batch is kept as failed with its
traceback while the others of the batch get their tickets; a database that fails
leaves the whole batch pending; a batch ends as soon as intake has a commit due.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from mailgate import pipeline, spool
from mailgate.intakefirst import IntakeFirst
from mailgate.turns import Turns
from tests import dbs
from tests.desk import Desk
from tests.flowkit import NO_AUTH
from tests.helpers import mail


@pytest.fixture
def desk(tmp_path, monkeypatch) -> Desk:
    # Batches bounded by count and intake only: a slow machine must not split them.
    monkeypatch.setattr(pipeline, "BATCH_SECONDS", 60.0)
    return Desk(tmp_path)


def spooled(desk: Desk, *subjects: str) -> list[int]:
    """Spool one mail from Acme's contact per subject, without processing them."""
    return [spooled_mail(desk, mail("mario@acme.it", subject, f"Request {n}\n"))
            for n, subject in enumerate(subjects)]


def spooled_mail(desk: Desk, msg) -> int:
    """Spool ``msg`` as SMTP delivered it, without processing it."""
    return desk.spool(msg, mail_from=msg["From"])


def commits(desk: Desk) -> list[int]:
    """A list that grows by one with every commit on the desk's engine."""
    seen: list[int] = []
    event.listen(desk.svc.engine, "commit", lambda conn: seen.append(1))
    return seen


def states(desk: Desk) -> list[tuple]:
    return desk.home.query("SELECT state, ticket_number FROM spool ORDER BY id")


def test_pending_mails_share_one_transaction_and_each_gets_its_ticket(desk):
    ids = spooled(desk, "Printer", "Scanner", "Mouse")
    counted = commits(desk)
    [done] = list(pipeline.batches(desk.svc, ids))
    assert [d.result.ticket for d in done] == [10000, 10001, 10002]
    assert len(counted) == 1
    assert states(desk) == [("processed", 10000), ("processed", 10001), ("processed", 10002)]
    assert len(desk.outbox("mario@acme.it")) == 3


def test_a_failing_mail_fails_alone_and_the_rest_of_its_batch_commits(desk, monkeypatch):
    real = pipeline.steps

    def fragile(run):
        if run.mail.subject == "Scanner":
            raise RuntimeError("simulated bug on the scanner mail")
        return real(run)

    monkeypatch.setattr(pipeline, "steps", fragile)
    ids = spooled(desk, "Printer", "Scanner", "Mouse")
    results = pipeline.process_pending(desk.svc)
    assert [r.state for r in results] == ["processed", "failed", "processed"]
    rows = desk.home.query("SELECT state, attempts, error FROM spool ORDER BY id")
    assert [r[0] for r in rows] == ["processed", "failed", "processed"]
    assert rows[1][1] == 1 and "simulated bug on the scanner mail" in rows[1][2]
    # Nothing of the failed mail stays: no ticket, no auto-reply for it.  Nor of the
    # transaction its failure rolled back: the Printer mail was processed again, and
    # the numbers have no gap.
    assert [(t.number, t.subject) for t in desk.tickets()] == [(10000, "Printer"),
                                                                (10001, "Mouse")]
    assert len(desk.outbox("mario@acme.it")) == 2

    monkeypatch.undo()
    assert spool.retry(desk.svc.engine) == [ids[1]]
    [retried] = pipeline.process_pending(desk.svc)
    assert (retried.outcome, retried.ticket) == ("created", 10002)


def test_a_failing_mail_costs_its_batch_one_transaction_more(desk, monkeypatch):
    # Mails share the transaction without a savepoint each; the one that raised runs
    # again, in a savepoint of its own, in a new transaction with the others.
    real = pipeline.steps
    monkeypatch.setattr(pipeline, "steps", lambda run: real(run) if run.mail.subject != "Scanner"
                        else 1 / 0)
    ids = spooled(desk, "Printer", "Scanner", "Mouse")
    counted = commits(desk)
    [done] = list(pipeline.batches(desk.svc, ids))
    assert [(d.spool_id, d.result.state) for d in done] == [
        (ids[0], "processed"), (ids[1], "failed"), (ids[2], "processed")]
    assert len(counted) == 1
    assert "ZeroDivisionError" in desk.home.query(
        "SELECT error FROM spool WHERE id = ?", ids[1])[0][0]


def test_what_a_mail_changes_on_a_ticket_is_kept_when_the_next_one_runs(tmp_path, monkeypatch):
    # The next mail of the batch starts from what the database holds: a staff
    # command's change to the ticket must have been written by then.
    monkeypatch.setattr(pipeline, "BATCH_SECONDS", 60.0)
    desk = Desk(tmp_path, extra_config=NO_AUTH)
    spooled(desk, "Printer")
    [opened] = pipeline.process_pending(desk.svc)
    ids = [spooled_mail(desk, mail("alice@example.com", f"Re: [#{opened.ticket}] Printer",
                                   "#status resolved\n\nThe fuser is new.\n")),
           spooled_mail(desk, mail("alice@example.com", f"Re: [#{opened.ticket}] Printer",
                                   "#time 30m\n"))]
    counted = commits(desk)
    [done] = list(pipeline.batches(desk.svc, ids))
    assert [d.result.state for d in done] == ["processed", "processed"]
    assert len(counted) == 1
    [ticket] = desk.tickets()
    assert (ticket.status, ticket.time_spent_hours) == ("resolved", 0.5)


def test_an_unparsable_mail_is_failed_with_its_traceback(desk, monkeypatch):
    real = pipeline.parse

    def picky(raw):
        if b"Scanner" in raw:
            raise ValueError("parser gave up on the scanner mail")
        return real(raw)

    monkeypatch.setattr(pipeline, "parse", picky)
    spooled(desk, "Printer", "Scanner")
    assert [r.state for r in pipeline.process_pending(desk.svc)] == ["processed", "failed"]
    [(state, error)] = desk.home.query("SELECT state, error FROM spool WHERE state = 'failed'")
    assert "ValueError: parser gave up on the scanner mail" in error


def test_a_database_failure_leaves_the_whole_batch_pending(desk, monkeypatch):
    real = pipeline.steps

    def unavailable(run):
        if run.mail.subject == "Mouse":
            raise OperationalError("INSERT …", {}, Exception("disk I/O error"))
        return real(run)

    monkeypatch.setattr(pipeline, "steps", unavailable)
    ids = spooled(desk, "Printer", "Mouse")
    with pytest.raises(OperationalError):
        list(pipeline.batches(desk.svc, ids))
    assert states(desk) == [("pending", None), ("pending", None)]
    assert desk.tickets() == [] and desk.outbox() == []


def test_a_batch_commits_as_soon_as_intake_has_a_commit_due(desk):
    ids = spooled(desk, "Printer", "Scanner", "Mouse")
    due = iter([False, True, False])  # the listener starts waiting during the second mail
    counted = commits(desk)
    done = list(pipeline.batches(desk.svc, ids, intake_due=lambda: next(due)))
    assert [[d.result.ticket for d in batch] for batch in done] == [[10000, 10001], [10002]]
    assert len(counted) == 2


def test_a_batch_is_bounded_by_size(desk, monkeypatch):
    monkeypatch.setattr(pipeline, "BATCH_SIZE", 2)
    ids = spooled(desk, *(f"Request {n}" for n in range(5)))
    sizes = [len(batch) for batch in pipeline.batches(desk.svc, ids)]
    assert sizes == [2, 2, 1]
    assert [s for s, _ in states(desk)] == ["processed"] * 5


def test_a_stop_between_batches_leaves_the_rest_pending(desk, monkeypatch):
    monkeypatch.setattr(pipeline, "BATCH_SIZE", 2)
    ids = spooled(desk, *(f"Request {n}" for n in range(5)))
    batches, stopping = pipeline.batches(desk.svc, ids, stop=lambda: bool(stopping)), []
    assert len(next(batches)) == 2
    stopping.append(True)
    assert list(batches) == []
    assert [s for s, _ in states(desk)] == ["processed"] * 2 + ["pending"] * 3


def test_a_batch_is_bounded_in_time(desk, monkeypatch):
    monkeypatch.setattr(pipeline, "BATCH_SECONDS", 0.0)  # every mail is past the bound
    ids = spooled(desk, "Printer", "Scanner")
    assert [len(batch) for batch in pipeline.batches(desk.svc, ids)] == [1, 1]


@pytest.mark.skipif(dbs.POSTGRESQL, reason="PostgreSQL locks rows: there the turn is open")
def test_while_another_writer_has_the_turn_the_next_mails_are_parsed(desk, monkeypatch):
    # On SQLite a worker that finds the turn taken (the outbox, another worker) reads
    # and parses the mails of its next batch instead of waiting idle, then processes
    # them in order as soon as the turn is free.
    monkeypatch.setattr(pipeline, "BATCH_SIZE", 2)
    ids = spooled(desk, *(f"Request {n}" for n in range(4)))
    gate = IntakeFirst(enabled=True)
    svc, other = replace(desk.svc, turn=Turns(desk.svc.engine, gate)), Turns(desk.svc.engine, gate)
    prepared, real = [], pipeline.prepare
    monkeypatch.setattr(pipeline, "prepare",
                        lambda svc, spool_id: prepared.append(spool_id) or real(svc, spool_id))
    sizes: list[int] = []
    worker = threading.Thread(
        target=lambda: sizes.extend(len(b) for b in pipeline.batches(svc, ids)))
    with other():
        worker.start()
        deadline = time.monotonic() + 10
        while len(prepared) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert prepared == ids, "the worker waited idle for its turn"
        assert [s for s, _ in states(desk)] == ["pending"] * 4
    worker.join(10)
    assert sizes == [2, 2]
    assert [t for _, t in states(desk)] == [10000, 10001, 10002, 10003]
