"""durations.parse_duration: "30s", "15m", "4h", "2d", "1h30m"; anything else is an error."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mailgate.durations import parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("60s", timedelta(seconds=60)),
        ("30m", timedelta(minutes=30)),
        ("4h", timedelta(hours=4)),
        ("2d", timedelta(days=2)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("0.5h", timedelta(minutes=30)),
        (" 1h 30m ", timedelta(minutes=90)),
    ],
)
def test_valid_durations(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "5", "5x", "h", "1h30", "-5m"])
def test_invalid_durations(text):
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)
