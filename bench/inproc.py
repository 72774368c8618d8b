"""The pipeline alone, in this process: ``python bench/inproc.py [N] [--send B]``.

Spools N corpus mails (default 300) into a fresh bench home and runs
``pipeline.process_pending`` on them (batches of transactions, as the daemon
runs them), with no SMTP, no daemon and no other writer: the CPU a
mail costs the pipeline and nothing else.  Prints wall and CPU milliseconds a mail.
With ``--send B`` it then sends the outbox those mails filled into the bench's
Maildir, B mails a batch (as the outbox process does, ``send.Sender``), and prints
the CPU a mail sent, user and system apart: the outbox's batches are small while
mail arrives (about 20 mails), and its system CPU is the file system's.
For a profile, run it under py-spy (``py-spy record -r 500 -o out.svg -- python
bench/inproc.py 600``).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import corpus
from home import MAILBOX, make_home

from mailgate import bootstrap, config, pipeline, spool
from mailgate.db import session_scope
from mailgate.outbound import send
from mailgate.senders import sync


def main() -> None:
    """Spool, process, report; then send, report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", type=int, nargs="?", default=300)
    parser.add_argument("--send", type=int, metavar="B", help="then send the outbox, B a batch")
    args = parser.parse_args()
    home = make_home(Path(tempfile.mkdtemp(prefix="mailgate-inproc-")) / "home")
    os.chdir(home.root)  # the config's relative paths
    svc = bootstrap.build(config.load(home.config))
    with session_scope(svc.engine) as session:
        sync(session, svc.policy)  # the companies, as serve does at start
    now = datetime.now(UTC)
    spool.intake_many(svc.engine, [spool.Incoming(m.raw, "smtp", m.sender, [MAILBOX], now)
                                   for m in corpus.generate(args.count, 8)])
    wall, cpu = time.perf_counter(), time.process_time()
    done = len(pipeline.process_pending(svc))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{done} mails in {wall:.2f} s: {wall / done * 1000:.1f} ms a mail, "
          f"{cpu / done * 1000:.1f} ms of CPU ({home.root})")
    if args.send:
        send_all(svc, args.send)


def send_all(svc, batch: int) -> None:
    """Send the whole outbox, ``batch`` mails a batch; print the CPU a mail sent."""
    send.SEND_BATCH = batch
    sender = send.Sender(svc.engine, send.make_transport(svc.config.outbound),
                         svc.config.outbound)
    before, sent = os.times(), 0
    while due := sender.drain(datetime.now(UTC)):
        sent += due
    sender.flush()
    after = os.times()
    user, system = after.user - before.user, after.system - before.system
    print(f"{sent} mails sent, {batch} a batch: {(user + system) / sent * 1000:.3f} ms of "
          f"CPU a mail (user {user / sent * 1000:.3f}, system {system / sent * 1000:.3f})")


if __name__ == "__main__":
    main()
