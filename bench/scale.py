"""Scale (issue 8, point 5): end-to-end throughput on the corpus with a million tickets
already in the database, to compare with the empty database of ``e2e.py``.

The archive is made by ``preload.py`` after ``serve`` has synchronised the companies
(it does so at start), then the corpus runs exactly as in ``e2e.run_corpus``.
"""

from __future__ import annotations

import time

import corpus
import preload
from e2e import run_corpus
from home import Homes, Serve


def measure(homes: Homes, mails: list[corpus.Mail], tickets: int) -> dict:
    """``e2e_msgs_per_s_1m_tickets`` with ``tickets`` archived tickets preloaded."""
    home = homes.new("scale")
    with Serve(home, "--intake-only"):
        pass  # serve writes the companies of rules/companies.toml into the database
    started = time.monotonic()
    preload.preload(home.db_path, tickets)
    loaded = time.monotonic() - started
    run = run_corpus(home, mails)
    return {
        "e2e_msgs_per_s_1m_tickets": run["msgs_per_s"],
        "preloaded_tickets": tickets,
        "preload_seconds": round(loaded, 1),
        "scale_outcomes": run["outcomes"],
        "scale_refusals": len(run["refusals"]),
    }
