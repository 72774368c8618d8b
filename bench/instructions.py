"""Instructions a mail costs the pipeline, counted by valgrind:
``python bench/instructions.py [--count N] [--tree DIR]``.

Seconds on this VM drift by a third from one run to the next (bench/RESULTS.md), and
it has no hardware counters; ``valgrind --tool=callgrind`` counts the instructions a
process executes, which do not depend on what else the machine is doing: the same
code on the same spool gives the same count to about 0.1 %.  N corpus mails
(default 200) are spooled into a fresh bench home, then two processes run under
valgrind on copies of it: one builds the services and processes the spool
(``pipeline.process_pending``, as ``bench/inproc.py``), the other only builds the
services.  The difference over N is the pipeline's instructions a mail, parsing
included; the kernel's work (fsync) is not counted.  The clock is fixed, so the SLA
arithmetic is the same on every run.  Needs valgrind (Debian: ``apt-get install
valgrind``); under it Python runs about 50 times slower (a minute for 200 mails).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import corpus
from home import MAILBOX, mailgate_env, make_home

from mailgate import bootstrap, config, pipeline, spool
from mailgate.db import session_scope
from mailgate.senders import sync

SEED = 8
CLOCK = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)  # a Monday in office hours


def main() -> None:
    """Spool, count both runs, report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--tree", type=Path, help="measure another source tree")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--empty", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.empty)
    work = Path(tempfile.mkdtemp(prefix="mailgate-instructions-"))
    try:
        home = spooled(work / "home", args.count, args.tree)
        full = counted(work, home, args.tree, empty=False)
        empty = counted(work, home, args.tree, empty=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{args.count} mails: {(full - empty) / args.count / 1e6:.2f} M instructions a mail "
          f"({full:,} with processing, {empty:,} without)")


def spooled(root: Path, count: int, tree: Path | None) -> Path:
    """A bench home with ``count`` corpus mails pending and the WAL checkpointed."""
    home = make_home(root, tree=tree)
    os.chdir(home.root)  # the config's relative paths
    svc = bootstrap.build(config.load(home.config))
    with session_scope(svc.engine) as session:
        sync(session, svc.policy)  # the companies, as serve does at start
    spool.intake_many(svc.engine, [spool.Incoming(m.raw, "smtp", m.sender, [MAILBOX], CLOCK)
                                   for m in corpus.generate(count, SEED)])
    with svc.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    svc.engine.dispose()
    return home.root


def counted(work: Path, home: Path, tree: Path | None, *, empty: bool) -> int:
    """Instructions of one child run under callgrind, on a copy of ``home``."""
    copy = work / ("empty" if empty else "full")
    shutil.copytree(home, copy)
    out = copy / "callgrind.out"
    command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
               sys.executable, __file__, "--child", str(copy), *(["--empty"] if empty else [])]
    env = dict(mailgate_env(tree), PYTHONHASHSEED="0")
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    found = re.search(r"^(?:summary|totals): (\d+)", out.read_text(), re.MULTILINE)
    if found is None:
        raise SystemExit(f"no instruction count in {out}")
    return int(found.group(1))


def child(home: Path, empty: bool) -> None:
    """What runs under valgrind: build the services, then (unless ``empty``) process."""
    os.chdir(home)
    svc = bootstrap.build(config.load(home / "config.toml"))
    svc.clock = lambda: CLOCK
    if not empty:
        pipeline.process_pending(svc)


if __name__ == "__main__":
    main()
