"""SMTP clients of the bench: the corpus over several connections as fast as the server
acknowledges, or at a fixed offered rate for the latency figures.

Each connection is a thread with its own ``smtplib`` session; they take mails from one
shared feed, so the server receives them in about corpus order.  The latency of a mail
is measured from the moment it was due to the server's 250 after DATA; at a fixed rate
a mail that waits for a free connection counts its wait too (no coordinated omission).
"""

from __future__ import annotations

import contextlib
import math
import smtplib
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from home import MAILBOX

RETRIES = 5
RETRY_PAUSE = 1.0  # seconds; Postfix waits minutes, but the bench wants its figure


@dataclass
class Sent:
    """What a sending run achieved."""

    acked: int = 0
    refused: list[str] = field(default_factory=list)  # every refusal, retried or not
    latencies: list[float] = field(default_factory=list)  # seconds, per acknowledged mail
    started: float = 0.0
    ended: float = 0.0
    gave_up: bool = False  # a fixed rate could not be kept up (see _Feed.next)

    @property
    def seconds(self) -> float:
        """From the first mail due to the last reply."""
        return self.ended - self.started


class _Feed:
    """The mails to send, handed out one at a time to the sessions (streamed: a soak
    of 100,000 mails is never in memory at once)."""

    def __init__(self, mails: Iterable[tuple[str, bytes]], rate: float | None,
                 max_lag: float | None):
        self.mails, self.rate, self.max_lag = iter(mails), rate, max_lag
        self.start, self.index, self.lock = 0.0, 0, threading.Lock()
        self.gave_up = False

    def next(self) -> tuple[float | None, str, bytes] | None:
        """(the moment it is due, or None: now; sender; raw), or None when done.  At a
        fixed rate the feed stops when the mail due now is ``max_lag`` seconds late: the
        server cannot take the rate, and waiting longer only makes the queue longer."""
        with self.lock:
            due = self.start + self.index / self.rate if self.rate else None
            if due is not None and self.max_lag and time.monotonic() - due > self.max_lag:
                self.gave_up = True
                return None
            mail = next(self.mails, None)
            if mail is None:
                return None
            self.index += 1
        return due, *mail


def send(port: int, mails: Iterable[tuple[str, bytes]], *, connections: int = 8,
         rate: float | None = None, max_lag: float | None = None,
         timeout: float = 120) -> Sent:
    """Send ``(envelope sender, raw)`` pairs over ``connections`` sessions; with ``rate``
    (mails/s) mail i is due at ``start + i / rate``, else as soon as a session is free.
    The clock starts once every session is connected, so that the first mails are not
    overtaken by those of sessions that connected sooner."""
    result, lock = Sent(), threading.Lock()
    feed = _Feed(mails, rate, max_lag)

    def start_clock() -> None:
        """Run once, when every session is connected."""
        result.started = feed.start = time.monotonic()

    ready = threading.Barrier(connections, action=start_clock)
    threads = [threading.Thread(target=_session, daemon=True,
                                args=(port, feed, result, lock, timeout, ready))
               for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.ended = time.monotonic()
    result.gave_up = feed.gave_up
    return result


def _session(port: int, feed: _Feed, result: Sent, lock: threading.Lock, timeout: float,
             ready: threading.Barrier) -> None:
    client = None
    try:
        with contextlib.suppress(smtplib.SMTPException, OSError):
            client = _connect(port, timeout)  # else _deliver connects (and counts the failure)
        ready.wait()
        while (item := feed.next()) is not None:
            due, sender, raw = item
            if due is not None and due > time.monotonic():
                time.sleep(due - time.monotonic())
            begun = time.monotonic() if due is None else due
            client, accepted = _deliver(client, port, sender, raw, result, lock, timeout)
            if accepted:
                with lock:
                    result.acked += 1
                    result.latencies.append(time.monotonic() - begun)
    finally:
        if client is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                client.quit()


def _deliver(client: smtplib.SMTP | None, port: int, sender: str, raw: bytes, result: Sent,
             lock: threading.Lock, timeout: float) -> tuple[smtplib.SMTP | None, bool]:
    """Send one mail as an MTA would: a 4xx reply or a lost connection is retried after
    a pause (up to RETRIES times), a 5xx is final.  The session to go on with, and
    whether the mail was accepted."""
    for attempt in range(RETRIES + 1):
        try:
            client = client or _connect(port, timeout)
            client.sendmail(sender, [MAILBOX], raw)
            return client, True
        except smtplib.SMTPResponseException as exc:
            with lock:
                result.refused.append(f"{exc.smtp_code} {exc.smtp_error!r}")
            if exc.smtp_code < 400 or exc.smtp_code >= 500 or attempt == RETRIES:
                return client, False
        except (smtplib.SMTPException, OSError) as exc:
            with lock:
                result.refused.append(f"connection: {exc}")
            client = None
        time.sleep(RETRY_PAUSE)
    return client, False


def _connect(port: int, timeout: float) -> smtplib.SMTP:
    client = smtplib.SMTP("127.0.0.1", port, local_hostname="bench.example", timeout=timeout)
    client.ehlo("bench.example")
    return client


def percentile(values: list[float], pct: float) -> float | None:
    """The ``pct`` percentile (nearest rank) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]
