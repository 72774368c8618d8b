"""The pipeline alone, in this process: ``python bench/inproc.py [N]``.

Spools N corpus mails (default 300) into a fresh bench home and runs
``pipeline.process_pending`` on them (batches of transactions, as the daemon
runs them), with no SMTP, no daemon and no other writer: the CPU a
mail costs the pipeline and nothing else.  Prints wall and CPU milliseconds a mail.
For a profile, run it under py-spy (``py-spy record -r 500 -o out.svg -- python
bench/inproc.py 600``).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import corpus
from home import MAILBOX, make_home

from mailgate import bootstrap, config, pipeline, spool
from mailgate.db import session_scope
from mailgate.senders import sync


def main() -> None:
    """Spool, process, report."""
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    home = make_home(Path(tempfile.mkdtemp(prefix="mailgate-inproc-")) / "home")
    os.chdir(home.root)  # the config's relative paths
    svc = bootstrap.build(config.load(home.config))
    with session_scope(svc.engine) as session:
        sync(session, svc.policy)  # the companies, as serve does at start
    now = datetime.now(UTC)
    spool.intake_many(svc.engine, [spool.Incoming(m.raw, "smtp", m.sender, [MAILBOX], now)
                                   for m in corpus.generate(count, 8)])
    wall, cpu = time.perf_counter(), time.process_time()
    done = len(pipeline.process_pending(svc))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{done} mails in {wall:.2f} s: {wall / done * 1000:.1f} ms a mail, "
          f"{cpu / done * 1000:.1f} ms of CPU ({home.root})")


if __name__ == "__main__":
    main()
