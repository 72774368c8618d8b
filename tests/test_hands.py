"""hands and workers.take: a pending row is taken in hand by one worker, which alone
reads and parses it; rows that their worker leaves go to another one."""

from __future__ import annotations

import multiprocessing

from mailgate.hands import SLOTS, Hands
from mailgate.workers import share, take
from tests.desk import Desk
from tests.helpers import mail

CONTEXT = multiprocessing.get_context("spawn")


def spooled(desk: Desk, count: int) -> list[int]:
    """``count`` pending rows, not processed."""
    return [desk.spool(mail("mario@acme.it", f"Request {n}"), mail_from="mario@acme.it")
            for n in range(count)]


def test_a_worker_sees_what_the_others_hold_and_not_its_own():
    hands = Hands(3, CONTEXT)
    assert hands.hold(1, [4, 5]) == [4, 5]
    assert hands.hold(2, [9]) == [9]
    assert hands.others(0) == {4, 5, 9}
    assert hands.others(1) == {9}
    hands.release(1)
    assert hands.others(0) == {9}


def test_an_id_two_workers_take_at_once_is_kept_by_one_at_most():
    hands = Hands(2, CONTEXT)
    assert hands.hold(0, [7, 8]) == [7, 8]
    # Worker 1 looked before worker 0 wrote, and writes 7 too: it sees 0's and drops it.
    assert hands.hold(1, [7, 11]) == [11]
    assert hands.others(0) == {11}


def test_a_worker_holds_one_look_at_most():
    hands = Hands(2, CONTEXT)
    ids = list(range(1, SLOTS + 20))
    assert hands.hold(0, ids) == ids[:SLOTS]
    assert hands.others(1) == set(ids[:SLOTS])


def test_each_worker_takes_its_own_rows_first():
    free = [10, 11, 12, 13, 14]
    assert share(free, 0, 2, set()) == [10, 12, 14]
    assert share(free, 1, 2, set()) == [11, 13]


def test_rows_left_since_the_last_look_go_to_a_worker_with_none_of_its_own():
    # Worker 0 may be busy with a long message or gone: its rows still get processed,
    # but only once it has had the time to take them.
    assert share([10, 12], 1, 2, set()) == []
    assert share([10, 12], 1, 2, {10}) == [10]
    assert share([], 1, 2, {10}) == []


def test_rows_a_worker_holds_are_not_taken_by_another(tmp_path):
    desk = Desk(tmp_path)
    ids = spooled(desk, 5)
    hands = Hands(2, CONTEXT)
    # Worker 0 took them all while mail arrived (one worker works then).
    assert take(desk.svc.engine, hands, 0, 1, set()) == (ids, ids)
    # Intake is quiet: worker 1 joins, and finds nothing free, however long it looks.
    assert take(desk.svc.engine, hands, 1, 2, set(ids)) == ([], [])
    hands.release(0)  # worker 0 was stopped between two transactions
    free, plan = take(desk.svc.engine, hands, 1, 2, set(ids))
    assert free == ids and plan == [i for i in ids if i % 2 == 1]


def test_held_rows_do_not_hide_the_next_free_ones(tmp_path):
    desk = Desk(tmp_path)
    ids = spooled(desk, SLOTS + 3)
    hands = Hands(2, CONTEXT)
    assert take(desk.svc.engine, hands, 0, 1, set())[1] == ids[:SLOTS]
    free, plan = take(desk.svc.engine, hands, 1, 2, set())
    assert free == ids[SLOTS:] and plan == [i for i in ids[SLOTS:] if i % 2 == 1]
