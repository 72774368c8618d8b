"""Log lines on stderr: plain text, journald's ``<N>`` priority prefixes, or JSON lines.

``setup`` may run twice: once with the defaults before the configuration is known,
and again with its ``[logging]`` section.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import TextIO

TEXT_FORMAT = "%(levelname)s %(name)s: %(message)s"

# sd-daemon(3) priorities: <3> error, <4> warning, <6> info, <7> debug.
_PRIORITIES = ((logging.ERROR, 3), (logging.WARNING, 4), (logging.INFO, 6))
# What every LogRecord has; anything else on a record came in through ``extra``.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


def priority(levelno: int) -> int:
    """The syslog priority of a logging level (critical counts as error, like sd-daemon)."""
    return next((prio for floor, prio in _PRIORITIES if levelno >= floor), 7)


class JournaldFormatter(logging.Formatter):
    """``<N>logger: message``, every line prefixed (tracebacks too); journald stamps time."""

    def __init__(self):
        super().__init__("%(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{priority(record.levelno)}>"
        return "\n".join(prefix + line for line in super().format(record).splitlines())


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ts, level, logger, msg, the ``extra`` fields, exc."""

    def format(self, record: logging.LogRecord) -> str:
        data = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        data.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)


def formatter(fmt: str) -> logging.Formatter:
    """The formatter for ``[logging] format``."""
    if fmt == "journald":
        return JournaldFormatter()
    if fmt == "json":
        return JsonFormatter()
    return logging.Formatter(TEXT_FORMAT)


def setup(fmt: str = "text", level: str = "info", *, floor: int = logging.NOTSET,
          stream: TextIO | None = None) -> logging.Handler:
    """Send the root logger to ``stream`` (stderr) in ``fmt`` at ``level``, never below
    ``floor``; replaces the handler an earlier call installed."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "mailgate", False)]:
        root.removeHandler(old)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.mailgate = True
    handler.setFormatter(formatter(fmt))
    root.addHandler(handler)
    root.setLevel(max(logging.getLevelName(level.upper()), floor))
    # aiosmtpd logs every SMTP command at INFO; the pipeline's own line is enough.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    return handler
