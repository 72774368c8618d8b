"""Memory and CPU time of a process tree from /proc (Linux): ``serve`` and any worker
processes it starts count together, since together they are what the machine must
hold."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def descendants(pid: int) -> list[int]:
    """The ids of every living descendant of ``pid`` (children first)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # The command name may hold spaces and parentheses: split after the last ")".
            stat = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        children.setdefault(int(stat[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        kids = children.get(todo.pop(0), [])
        found += kids
        todo += kids
    return found


def status_kb(pid: int, field: str) -> int:
    """A ``kB`` field of /proc/PID/status (VmRSS, VmHWM …); 0 for a process gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds ``pid`` has used so far; 0 for a process gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    # Fields 14 and 15 of proc(5), utime and stime, in clock ticks.
    return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")


def tree_kb(pid: int, field: str) -> int:
    """``field`` summed over ``pid`` and its descendants.  For VmHWM this is an upper
    bound of the tree's peak: the processes need not peak at the same moment."""
    return sum(status_kb(p, field) for p in [pid, *descendants(pid)])


def kill_all(pids: list[int], sig: int) -> None:
    """Send ``sig`` to each of ``pids`` that still exists."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
