"""outbound.send.backoff: 30 s doubling per failed attempt, never more than one hour."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mailgate.outbound.send import backoff


@pytest.mark.parametrize(
    ("attempts", "seconds"),
    [(0, 30), (1, 30), (2, 60), (3, 120), (4, 240), (7, 1920), (8, 3600), (20, 3600)],
)
def test_backoff_doubles_up_to_one_hour(attempts, seconds):
    assert backoff(attempts) == timedelta(seconds=seconds)


def test_backoff_after_many_attempts_stays_one_hour():
    assert backoff(60) == timedelta(hours=1)
