"""Real servers on loopback for the end-to-end tests, one per test session.

Each fixture skips with its reason when the server is not installed or the tests do
not run as root (the server scripts chown their folders and drop privileges).  The
servers' folders are made with ``tempfile.mkdtemp`` under /tmp, not pytest's
``tmp_path``: that sits under a 0700 folder which the servers' users cannot enter.
"""

from __future__ import annotations

import os
import tempfile

import pytest

from tests.helpers import free_port
from tests.servers.dovecot import Dovecot, ImapUser


def _server_dir(prefix: str) -> str:
    path = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    os.chmod(path, 0o755)
    return path


@pytest.fixture(scope="session")
def dovecot():
    """A Dovecot IMAP server (plain + STARTTLS, and implicit TLS) for the session."""
    if not Dovecot.available():
        pytest.skip("dovecot is not installed (apt-get install dovecot-imapd)")
    if os.geteuid() != 0:
        pytest.skip("the Dovecot test server needs root")
    server = Dovecot()
    server.start(_server_dir("mg-dc."), free_port(), free_port())
    try:
        yield server
    finally:
        server.stop(purge=True)


@pytest.fixture
def imap_user(dovecot) -> ImapUser:
    """An IMAP user of this test's own, with an empty INBOX."""
    return dovecot.new_account()
