"""The targets of issue 8, the ratios they are stated in, and the table ``run.py``
prints without ``--json``."""

from __future__ import annotations

import statistics

SOAK_FLAT_MB = 10.0  # growth allowed after the warm-up ...
SOAK_FLAT_SHARE = 0.05  # ... or this share of the warm memory, whichever is larger


def _ratio(a, b, digits: int = 2):
    return round(a / b, digits) if a is not None and b else None


def ratios(r: dict) -> dict:
    """Ratios between sections (null when a side is missing)."""
    return {
        "intake_ratio": _ratio(r.get("intake_msgs_per_s"), r.get("bare_smtp_msgs_per_s"), 3),
        "intake_only_ratio": _ratio(r.get("intake_only_msgs_per_s"),
                                    r.get("bare_smtp_msgs_per_s"), 3),
        "ratio_vs_roundup_mbox": _ratio(r.get("e2e_msgs_per_s"), r.get("roundup_mbox_msgs_per_s")),
        "ratio_vs_roundup_pipe": _ratio(r.get("e2e_msgs_per_s"), r.get("roundup_pipe_msgs_per_s")),
        # Not a target: process for process, mailgate's pipe door against Roundup's.
        "pipe_door_vs_roundup_pipe": _ratio(r.get("mailgate_pipe_msgs_per_s"),
                                            r.get("roundup_pipe_msgs_per_s")),
        # Over the empty homes the scale section runs beside it (scale.py), not over
        # the e2e section's figure, minutes away.
        "scale_ratio": _ratio(r.get("e2e_msgs_per_s_1m_tickets"),
                              r.get("scale_empty_msgs_per_s"), 3),
    }


def median(runs: list[dict]) -> dict:
    """One result from several: the median of every number (runs where it is null left
    out), for other values the first run's that is not null, the errors of all runs,
    and ``runs`` (how many)."""
    if len(runs) == 1:
        return {**runs[0], "runs": 1}
    keys = list(dict.fromkeys(k for r in runs for k in r))
    merged: dict = {}
    for key in keys:
        values = [r.get(key) for r in runs if r.get(key) is not None]
        numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
        if numbers and len(numbers) == len(values):
            merged[key] = statistics.median(numbers)
        else:
            merged[key] = values[0] if values else None
    merged["errors"] = {f"run {n + 1} {name}": error for n, r in enumerate(runs)
                        for name, error in r["errors"].items()}
    merged["runs"] = len(runs)
    return merged


def _soak_limit(r: dict):
    before = r.get("rss_before_soak_mb")
    return None if before is None else round(max(SOAK_FLAT_MB, SOAK_FLAT_SHARE * before), 1)


def check(r: dict) -> dict:
    """Each target: the figure, the bound, and whether it is met (null: not measured)."""
    rows = [
        ("intake ≥ 1000 mails/s", r.get("intake_msgs_per_s"), ">=", 1000),
        ("intake ≥ 60% of bare aiosmtpd", r.get("intake_ratio"), ">=", 0.6),
        ("end to end ≥ 300 mails/s", r.get("e2e_msgs_per_s"), ">=", 300),
        ("≥ 10× Roundup mbox", r.get("ratio_vs_roundup_mbox"), ">=", 10),
        ("≥ 100× Roundup pipe", r.get("ratio_vs_roundup_pipe"), ">=", 100),
        ("ack p99 ≤ 20 ms at 200/s", r.get("ack_p99_ms"), "<=", 20),
        ("25 MB attachment: peak ≤ baseline + 4× message (MB)",
         r.get("big_attachment_peak_rss_mb"), "<=", r.get("big_attachment_limit_mb")),
        ("RSS flat after the soak (growth, MB)", r.get("soak_growth_mb"), "<=", _soak_limit(r)),
        ("1M tickets within 10% of empty", r.get("scale_ratio"), ">=", 0.9),
    ]
    found = {}
    for name, value, op, bound in rows:
        met = None
        if value is not None and bound is not None:
            met = value >= bound if op == ">=" else value <= bound
        found[name] = {"value": value, "bound": f"{op} {bound}", "met": met}
    return found


def table(r: dict) -> str:
    """The targets and the other figures as text."""
    lines = [f"mailgate bench  {r.get('date')}  commit {r.get('commit')}  cpus {r.get('cpus')}"
             f"  {'quick' if r.get('quick') else 'full'}  corpus {r.get('corpus')}", ""]
    for name, row in r["targets"].items():
        mark = {True: "met", False: "MISSED", None: "n/a"}[row["met"]]
        lines.append(f"  {mark:6}  {name:55} {row['value']!s:>10}  ({row['bound']})")
    lines.append("")
    skip = {"targets", "errors", "section_seconds", "corpus", "profile_top"}
    for key, value in r.items():
        if key not in skip and not isinstance(value, dict):
            lines.append(f"  {key:34} {value}")
    for name, error in r["errors"].items():
        lines.append(f"  ERROR in {name}: {error}")
    return "\n".join(lines)
