"""Memory (issue 8, point 5): the peak resident memory of ``serve`` while it takes one
mail with a 25 MB attachment, and its resident memory after a soak (a leak check).

Memory is read from /proc for ``serve`` and every process it started (VmRSS now,
VmHWM for the peak).  The baseline is the resident memory after a warm-up of ordinary
mails, so that imports and caches are not mistaken for the big mail's cost; the target
is ``peak <= baseline + 4 x the message``.  The soak sends the corpus again and again
with fresh Message-IDs; the growth is the difference between the memory after a warm-up
of a tenth of the soak and after the whole soak.
"""

from __future__ import annotations

from functools import partial

import corpus
import smtpsend
from e2e import pairs
from home import Homes, Serve

BIG = 25 * 1024 * 1024
WARMUP = 20


def big_attachment(homes: Homes, mails: list[corpus.Mail]) -> dict:
    """Peak RSS while one 25 MB attachment is received, processed and answered."""
    home, big = homes.new("big"), corpus.big_mail(BIG)
    with Serve(home) as serve:
        warm = smtpsend.send(home.port, pairs(mails[:WARMUP], tag="warm."), connections=2)
        home.wait_settled(warm.acked, timeout=300)
        baseline = serve.rss_mb()
        sent = smtpsend.send(home.port, [(big.sender, big.raw)], connections=1, timeout=300)
        if sent.acked != 1:
            raise RuntimeError(f"the big mail was refused: {sent.refused}")
        home.wait_settled(warm.acked + 1, timeout=600)
        done = home.outcomes()
        peak = serve.peak_mb()
    message_mb = len(big.raw) / 2**20
    return {
        "big_attachment_peak_rss_mb": round(peak, 1),
        "big_attachment_baseline_rss_mb": round(baseline, 1),
        "big_attachment_message_mb": round(message_mb, 1),
        "big_attachment_limit_mb": round(baseline + 4 * message_mb, 1),
        "big_attachment_seconds": round(sent.seconds, 2),
        "big_attachment_outcomes": done,
    }


def soak(homes: Homes, mails: list[corpus.Mail], count: int) -> dict:
    """RSS after a warm-up of ``count // 10`` mails and after all ``count``."""
    home, warmup = homes.new("soak"), max(count // 10, 50)
    with Serve(home) as serve:
        first = smtpsend.send(home.port, pairs(mails, warmup, tag="soak1."))
        home.wait_settled(first.acked, timeout=max(600.0, warmup))
        before = serve.rss_mb()
        rest = smtpsend.send(home.port, pairs(mails, count - warmup, tag="soak2."))
        done = home.wait_settled(first.acked + rest.acked, timeout=max(900.0, count))
        after = serve.rss_mb()
    return {
        "rss_before_soak_mb": round(before, 1),
        "rss_after_soak_mb": round(after, 1),
        "soak_growth_mb": round(after - before, 1),
        "soak_messages": first.acked + rest.acked,
        "soak_msgs_per_s": round(rest.acked / (done - rest.started), 1),
    }


def steps(homes: Homes, mails: list[corpus.Mail], soak_count: int) -> list:
    """The two memory measurements, each on its own."""
    return [partial(big_attachment, homes, mails), partial(soak, homes, mails, soak_count)]
