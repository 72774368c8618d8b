"""End to end (issue 8, point 3): the corpus over several SMTP connections into
``mailgate serve``, timed until every mail is processed and every mail it caused has
left the outbox (the auto-reply to each request is a file in the Maildir); and the
acknowledgement latency at a fixed offered rate.

``e2e_msgs_per_s`` counts from the first mail sent to the moment the database shows
nothing pending and nothing queued (the outbox Maildir holds every mail);
``e2e_processed_msgs_per_s`` stops at nothing pending (the mails are queued in the
outbox table), and ``e2e_outbox_lag_s`` is the time between the two.
``ack_p50_ms``/``ack_p99_ms`` are measured while the daemon processes what it
receives, as it does in production; ``bare_ack_p50_ms``/``bare_ack_p99_ms`` are the
same mails at the same rate into the bare aiosmtpd sink.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from functools import partial

import corpus
import intake
import procmem
import smtpsend
from home import Home, Homes, Serve

CONNECTIONS = 8
ACK_RATE = 200.0  # mails/s offered for the latency figures
ACK_CONNECTIONS = 16
ACK_MAX_LAG = 10.0  # seconds: a server this far behind the offered rate is saturated


def pairs(mails: list[corpus.Mail], count: int | None = None, tag: str = ""):
    """``(envelope sender, raw)`` for ``count`` mails, made as they are sent: the corpus
    again and again with fresh Message-IDs when it is shorter (``tag`` makes them
    unique across the runs of one home)."""
    count = len(mails) if count is None else count
    for i in range(count):
        mail = mails[i % len(mails)]
        raw = mail.raw
        if i >= len(mails) or tag:
            raw = corpus.renamed(raw, f"<{tag}r{i}.{mail.message_id[1:]}")
        yield mail.sender, raw


def run_corpus(home: Home, mails: list[corpus.Mail], connections: int = CONNECTIONS,
               observe=None) -> dict:
    """Send ``mails`` into a fresh ``serve`` of ``home``; wait until all is done.
    ``observe(pid)``, when given, is a context manager around the load (a profiler)."""
    before = home.last_spool_id()
    outbox_before = home.query("SELECT coalesce(max(id), 0) FROM outbox")[0][0]
    with Serve(home) as serve, observe(serve.pid) if observe else nullcontext():
        cpu = _CpuTime(serve.pid)
        sent = smtpsend.send(home.port, pairs(mails), connections=connections)
        processed, done = home.wait_done(sent.acked, timeout=max(600.0, len(mails) / 2),
                                         after=before)
        used = cpu.used()
    seconds = done - sent.started
    templates = dict(home.query("SELECT template, count(*) FROM outbox WHERE id > ? "
                                "GROUP BY template", outbox_before))
    return {
        "msgs_per_s": round(sent.acked / seconds, 1),
        "seconds": round(seconds, 2),
        "processed_msgs_per_s": round(sent.acked / (processed - sent.started), 1),
        "outbox_lag_s": round(done - processed, 2),
        "acked": sent.acked,
        "refusals": sent.refused,
        "intake_msgs_per_s": round(sent.acked / sent.seconds, 1),
        "outcomes": home.outcomes(before),
        "outbox": templates,
        "cpu_ms_per_mail": {name: round(secs * 1000 / max(sent.acked, 1), 2)
                            for name, secs in used.items()},
    }


class _CpuTime:
    """CPU seconds used from now on by ``serve``'s own process (listener, outbox), by
    its worker processes, and by this one (the SMTP senders): where the two cores go."""

    def __init__(self, pid: int):
        self.pid = pid
        self.start = self._now()

    def _now(self) -> dict[str, float]:
        return {"serve": procmem.cpu_seconds(self.pid),
                "workers": sum(procmem.cpu_seconds(p) for p in procmem.descendants(self.pid)),
                "senders": time.process_time()}

    def used(self) -> dict[str, float]:
        """Seconds used since this was made, per part."""
        return {k: v - self.start[k] for k, v in self._now().items()}


def ack_latency(homes: Homes, mails: list[corpus.Mail], count: int) -> dict:
    """p50/p99 of the time from a mail being due to its 250, at ``ACK_RATE`` offered,
    on a fresh home; then the same mails at the same rate into the bare aiosmtpd sink
    (``bare_ack_*``): what SMTP alone costs, the floor of the figure on this machine."""
    home = homes.new("ack")
    with Serve(home):
        sent = _at_rate(home.port, mails, count)
    with intake.sink(count) as port:
        bare = _at_rate(port, mails, count)
    figures = {
        **_percentiles(sent, "ack"),
        "ack_offered_per_s": ACK_RATE,
        "ack_achieved_per_s": round(sent.acked / sent.seconds, 1),
        "ack_messages": sent.acked,
        # The rate was not kept: the percentiles then measure a queue that only grows.
        "ack_saturated": sent.gave_up or sent.acked / sent.seconds < 0.95 * ACK_RATE,
        "ack_refusals": len(sent.refused),
    }
    return figures | _percentiles(bare, "bare_ack")


def _at_rate(port: int, mails: list[corpus.Mail], count: int) -> smtpsend.Sent:
    return smtpsend.send(port, pairs(mails, count), rate=ACK_RATE, max_lag=ACK_MAX_LAG,
                         connections=ACK_CONNECTIONS)


def _percentiles(sent: smtpsend.Sent, prefix: str) -> dict:
    """``PREFIX_p50_ms``, ``_p99_ms`` and ``_max_ms`` of the acknowledgement latencies."""
    figures = {}
    for name, value in (("p50", smtpsend.percentile(sent.latencies, 50)),
                        ("p99", smtpsend.percentile(sent.latencies, 99)),
                        ("max", max(sent.latencies, default=None))):
        figures[f"{prefix}_{name}_ms"] = round(value * 1000, 1) if value is not None else None
    return figures


def steps(homes: Homes, mails: list[corpus.Mail], quick: bool, observe=None) -> list:
    """Throughput on the corpus, then latency at the fixed rate, each on a fresh home
    and on its own; ``observe`` as for ``run_corpus``."""
    return [partial(throughput, homes, mails, observe),
            partial(ack_latency, homes, mails, 400 if quick else 3000)]


def throughput(homes: Homes, mails: list[corpus.Mail], observe=None) -> dict:
    """The e2e figures of the corpus on a fresh home."""
    run = run_corpus(homes.new("e2e"), mails, observe=observe)
    expected = sum(m.kind != corpus.REPLY for m in mails)
    return {
        "e2e_msgs_per_s": run["msgs_per_s"],
        "e2e_seconds": run["seconds"],
        "e2e_processed_msgs_per_s": run["processed_msgs_per_s"],
        "e2e_outbox_lag_s": run["outbox_lag_s"],
        "e2e_messages": run["acked"],
        "e2e_refusals": len(run["refusals"]),
        "e2e_first_refusal": run["refusals"][0] if run["refusals"] else None,
        "e2e_connections": CONNECTIONS,
        "e2e_intake_msgs_per_s": run["intake_msgs_per_s"],
        "e2e_outcomes": run["outcomes"],
        "e2e_outbox": run["outbox"],
        "e2e_auto_replies_expected": expected,
        "e2e_cpu_ms_per_mail": run["cpu_ms_per_mail"],
    }
