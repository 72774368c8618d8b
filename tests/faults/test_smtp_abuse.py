"""SMTP abuse on the listener: many idle connections, slow senders, oversized DATA and
bad commands.  The attack works if a well-behaved client, sending at the same time,
cannot deliver promptly, or if the daemon dies or stores what it refused.

``[smtp] max_connections`` bounds the sessions (one more is told ``421 4.7.0`` and
closed) and ``[smtp] timeout`` the time a session may take for one command, DATA
included; here they are 20 sessions and 3 s (long variant: the default 100 sessions,
with 300 connection attempts).
"""

from __future__ import annotations

import socket
import threading
import time

import pytest

from tests.faults.traffic import smtp_reply, wait_for
from tests.helpers import mail, make_home, serving

pytestmark = pytest.mark.e2e

TIMEOUT = 3
PROMPT = 5.0  # seconds within which a well-behaved client must be done, even under load


@pytest.fixture
def limits(monkeypatch, scale) -> int:
    """The listener's limits for the ``serve`` a test starts; returns max_connections."""
    most = scale(20, 100)
    monkeypatch.setenv("MAILGATE_SMTP_MAX_CONNECTIONS", str(most))
    monkeypatch.setenv("MAILGATE_SMTP_TIMEOUT", str(TIMEOUT))
    return most


@pytest.fixture
def served(tmp_path, limits):
    """A ``serve`` with the limits of ``limits``; it must outlive the attack."""
    home = make_home(tmp_path)
    with serving(home) as proc:
        yield home
        assert proc.poll() is None, "the daemon died under the attack"


@pytest.fixture
def patient(tmp_path, monkeypatch):
    """A ``serve`` whose timeout lets a 20 MB DATA finish, to see how it is refused."""
    monkeypatch.setenv("MAILGATE_SMTP_TIMEOUT", "120")
    home = make_home(tmp_path)
    with serving(home) as proc:
        yield home
        assert proc.poll() is None, "the daemon died under the attack"


def connect(port: int) -> tuple[socket.socket, bytes]:
    """A raw connection and the first line the server says."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    return sock, sock.makefile("rb").readline()


def reply(reader) -> bytes:
    """The last line of one (possibly multi-line) SMTP reply."""
    line = reader.readline()
    while line[3:4] == b"-":
        line = reader.readline()
    return line


def well_behaved(home, n: int) -> float:
    """Seconds a normal client takes to get a 250 for one mail (asserts the 250)."""
    started = time.monotonic()
    code = smtp_reply(home.port, mail(f"good{n}@acme.it", f"good {n}",
                                      message_id=f"<good.{n}@acme.it>"))
    took = time.monotonic() - started
    assert code == 250, f"the well-behaved client got {code}"
    assert took < PROMPT, f"the well-behaved client waited {took:.1f}s"
    return took


def stored(home) -> set[str]:
    """Message-IDs in the spool."""
    return {mid for (mid,) in home.query("SELECT message_id FROM spool")}


def test_idle_connections_cannot_lock_out_a_client_for_longer_than_the_timeout(served,
                                                                                limits):
    idle = [connect(served.port) for _ in range(limits - 1)]
    assert all(greeting.startswith(b"220") for _, greeting in idle)
    well_behaved(served, 1)  # one place is left, and it serves

    more = [connect(served.port) for _ in range(limits)]
    refused = [g for _, g in more if g.startswith(b"421 4.7.0")]
    assert len(refused) >= limits - 1, "connections over max_connections were not refused"
    # The idle sessions are closed once the timeout has passed: the places come back.
    time.sleep(TIMEOUT + 1)
    assert all(sock.recv(100) == b"" for sock, _ in idle)
    for n in range(2, 5):
        well_behaved(served, n)
    for sock, _ in idle + more:
        sock.close()


def test_slow_senders_are_cut_at_the_timeout_while_others_are_served(served):
    slow = []
    for n in range(5):
        sock, _ = connect(served.port)
        for line in (b"EHLO slow", b"MAIL FROM:<slow@acme.it>", b"RCPT TO:<hd@example.com>",
                     b"DATA"):
            sock.sendall(line + b"\r\n")
        sock.sendall(f"Message-ID: <slow.{n}@acme.it>\r\nSubject: slow\r\n\r\n".encode())
        slow.append(sock)
    started = time.monotonic()
    cut = []

    def dribble(sock: socket.socket) -> None:
        try:  # a line every half second, never the final dot
            while time.monotonic() - started < 3 * TIMEOUT:
                sock.sendall(b"x\r\n")
                time.sleep(0.5)
        except OSError:
            cut.append(time.monotonic() - started)

    threads = [threading.Thread(target=dribble, args=(s,)) for s in slow]
    for thread in threads:
        thread.start()
    for n in range(3):
        well_behaved(served, n)
    for thread in threads:
        thread.join()
    assert len(cut) == len(slow), "a slow sender kept its session past the timeout"
    assert max(cut) < 2 * TIMEOUT + 2
    assert not {m for m in stored(served) if m.startswith("<slow")}


def test_oversized_data_is_refused_without_slowing_anyone(patient):
    served = patient
    results = {}

    def flood_data(name: str, line: bytes, lines: int) -> None:
        sock, _ = connect(served.port)
        reader = sock.makefile("rb")
        for command in (b"EHLO big", b"MAIL FROM:<big@acme.it>", b"RCPT TO:<hd@example.com>",
                        b"DATA"):
            sock.sendall(command + b"\r\n")
        header = f"Message-ID: <{name}@acme.it>\r\nSubject: big\r\n\r\n".encode()
        sock.sendall(header + line * lines + b".\r\n")
        # EHLO, MAIL, RCPT, DATA (354), then the verdict on the message
        results[name] = [reply(reader) for _ in range(5)][-1]
        sock.close()

    senders = [threading.Thread(target=flood_data, args=("big.lines", b"y" * 998 + b"\r\n",
                                                         20_000)),
               threading.Thread(target=flood_data, args=("big.line", b"z" * 20_000_000 + b"\r\n",
                                                         1))]
    for sender in senders:
        sender.start()
    for n in range(3):
        well_behaved(served, n)
    for sender in senders:
        sender.join(timeout=60)
    assert results["big.lines"].startswith(b"552 5.3.4"), results
    assert results["big.line"][:3] in (b"500", b"552"), results
    assert not {m for m in stored(served) if m.startswith("<big")}


def test_bad_commands_are_answered_and_cut_off_while_others_are_served(served):
    junk = [b"\x00\x01\x02 binary", b"HELO " + b"h" * 5000, b"FOO bar", b"MAIL FROM:<<>>",
            b"RCPT TO:<x@example.com>\r\nDATA", b"\xff\xfe", b"BDAT 10", b"AUTH PLAIN AAAA",
            b"VRFY root", b"EXPN staff"] * 20
    sock, _ = connect(served.port)
    reader = sock.makefile("rb")
    replies = []
    try:
        for line in junk:
            sock.sendall(line + b"\r\n")
            replies.append(reader.readline())
    except OSError:
        pass
    answered = [r for r in replies if r]
    assert answered and all(r[:1] in (b"2", b"5") for r in answered)  # no 4xx, no 354
    try:
        rest = reader.read()
    except TimeoutError:
        rest = b"(still open)"
    except OSError:  # reset: closed too
        rest = b""
    assert rest == b"", "the server never hung up on a client sending only junk"
    well_behaved(served, 1)
    wait_for(lambda: served.query("SELECT count(*) FROM spool")[0][0] == 1, 10, "the good mail")
