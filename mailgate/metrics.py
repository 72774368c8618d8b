"""``[metrics]``: ``/metrics`` for Prometheus and ``/healthz`` for load balancers.

Counts come from the database at scrape time — the spool and the outbox are the
record of everything received and sent, so the figures survive restarts and add up
across instances that share one database.  Only the processing latency is measured in
the process.  The HTTP side is a minimal HTTP/1.0 responder on asyncio: two paths,
no dependency beyond prometheus-client's text format.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from sqlalchemy import func, text
from sqlmodel import select

from mailgate.bootstrap import Services
from mailgate.db import session_scope
from mailgate.models import Outbox, Spool, Ticket

log = logging.getLogger("mailgate.metrics")

STUCK_SPOOL = timedelta(minutes=10)  # a pending message older than this: not healthy
STUCK_OUTBOX = timedelta(minutes=30)  # a mail due this long ago and not sent: not healthy


class Metrics:
    """The registry: database-backed figures plus the processing latency histogram."""

    def __init__(self, svc: Services):
        self.svc = svc
        self.registry = CollectorRegistry()
        self.registry.register(_DatabaseCollector(svc))
        self.latency = Histogram(
            "mailgate_processing_seconds", "Time to process one spooled message",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry)

    def observe(self, seconds: float) -> None:
        """Record the processing time of one message."""
        self.latency.observe(seconds)

    def exposition(self) -> bytes:
        """The Prometheus text format (queries the database)."""
        return generate_latest(self.registry)

    def health(self) -> list[str]:
        """What is wrong; empty when healthy."""
        now = self.svc.clock()
        try:
            with session_scope(self.svc.engine) as session:
                session.execute(text("SELECT 1"))
                oldest = session.exec(select(func.min(Spool.received_at))
                                      .where(Spool.state == "pending")).one()
                late = session.exec(select(func.count(Outbox.id)).where(
                    Outbox.state == "queued", Outbox.next_attempt_at < now - STUCK_OUTBOX)).one()
        except Exception as exc:  # noqa: BLE001 - any failure is the answer
            return [f"database unreachable: {type(exc).__name__}"]
        problems = []
        if oldest is not None and _aware(oldest) < now - STUCK_SPOOL:
            problems.append(f"spool stuck: a message pending since {oldest.isoformat()}")
        if late:
            problems.append(f"outbox stuck: {late} mail(s) overdue")
        return problems


def _aware(when: datetime) -> datetime:
    # A plain SQL aggregate bypasses the UTC column type: SQLite hands back naive UTC.
    return when if when.tzinfo else when.replace(tzinfo=UTC)


class _DatabaseCollector:
    """Counters and gauges read from the spool, the outbox and the tickets."""

    def __init__(self, svc: Services):
        self.svc = svc

    def collect(self):
        with session_scope(self.svc.engine) as session:
            by_door = session.exec(select(Spool.door, func.count()).group_by(Spool.door)).all()
            outcomes = session.exec(select(Spool.state, Spool.outcome)).all()
            outbox = session.exec(select(Outbox.state, Outbox.automatic, func.count())
                                  .group_by(Outbox.state, Outbox.automatic)).all()
            tickets = session.exec(select(func.count(Ticket.id))).one()
            at_risk = session.exec(select(func.count(Ticket.id)).where(
                Ticket.first_response_at.is_(None), Ticket.status.in_(("new", "open", "waiting")),
                Ticket.response_warn_at <= self.svc.clock())).one()
        yield _counter("mailgate_received", "Messages received, by door", "door", by_door)
        yield from _outcome_metrics(outcomes)
        yield _counter("mailgate_tickets_created", "Tickets opened", None, [((), tickets)])
        yield from _outbox_metrics(outbox)
        sla = GaugeMetricFamily("mailgate_sla_at_risk",
                                "Tickets past their SLA warning time and not taken in charge")
        sla.add_metric([], at_risk)
        yield sla


def _counter(name: str, doc: str, label: str | None, rows) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=[label] if label else [])
    for key, value in rows:
        family.add_metric([key] if label else [], value)
    return family


def _outcome_metrics(rows):
    """Outcome kinds (created, threaded, loop, bounce, …) and spool states."""
    kinds: dict[str, int] = {}
    states: dict[str, int] = {}
    for state, outcome in rows:
        states[state] = states.get(state, 0) + 1
        if outcome:
            kind = outcome.split(":")[0].split(",")[0].strip()
            kinds[kind] = kinds.get(kind, 0) + 1
    yield _counter("mailgate_processed", "Processed messages, by outcome", "outcome",
                   sorted(kinds.items()))
    spool = GaugeMetricFamily("mailgate_spool_messages", "Spool rows by state", labels=["state"])
    for state in ("pending", "processed", "ignored", "failed"):
        spool.add_metric([state], states.get(state, 0))
    yield spool


def _outbox_metrics(rows):
    queued = GaugeMetricFamily("mailgate_outbox_messages", "Outbox rows by state",
                               labels=["state"])
    totals: dict[str, int] = {}
    automatic = 0
    for state, is_auto, count in rows:
        totals[state] = totals.get(state, 0) + count
        automatic += count if is_auto else 0
    for state in ("queued", "sent", "failed"):
        queued.add_metric([state], totals.get(state, 0))
    yield queued
    yield _counter("mailgate_auto_mails", "Automatic mails queued", None, [((), automatic)])


async def serve(metrics: Metrics, host: str, port: int) -> asyncio.AbstractServer:
    """Listen for ``GET /metrics`` and ``GET /healthz``."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), timeout=10)
            path = request.split(b" ")[1] if request.count(b" ") >= 2 else b""
            status, body, kind = await asyncio.to_thread(_answer, metrics, path)
            head = (f"HTTP/1.0 {status}\r\nContent-Type: {kind}\r\n"
                    f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
            writer.write(head.encode() + body)
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, host, port)


def _answer(metrics: Metrics, path: bytes) -> tuple[str, bytes, str]:
    if path == b"/metrics":
        try:
            return "200 OK", metrics.exposition(), "text/plain; version=0.0.4"
        except Exception as exc:  # noqa: BLE001 - a scrape must not kill the server
            log.error("metrics scrape failed: %s", exc)
            return "503 Service Unavailable", b"database unreachable\n", "text/plain"
    if path == b"/healthz":
        problems = metrics.health()
        if problems:
            return "503 Service Unavailable", ("\n".join(problems) + "\n").encode(), "text/plain"
        return "200 OK", b"ok\n", "text/plain"
    return "404 Not Found", b"only /metrics and /healthz here\n", "text/plain"
