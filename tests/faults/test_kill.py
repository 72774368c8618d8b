"""SIGKILL of ``mailgate serve`` at random moments of floods over several connections,
again and again, restarting each time: what got a 250 is processed once, and what the
senders retry (as MTAs do, for the mail that got no answer) is processed once too.

Short: 3 kills in floods of 150 mails.  Long: 10 kills in floods of 5,000.
"""

from __future__ import annotations

import os
import random
import signal

import pytest

from tests.faults.traffic import numbered, processed, send_all, send_patiently
from tests.helpers import serving, start_serve
from tests.ledger import count

pytestmark = pytest.mark.e2e


def test_sigkill_at_random_moments_of_floods_loses_and_doubles_nothing(home, scale, report):
    kills, size = scale((3, 150), (10, 5000))
    seed = int(os.environ.get("MAILGATE_FAULT_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    sent, acked = [], set()
    for round_ in range(kills):
        msgs = numbered(f"k{round_}", size)
        proc = start_serve(home)
        # A moment picked by progress, not by time: somewhere in the flood, however
        # fast or slow the machine is; processing runs alongside, so it is hit too.
        moment = rng.randrange(1, size)

        def kill_at(total: int, proc=proc, moment=moment) -> None:
            if total == moment and proc.poll() is None:
                proc.send_signal(signal.SIGKILL)

        acked |= send_all(home.port, msgs, connections=4, on_ack=kill_at)
        assert proc.wait(timeout=60) == -signal.SIGKILL, "the kill did not land in the flood"
        sent += msgs
    first_try = len(acked)

    with serving(home):
        # The sending MTAs try again what got no 250: some of it is in the spool already
        # (committed, then killed before the reply) and must not become a second ticket.
        unanswered = [m for m in sent if m["Message-ID"] not in acked]
        retried = send_patiently(home.port, unanswered)
        assert len(retried) == len(unanswered)
        spooled = home.query("SELECT count(*) FROM spool")[0][0]
        processed(home, spooled, timeout=scale(120, 1800))

    figures = count(home.query, [m["Message-ID"] for m in sent], acked | retried)
    figures.notes.update(kills=kills, acknowledged_before_kill=first_try,
                         retried=len(retried), seed=seed)
    report(figures)
    assert figures.processed == figures.sent
