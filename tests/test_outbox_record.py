"""The result of a send is recorded even when the database is busy right after it:
a lost ``sent`` would let the lease run out and the mail go a second time."""

from __future__ import annotations

import threading

from mailgate.outbound import send
from tests.desk import Desk
from tests.helpers import mail


class LockingTransport:
    """Delivers (to a list), then leaves the database unavailable for a while, as a
    burst of other writers does, right when the worker records the result."""

    def __init__(self, desk: Desk, seconds: float):
        self.desk, self.seconds, self.sent = desk, seconds, []
        self.holders: list[threading.Thread] = []

    def send(self, row) -> None:
        self.sent.append(row.id)
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
