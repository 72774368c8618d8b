"""The mailgate benchmark suite (issue 8): ``python bench/run.py [--quick] [--json]``.

Sections, each on fresh mailgate homes in a temporary folder: intake (smtp-source
against serve and a bare aiosmtpd sink), e2e (corpus throughput and ack latency at
200/s), peer (Roundup's mail gateway on the same corpus, and mailgate's own pipe door
timed the same way), memory (25 MB attachment,
soak) and scale (1M archived tickets).  A section that fails reports its figures as
null and its error under ``errors``; the others still run.  Progress goes to stderr;
stdout gets the JSON object (``--json``) or a table with the targets.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import corpus
import e2e
import intake
import memory
import peer
import pipedoor
import scale
import spy
import targets
from home import PROJECT, Homes

QUICK = {"corpus": 300, "soak": 200, "tickets": 100_000}
FULL = {"corpus": 3000, "soak": 100_000, "tickets": 1_000_000}

# The headline figures of each section: null when the section fails.
KEYS = {
    "intake": ["intake_msgs_per_s", "intake_only_msgs_per_s", "bare_smtp_msgs_per_s",
               "intake_ratio"],
    "e2e": ["e2e_msgs_per_s", "ack_p50_ms", "ack_p99_ms", "bare_ack_p99_ms"],
    "peer": ["roundup_mbox_msgs_per_s", "roundup_pipe_msgs_per_s", "mailgate_pipe_msgs_per_s",
             "mailgate_pipe_alone_msgs_per_s"],
    "memory": ["big_attachment_peak_rss_mb", "big_attachment_limit_mb", "rss_after_soak_mb",
               "soak_growth_mb"],
    "scale": ["e2e_msgs_per_s_1m_tickets", "scale_empty_msgs_per_s", "preloaded_tickets"],
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description="mailgate benchmark suite (issue 8)")
    parser.add_argument("--quick", action="store_true", help="smaller counts (< 3 minutes)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--only", default=",".join(KEYS),
                        help=f"comma-separated sections to run, of {','.join(KEYS)}")
    parser.add_argument("--corpus", type=int, help="corpus size (mails)")
    parser.add_argument("--soak", type=int, help="mails of the soak")
    parser.add_argument("--tickets", type=int, help="archived tickets for the scale section")
    parser.add_argument("--seed", type=int, default=8, help="corpus seed")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="record serve with py-spy during the e2e run into DIR")
    parser.add_argument("--tree", type=Path, metavar="DIR",
                        help="measure the mailgate of another source tree (its mailgate/, "
                             "rules/, templates/), e.g. an older commit unpacked with git "
                             "archive")
    parser.add_argument("--repeat", type=int, default=1, metavar="N",
                        help="run the suite N times and report the median of each figure "
                             "(ratios are taken within each run first); the issue's targets "
                             "are judged on the median of 3")
    parser.add_argument("--keep", action="store_true", help="keep the homes (their path is "
                        "printed) instead of deleting them")
    args = parser.parse_args(argv)
    unknown = set(args.only.split(",")) - set(KEYS)
    if unknown:
        parser.error(f"unknown section(s) {', '.join(sorted(unknown))}; choose from "
                     f"{','.join(KEYS)}")
    sizes = QUICK if args.quick else FULL
    for key, value in sizes.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def log(message: str) -> None:
    """A progress line on stderr."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def machine() -> dict:
    """What the figures were measured on."""
    try:
        commit = subprocess.run(["git", "-C", str(PROJECT), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {"date": datetime.now(UTC).isoformat(timespec="seconds"), "commit": commit or None,
            "cpus": os.cpu_count(), "python": platform.python_version(),
            "load_before": round(os.getloadavg()[0], 2)}


def sections(args: argparse.Namespace, homes: Homes, mails: list[corpus.Mail]) -> dict:
    """Section name → its steps, functions that each return some of its figures."""
    observe = None
    if args.profile:
        observe = lambda pid: spy.recording(pid, args.profile / "serve.collapsed")  # noqa: E731
    return {
        "intake": lambda: intake.steps(homes, args.quick),
        "e2e": lambda: e2e.steps(homes, mails, args.quick, observe),
        "peer": lambda: [partial(peer.measure, homes.workdir, mails, args.quick),
                         partial(pipedoor.measure, homes, mails, peer.pipe_count(args.quick))],
        "memory": lambda: memory.steps(homes, mails, args.soak),
        "scale": lambda: [partial(scale.measure, homes, mails, args.tickets)],
    }


def run(args: argparse.Namespace, workdir: Path) -> dict:
    """Every chosen section; a failure is recorded and the next section runs."""
    result: dict = {"quick": args.quick, **machine(),
                    "tree": str(args.tree.resolve()) if args.tree else None}
    # Every headline key is there, null until its section measures it.
    result.update({key: None for keys in KEYS.values() for key in keys})
    started = time.monotonic()
    mails = corpus.generate(args.corpus, args.seed)
    result["corpus"] = corpus.stats(mails)
    log(f"corpus: {result['corpus']} in {time.monotonic() - started:.1f}s")
    errors, seconds = {}, {}
    chosen = args.only.split(",")
    homes = Homes(workdir, args.tree.resolve() if args.tree else None)
    for name, steps in sections(args, homes, mails).items():
        if name not in chosen:
            continue
        log(f"{name} ...")
        began = time.monotonic()
        for step in _steps(name, steps, errors):
            try:
                result.update(step())
            except Exception as exc:  # noqa: BLE001 - one failure must not end the run
                _failed(name, exc, errors)
        seconds[name] = round(time.monotonic() - began, 1)
        log(f"{name} done in {seconds[name]}s")
    if args.profile and (args.profile / "serve.collapsed").exists():
        result["profile_top"] = spy.top(args.profile / "serve.collapsed")
    result.update(targets.ratios(result))
    result["errors"], result["section_seconds"] = errors, seconds
    result["total_seconds"] = round(time.monotonic() - started, 1)
    return result


def _steps(name: str, steps, errors: dict) -> list:
    """The steps of a section; none when even making them fails (a home that cannot be
    set up)."""
    try:
        return steps()
    except Exception as exc:  # noqa: BLE001 - as in run()
        _failed(name, exc, errors)
        return []


def _failed(name: str, exc: Exception, errors: dict) -> None:
    """Record a failed step under its section (several are joined) and say so."""
    message = f"{type(exc).__name__}: {exc}"
    errors[name] = f"{errors[name]}; {message}" if name in errors else message
    log(f"{name} failed: {message}\n{traceback.format_exc(limit=5)}")


def repeated(args: argparse.Namespace) -> dict:
    """``args.repeat`` runs, each in a fresh work folder, merged by their medians."""
    runs = []
    for n in range(args.repeat):
        if args.repeat > 1:
            log(f"run {n + 1} of {args.repeat}")
        workdir = Path(tempfile.mkdtemp(prefix="mailgate-bench-"))
        try:
            runs.append(run(args, workdir))
        finally:
            if args.keep:
                log(f"homes kept in {workdir}")
            else:
                shutil.rmtree(workdir, ignore_errors=True)
    result = targets.median(runs)
    result["targets"] = targets.check(result)
    return result


def main(argv: list[str] | None = None) -> int:
    """Run the suite and print the result; exit 0 even when targets are missed (the
    figures are the product), 1 when a section failed."""
    args = parse_args(argv)
    result = repeated(args)
    print(json.dumps(result, indent=2, ensure_ascii=False) if args.json
          else targets.table(result))
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
