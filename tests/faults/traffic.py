"""Mail for the fault tests: numbered messages whose Message-IDs are known before they
are sent (so a test can retry exactly those that got no 250, as an MTA would), and
senders that say what each attempt got."""

from __future__ import annotations

import smtplib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email.message import EmailMessage

from aiosmtpd.controller import Controller

from tests.helpers import free_port, mail


def numbered(prefix: str, count: int, domain: str = "acme.it") -> list[EmailMessage]:
    """``count`` new-ticket mails from customers of ``domain``, Message-IDs
    ``<PREFIX.N@flood.test>``."""
    return [mail(f"{prefix}-user{n}@{domain}", f"{prefix} mail {n}",
                 message_id=f"<{prefix}.{n}@flood.test>") for n in range(count)]


def send_all(port: int, msgs: list[EmailMessage], connections: int = 4,
             on_ack: Callable[[int], None] = lambda total: None) -> set[str]:
    """Send ``msgs`` over ``connections`` SMTP sessions; the Message-IDs that got a
    250.  A session that breaks (a killed daemon) leaves the rest of its share unsent;
    ``on_ack`` hears the running total after every 250."""
    acked: set[str] = set()
    lock = threading.Lock()

    def session(share: list[EmailMessage]) -> None:
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
                for msg in share:
                    client.send_message(msg)
                    with lock:
                        acked.add(msg["Message-ID"])
                        total = len(acked)
                    on_ack(total)
        except (smtplib.SMTPException, OSError):
            return

    threads = [threading.Thread(target=session, args=(msgs[n::connections],))
               for n in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=900)
    return acked


def send_patiently(port: int, msgs: list[EmailMessage], connections: int = 4,
                   timeout: float = 300) -> set[str]:
    """Send ``msgs`` as MTAs do: what gets no 250 (a 451, a broken session) is sent
    again a second later, until each is acknowledged or ``timeout`` runs out."""
    acked: set[str] = set()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = [m for m in msgs if m["Message-ID"] not in acked]
        if not left:
            break
        acked |= send_all(port, left, connections)
        if len(acked) < len(msgs):
            time.sleep(1)
    return acked


def smtp_reply(port: int, msg: EmailMessage, timeout: float = 30) -> int:
    """The reply code a single SMTP delivery of ``msg`` gets (0: no session at all)."""
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=timeout) as client:
            refused = client.send_message(msg)
            return 250 if not refused else 550
    except smtplib.SMTPResponseException as exc:
        return exc.smtp_code
    except smtplib.SMTPRecipientsRefused as exc:
        return next(iter(exc.recipients.values()))[0]
    except (smtplib.SMTPException, OSError):
        return 0


def processed(home, total: int, timeout: float = 120) -> None:
    """Wait until ``total`` spooled mails of ``home`` are processed."""
    wait_for(lambda: home.query("SELECT count(*) FROM spool WHERE state = 'processed'")[0][0]
             >= total, timeout, f"{total} mails processed")


def wait_for(predicate, timeout: float, what: str, step: float = 0.1):
    """``predicate()``'s first true value within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"not within {timeout}s: {what}")


@contextmanager
def smtp_server(handler) -> Iterator[Controller]:
    """An aiosmtpd server running ``handler`` on a free loopback port."""
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller
    finally:
        controller.stop()
