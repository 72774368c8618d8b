"""A throw-away Postfix on loopback for tests, driven through postfix-up.sh/-down.sh.

Free of pytest so that a fixture, a test or a bench script can start an instance, read
its log, and flush its queue.  Everything (config, queue, log) lives under the folder
given to ``start``, which users postfix and nobody must be able to enter.
"""

from __future__ import annotations

import re
import shutil
import smtplib
import subprocess
import time
from collections.abc import Mapping
from email.message import EmailMessage
from pathlib import Path

HERE = Path(__file__).resolve().parent
HOST = "127.0.0.1"
_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}


class Postfix:
    """One Postfix instance: ``dir/etc`` (main.cf, master.cf, transport), ``dir/spool``
    (the queue) and ``dir/postfix.log``."""

    def __init__(self) -> None:
        self.dir: Path | None = None
        self.port = 0

    @staticmethod
    def available() -> bool:
        """True when Postfix is installed (the scripts also need root)."""
        return shutil.which("postfix", path=_ENV["PATH"]) is not None

    @property
    def _dir(self) -> Path:
        if self.dir is None:
            raise RuntimeError("Postfix is not started")
        return self.dir

    @property
    def conf(self) -> Path:
        return self._dir / "etc"

    @property
    def log(self) -> Path:
        return self._dir / "postfix.log"

    def start(self, dir: Path | str, port: int, *, transports: Mapping[str, str] | None = None,
              relayhost: str | None = None, pipe_cmd: Path | str | None = None) -> None:
        """Start an instance with smtpd on ``127.0.0.1:port``.

        ``transports`` maps a domain to its transport (``lmtp:inet:127.0.0.1:N``,
        ``gwpipe:``); those domains are relayed, any other goes to ``relayhost``
        (``[127.0.0.1]:N``).  ``pipe_cmd`` is the program of the ``gwpipe`` transport,
        called by user nobody as ``pipe_cmd SENDER RECIPIENT``.
        """
        self.dir, self.port = Path(dir), port
        env = dict(_ENV, TRANSPORTS="\n".join(f"{d} {t}" for d, t in (transports or {}).items()))
        if relayhost:
            env["RELAYHOST"] = relayhost
        if pipe_cmd:
            env["PIPE_CMD"] = str(pipe_cmd)
        proc = subprocess.run([HERE / "postfix-up.sh", self.dir, str(port)], env=env,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=60)
        if proc.returncode != 0:
            raise RuntimeError(f"postfix-up.sh failed ({proc.returncode}): {proc.stderr}")

    def stop(self, purge: bool = False) -> None:
        """Stop the instance; ``purge`` also deletes its folder (queue and log)."""
        if self.dir is None:
            return
        args = [HERE / "postfix-down.sh", self.dir, *(["--purge"] if purge else [])]
        subprocess.run(args, env=_ENV, stdin=subprocess.DEVNULL, capture_output=True,
                       check=True, timeout=60)
        if purge:
            self.dir = None

    def flush(self) -> None:
        """``postqueue -f``: attempt every deferred message now."""
        subprocess.run(["postqueue", "-c", str(self.conf), "-f"], env=_ENV, check=True,
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=30)

    def queue(self) -> str:
        """``postqueue -p``: what is still in the queue, and why."""
        return subprocess.run(["postqueue", "-c", str(self.conf), "-p"], env=_ENV,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=30).stdout

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def log_lines(self, pattern: str) -> list[str]:
        """Lines of the log that ``pattern`` (a regular expression) matches."""
        regex = re.compile(pattern)
        return [line for line in self.log_text().splitlines() if regex.search(line)]

    def wait_log(self, pattern: str, count: int = 1, timeout: float = 30.0) -> list[str]:
        """Wait until ``count`` log lines match ``pattern``; returns them all."""
        deadline = time.monotonic() + timeout
        while True:
            lines = self.log_lines(pattern)
            if len(lines) >= count:
                return lines
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{len(lines)} (not {count}) log lines match {pattern!r} after {timeout}s;"
                    f" log tail:\n{_tail(self.log_text())}\nqueue:\n{self.queue()}")
            time.sleep(0.1)

    def send(self, msg: EmailMessage, sender: str, rcpts: list[str]) -> str:
        """Hand ``msg`` to the instance's smtpd, as a customer's provider would; returns
        the queue id, which prefixes the log lines about this message."""
        with smtplib.SMTP(HOST, self.port, timeout=10) as client:
            client.ehlo("mx.client.test")
            code, reply = client.mail(sender)
            if code != 250:
                raise AssertionError(f"MAIL FROM:<{sender}> refused: {code} {reply!r}")
            for rcpt in rcpts:
                code, reply = client.rcpt(rcpt)
                if code != 250:
                    raise AssertionError(f"RCPT TO:<{rcpt}> refused: {code} {reply!r}")
            code, reply = client.data(msg.as_bytes())
        found = re.search(rb"queued as (\w+)", reply)
        if code != 250 or not found:
            raise AssertionError(f"DATA refused: {code} {reply!r}")
        return found.group(1).decode()


def _tail(text: str, n: int = 30) -> str:
    return "\n".join(text.splitlines()[-n:])
