"""Durations as written in the configuration: ``"60s"``, ``"30m"``, ``"4h"``, ``"2d"``."""

from __future__ import annotations

import re
from datetime import timedelta

_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_duration(text: str) -> timedelta:
    """``"1h30m"`` to a timedelta; raises ValueError on anything else."""
    compact = text.strip().lower().replace(" ", "")
    parts = _PART.findall(compact)
    if not compact or "".join(n + u for n, u in parts) != compact:
        raise ValueError(f"{text!r} is not a duration like 30s, 15m, 4h, 2d or 1h30m")
    total = timedelta()
    try:
        for number, unit in parts:
            total += timedelta(**{_UNITS[unit]: float(number)})
    except OverflowError as exc:  # past timedelta's 999,999,999 days
        raise ValueError(f"{text!r} is longer than any duration can be") from exc
    return total
