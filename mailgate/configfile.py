"""The configuration file before validation: where it is and a few raw values.

``mailgate deliver`` runs once per message, and validating the whole file (pydantic)
costs more start-up than the hand-off to the daemon it decides on.  This module reads
only what that hand-off needs, with the stdlib alone; config.py takes the defaults
from here, so the two readings cannot drift apart.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

DEFAULT_PATH = Path("/etc/mailgate/config.toml")
DATA_DIR = "var"  # [paths] data
MAX_MESSAGE_SIZE = 26214400  # [smtp] max_message_size


def resolve_path(explicit: str | None) -> Path:
    """The config file to use: ``-c``, then ``$MAILGATE_CONFIG``, then the system one."""
    return Path(explicit or os.environ.get("MAILGATE_CONFIG") or DEFAULT_PATH)


def env_name(section: str, key: str) -> str:
    """The environment variable that overrides ``[section] key`` (SPEC §10)."""
    return f"MAILGATE_{section}_{key}".upper()


class RawConfig:
    """The file's TOML with the ``MAILGATE_<SECTION>_<KEY>`` overrides (SPEC §10) for
    single values; raises OSError or ``tomllib.TOMLDecodeError`` when unreadable."""

    def __init__(self, path: Path, environ: Mapping[str, str] | None = None):
        self.path = path
        self.environ = os.environ if environ is None else environ
        self.data = tomllib.loads(path.read_text(encoding="utf-8"))

    def value(self, section: str, key: str, default: Any) -> Any:
        """``[section] key`` as the environment, the file or ``default`` gives it."""
        override = self.environ.get(env_name(section, key))
        if override is not None:
            return override
        table = self.data.get(section)
        return table.get(key, default) if isinstance(table, dict) else default

    def data_dir(self) -> Path:
        """``[paths] data``, resolved against the file's folder as config.py does."""
        return (self.path.parent / str(self.value("paths", "data", DATA_DIR))).resolve()

    def max_message_size(self) -> int:
        """``[smtp] max_message_size``; ValueError when it is not a whole number."""
        return int(self.value("smtp", "max_message_size", MAX_MESSAGE_SIZE))
