"""Profiling ``serve`` under the end-to-end load with py-spy, and the top entries of the
profile as a table (``run.py --profile DIR``).

py-spy samples the running daemon from outside (no change to mailgate, every thread
and, with ``--subprocesses``, every worker process), 100 times a second, with native
frames left out.  It writes "collapsed" stacks (one line per distinct stack:
``frame;frame;frame count``), from which ``top`` computes for each function the share
of samples where it is running (self) and where it is on the stack (total).

``python bench/spy.py FILE`` prints the table of an existing collapsed file.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

RATE = 100
LINE = re.compile(r":\d+\)$")
PACKAGE = re.compile(r"\(([^/()]+)(?:/|\)$)")
# Frames on every stack of a thread pool: they say nothing about where time goes.
PLUMBING = ("(threading.py", "(concurrent/futures/", "(contextlib.py", "(asyncio/")
IDLE = ("select", "epoll", "_worker (concurrent", "wait (threading", "_wait_for_tstate_lock",
        "poll (selectors", "get (queue")


def py_spy() -> str:
    """The py-spy executable: beside this interpreter, else on PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if not found:
        raise FileNotFoundError("py-spy not found: .venv/bin/pip install py-spy")
    return found


@contextmanager
def recording(pid: int, out: Path):
    """py-spy records ``pid`` (and its children) for the ``with`` block into ``out``;
    without py-spy the block runs unprofiled (a profile must not cost a measurement)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        exe = py_spy()
    except FileNotFoundError as exc:
        print(f"not profiling: {exc}", file=sys.stderr)
        yield None
        return
    proc = subprocess.Popen([exe, "record", "--pid", str(pid), "--rate", str(RATE),
                             "--format", "raw", "--output", str(out), "--subprocesses",
                             "--nonblocking"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        yield out
    finally:
        proc.send_signal(signal.SIGINT)  # py-spy writes its output when interrupted
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def top(collapsed: Path, count: int = 15, busy_only: bool = True) -> dict[str, list]:
    """The ``count`` functions with most samples, by self and by total time,
    mailgate's own functions by total time, and self time by package, as
    ``[name, percent]`` pairs.
    ``busy_only`` leaves out stacks idling in a wait."""
    own, total, packages, samples = Counter(), Counter(), Counter(), 0
    for line in collapsed.read_text(errors="replace").splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        # "function (file:line)": the same function at two lines is still one function.
        frames = [LINE.sub(")", f) for f in stack.split(";")]
        if busy_only and any(frames[-1].startswith(i) for i in IDLE):
            continue
        samples += int(n)
        own[frames[-1]] += int(n)
        packages[_package(frames[-1])] += int(n)
        for frame in set(frames[1:]):  # the first frame is the process/thread name
            if not any(p in frame for p in PLUMBING):
                total[frame] += int(n)

    def share(counter: Counter) -> list:
        """The most common entries of ``counter`` as percentages of the samples."""
        return [[f, round(100 * c / max(samples, 1), 1)] for f, c in counter.most_common(count)]

    ours = Counter({f: c for f, c in total.items() if "(mailgate/" in f})
    return {"samples": samples, "self": share(own), "total": share(total),
            "mailgate": share(ours), "packages": share(packages)}


def _package(frame: str) -> str:
    """The package (or stdlib module) a frame's code is in; SQLite's own work, which
    py-spy sees as the SQLAlchemy frame that called into C, is told apart."""
    if frame.startswith(("DefaultDialect.do_execute", "DefaultDialect.do_commit")):
        return "sqlite3 (statements and COMMITs)"
    found = PACKAGE.search(frame)
    return found.group(1).removesuffix(".py") if found else frame


def main() -> None:
    """Print the top entries of a collapsed profile."""
    found = top(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 15)
    print(f"{found['samples']} busy samples")
    for title in ("self", "total", "mailgate", "packages"):
        print(f"\n{title:>6} %  function")
        for frame, pct in found[title]:
            print(f"{pct:8.1f}  {frame}")


if __name__ == "__main__":
    main()
