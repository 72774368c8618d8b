"""A throw-away Dovecot on loopback for tests, driven through dovecot-up.sh/-down.sh.

Free of pytest so that a fixture, a test or a bench script can start it, add users
and restart it in the middle of a run (to check that a client reconnects).
"""

from __future__ import annotations

import itertools
import shutil
import ssl
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from imapclient import IMAPClient

HERE = Path(__file__).resolve().parent
HOST = "127.0.0.1"


@dataclass(frozen=True)
class ImapUser:
    """One mailbox on the test server, with what a client needs to reach it."""

    host: str
    port: int
    ssl_port: int
    user: str
    password: str
    cafile: Path

    def client(self) -> IMAPClient:
        """A logged-in plain-text client, as a user's MUA (or an MTA's LMTP) would use."""
        client = IMAPClient(self.host, port=self.port, ssl=False, timeout=10)
        client.login(self.user, self.password)
        return client

    def tls_context(self) -> ssl.SSLContext:
        """A context that trusts the server's self-signed certificate."""
        return ssl.create_default_context(cafile=str(self.cafile))

    def imap_toml(self, **overrides) -> str:
        """An ``[[imap]]`` table for this user; ``overrides`` replace or add keys."""
        keys = {"host": self.host, "port": self.port, "tls": "none", "username": self.user,
                "password": self.password, "folder": "INBOX", "processed_folder": "Processed",
                "idle": True, "poll_interval": "1s", "cafile": str(self.cafile), **overrides}
        lines = [f"{k} = {_toml(v)}" for k, v in keys.items()]
        return "\n[[imap]]\n" + "\n".join(lines) + "\n"


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


class Dovecot:
    """One Dovecot instance: state, config, log and maildirs under ``dir``."""

    user = "hd@example.test"
    password = "secret"
    # Dovecot looks at its passwd-file at most once a second, so a user added just
    # after a login may stay unknown for up to a second: users are made ahead.
    pool_size = 64

    def __init__(self) -> None:
        self.dir: Path | None = None
        self.imap_port = 0
        self.imaps_port = 0
        self._serial = itertools.count(1)

    @staticmethod
    def available() -> bool:
        """True when the dovecot binary is installed (the scripts also need root)."""
        return shutil.which("dovecot") is not None or Path("/usr/sbin/dovecot").exists()

    @property
    def cafile(self) -> Path:
        """The self-signed certificate (SAN localhost and 127.0.0.1) the server presents."""
        return self._dir / "tls" / "cert.pem"

    @property
    def log(self) -> Path:
        return self._dir / "dovecot.log"

    @property
    def _dir(self) -> Path:
        if self.dir is None:
            raise RuntimeError("Dovecot is not started")
        return self.dir

    def start(self, dir: Path | str, imap_port: int, imaps_port: int) -> None:
        """Start the server in ``dir`` (a folder that users dovecot and nobody can enter)."""
        self.dir, self.imap_port, self.imaps_port = Path(dir), imap_port, imaps_port
        with (self.dir / "users").open("a") as users:
            users.writelines(f"{_pooled(n)}:{{PLAIN}}{_pooled(n)}::::::\n"
                             for n in range(1, self.pool_size + 1))
        self._up()

    def _up(self) -> None:
        env_user = {"IMAP_USER": self.user, "IMAP_PASS": self.password}
        subprocess.run([HERE / "dovecot-up.sh", self._dir, str(self.imap_port),
                        str(self.imaps_port)], check=True, capture_output=True, text=True,
                       timeout=60, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", **env_user})

    def stop(self, purge: bool = False) -> None:
        """Stop the server; ``purge`` also deletes its folder and every mailbox."""
        if self.dir is None:
            return
        args = [HERE / "dovecot-down.sh", self.dir, *(["--purge"] if purge else [])]
        subprocess.run(args, check=True, capture_output=True, timeout=60)
        if purge:
            self.dir = None

    def restart(self) -> None:
        """Stop and start again on the same ports, keeping users and mail."""
        self.stop()
        self._up()

    def account(self, user: str | None = None, password: str | None = None) -> ImapUser:
        """The default user, or ``user`` added to the passwd-file if it is new.

        Dovecot re-reads the passwd-file when it changes, at most once a second.
        """
        user = user or self.user
        password = password or self.password
        users = self._dir / "users"
        known = {line.split(":", 1)[0] for line in users.read_text().splitlines()}
        if user not in known:
            with users.open("a") as f:
                f.write(f"{user}:{{PLAIN}}{password}::::::\n")
            time.sleep(1.1)
        return ImapUser(HOST, self.imap_port, self.imaps_port, user, password, self.cafile)

    def new_account(self) -> ImapUser:
        """A user of its own (with an empty mailbox), so that a test never sees another
        test's mail."""
        n = next(self._serial)
        if n <= self.pool_size:
            return self.account(_pooled(n), _pooled(n))
        return self.account(f"extra{n}@example.test", "secret")


def _pooled(n: int) -> str:
    """The name, and password, of the ``n``-th user made ahead."""
    return f"box{n:02d}@example.test"
