"""The result of a send is recorded even when the database is busy right after it:
a lost ``sent`` would let the lease run out and the mail go a second time."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import event

from mailgate.intakefirst import IntakeFirst
from mailgate.outbound import send
from mailgate.turns import Turns
from tests import dbs
from tests.desk import Desk
from tests.helpers import mail


class LockingTransport(send.Transport):
    """Delivers (to a list); the first delivery then leaves the database unavailable
    for a while, as a burst of other writers does, so that the worker meets it when it
    records the results of its batch."""

    def __init__(self, desk: Desk, seconds: float):
        self.desk, self.seconds, self.sent = desk, seconds, []
        self.holders: list[threading.Thread] = []

    def send(self, row) -> None:
        self.sent.append(row.id)
        if self.holders:
            return  # unavailable already
        held = threading.Event()

        def hold():
            with self.desk.home.database_unavailable():
                held.set()
                threading.Event().wait(self.seconds)

        holder = threading.Thread(target=hold)
        holder.start()
        held.wait(10)
        self.holders.append(holder)


def test_a_busy_database_after_the_send_delays_the_record_but_sends_once(tmp_path):
    desk = Desk(tmp_path)
    desk.deliver(mail("mario@acme.it", "Printer"))
    cfg = desk.svc.config.outbound
    transport = LockingTransport(desk, seconds=6.0)  # past the 5 s busy timeout
    try:
        handled = send.drain(desk.svc.engine, transport, cfg, desk.clock())
    finally:
        for holder in transport.holders:
            holder.join()
    assert handled == 2  # the auto reply and the staff mail
    later = desk.clock.now + send.SEND_LEASE * 2  # long after any lease ran out
    assert send.drain(desk.svc.engine, transport, cfg, later) == 0
    assert len(transport.sent) == len(set(transport.sent)) == 2
    assert desk.home.query("SELECT state, attempts FROM outbox") == [("sent", 1)] * 2


class StoppingTransport(send.Transport):
    """Delivers to a list; the daemon is told to stop during the first send."""

    def __init__(self):
        self.sent: list[int] = []
        self.stopping = False

    def send(self, row) -> None:
        self.sent.append(row.id)
        self.stopping = True


def test_a_stop_during_a_batch_gives_back_what_was_not_sent(tmp_path):
    desk = Desk(tmp_path)
    for n in range(3):
        desk.deliver(mail(f"user{n}@acme.it", f"Request {n}"))
    cfg, transport = desk.svc.config.outbound, StoppingTransport()
    send.drain(desk.svc.engine, transport, cfg, desk.clock(), stop=lambda: transport.stopping)
    assert len(transport.sent) == 1
    # The others are queued and due now, with no attempt counted: the next start sends
    # them at once, not after the five-minute lease.
    rows = desk.home.query("SELECT state, attempts FROM outbox ORDER BY id")
    assert rows.count(("sent", 1)) == 1 and rows.count(("queued", 0)) == len(rows) - 1
    transport.stopping = False
    send.drain(desk.svc.engine, transport, cfg, desk.clock())
    every = [row_id for (row_id,) in desk.home.query("SELECT id FROM outbox ORDER BY id")]
    assert sorted(transport.sent) == every
    assert desk.home.query("SELECT DISTINCT state, attempts FROM outbox") == [("sent", 1)]


class ListTransport(send.Transport):
    """Delivers to a list."""

    def __init__(self):
        self.sent: list[int] = []

    def send(self, row) -> None:
        self.sent.append(row.id)


@pytest.mark.skipif(dbs.POSTGRESQL, reason="PostgreSQL locks rows: there the turn is open")
def test_the_outbox_waits_for_a_pipeline_workers_turn(tmp_path):
    # On SQLite the outbox takes the same turns as the pipeline workers (turns.py): it
    # queues behind a worker's transaction instead of sleeping in SQLite's busy handler.
    desk = Desk(tmp_path)
    desk.deliver(mail("mario@acme.it", "Printer"))
    gate = IntakeFirst(enabled=True)
    worker, outbox = Turns(desk.svc.engine, gate), Turns(desk.svc.engine, gate)
    transport, finished = ListTransport(), threading.Event()

    def drain():
        send.drain(desk.svc.engine, transport, desk.svc.config.outbound, desk.clock(),
                   turn=outbox)
        finished.set()

    with worker():
        drainer = threading.Thread(target=drain)
        drainer.start()
        assert not finished.wait(0.5), "the outbox wrote during a worker's turn"
        assert transport.sent == []
    drainer.join(10)
    assert finished.is_set() and len(transport.sent) == 2
    assert desk.home.query("SELECT state FROM outbox") == [("sent",)] * 2


def test_a_batch_is_recorded_by_the_claim_of_the_next(tmp_path):
    # On SQLite each transaction is a turn of the one write lock: a sender writes the
    # results of a batch in the transaction that claims the next one, and on their own
    # once nothing more is due.  Every mail still goes once and ends up recorded.
    desk = Desk(tmp_path)
    transport, commits = ListTransport(), []
    sender = send.Sender(desk.svc.engine, transport, desk.svc.config.outbound)

    def count(conn) -> None:
        commits.append(conn)

    def drained() -> int:
        event.listen(desk.svc.engine, "commit", count)
        try:
            return sender.drain(desk.clock())
        finally:
            event.remove(desk.svc.engine, "commit", count)

    desk.deliver(mail("mario@acme.it", "Printer"))
    assert drained() == 2  # the auto reply and the staff mail
    desk.deliver(mail("anna@acme.it", "Scanner"))
    assert drained() == 2
    assert drained() == 0
    assert len(commits) == 3  # claim; record and claim; record
    ids = [row_id for (row_id,) in desk.home.query("SELECT id FROM outbox ORDER BY id")]
    assert transport.sent == ids and len(ids) == 4
    assert desk.home.query("SELECT DISTINCT state, attempts FROM outbox") == [("sent", 1)]
