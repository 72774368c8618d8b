"""A small sd_notify(3) client: one datagram per call to ``$NOTIFY_SOCKET``.

Written here rather than taken as a dependency (ARCHITECTURE "Ecosystem
conventions").  Outside systemd the variable is unset and every call is a no-op.
"""

from __future__ import annotations

import os
import socket
import time


def _address(value: str) -> str | bytes:
    """A path as is; ``@name`` is an abstract socket (a leading NUL byte)."""
    return b"\0" + value[1:].encode() if value.startswith("@") else value


def notify(*fields: str) -> bool:
    """Send ``fields`` (``"READY=1"``, ``"STATUS=…"``) as one message; False when
    ``$NOTIFY_SOCKET`` is unset or the send fails."""
    target = os.environ.get("NOTIFY_SOCKET")
    if not target or not fields:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto("\n".join(fields).encode(), _address(target))
    except OSError:
        return False
    return True


def watchdog_interval() -> float | None:
    """Seconds systemd expects between ``WATCHDOG=1`` pings, or None when the
    watchdog is off (unset, invalid, zero, or meant for another process)."""
    pid = os.environ.get("WATCHDOG_PID")
    if pid and pid.strip() != str(os.getpid()):
        return None
    try:
        usec = int(os.environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    return usec / 1_000_000 if usec > 0 else None


def monotonic_usec() -> int:
    """CLOCK_MONOTONIC in microseconds, as ``MONOTONIC_USEC=`` wants it."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def reloading() -> bool:
    """``RELOADING=1`` with the ``MONOTONIC_USEC`` that Type=notify-reload requires."""
    return notify("RELOADING=1", f"MONOTONIC_USEC={monotonic_usec()}")
