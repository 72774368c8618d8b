"""Mail loops.  Two ``mailgate serve`` that write to each other (each one's relay is
the other's listener, each one's staff address a mailbox of the other, each one's
domain a customer of the other), and a vacation robot that answers every mail without
any automatic header.  The attack works if the mail keeps going round: each loop must
die out within ``outbound.auto_reply_limit`` (here 3) mails to an address.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import smtplib
import time
from contextlib import ExitStack

import pytest

from tests.faults.traffic import smtp_server
from tests.helpers import COMPANIES, STAFF, Home, free_port, mail, make_home, serving

pytestmark = pytest.mark.e2e

LIMIT = 3


def quiet(homes: list[Home], seconds: float = 3.0, timeout: float = 90.0) -> None:
    """Wait until no home spools anything new for ``seconds`` and nothing is pending
    or queued."""
    def state():
        return [(h.query("SELECT count(*) FROM spool")[0][0],
                 h.query("SELECT count(*) FROM spool WHERE state = 'pending'")[0][0]
                 + h.query("SELECT count(*) FROM outbox WHERE state = 'queued'")[0][0])
                for h in homes]

    deadline, last, since = time.monotonic() + timeout, None, time.monotonic()
    while time.monotonic() < deadline:
        now = state()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= seconds and all(q == 0 for _, q in now):
            return
        time.sleep(0.2)
    raise AssertionError(f"the mail never stopped: {state()}")


def instance(root, port: int, domain: str, other_domain: str, relay_port: int) -> Home:
    """A mailgate for ``domain`` listening on ``port``, whose outbound goes to
    ``relay_port`` and whose staff address is the ``create@`` mailbox of
    ``other_domain``, a customer here."""
    home = make_home(root, port=port, upgrade=False)
    text = home.config.read_text().replace("example.com", domain)
    text = text.replace(f'notify = "staff@{domain}"', f'notify = "create@{other_domain}"')
    home.config.write_text(text + f"""
[outbound]
transport = "smtp"
host = "127.0.0.1"
port = {relay_port}
from = "Help Desk <hd@{domain}>"
auto_reply_limit = {LIMIT}
[tickets]
auto_mail_per_ticket = {LIMIT}
""")
    (root / "rules" / "companies.toml").write_text(COMPANIES + f"""
[[company]]
name = "The other desk"
domains = ["{other_domain}"]
language = "en"
plan = "standard"
""")
    (root / "rules" / "staff.toml").write_text(STAFF.replace("example.com", domain))
    home.cli("db", "upgrade")
    return home


class Stripper:
    """A forwarding hop that drops Auto-Submitted, X-Loop and Precedence, as some
    forwarders and list servers do: then nothing but mailgate's limits stops a loop."""

    def __init__(self, port: int):
        self.port = port

    async def handle_DATA(self, server, session, envelope):
        """Forward the mail without its automatic headers."""
        head, _, body = envelope.original_content.partition(b"\r\n\r\n")
        kept = [line for line in head.split(b"\r\n")
                if not line.lower().startswith((b"auto-submitted", b"x-loop", b"precedence"))]
        raw = b"\r\n".join(kept) + b"\r\n\r\n" + body
        await asyncio.get_running_loop().run_in_executor(None, self.forward, envelope, raw)
        return "250 2.0.0 OK"

    def forward(self, envelope, raw: bytes) -> None:
        """Hand ``raw`` to the listener behind this hop."""
        with smtplib.SMTP("127.0.0.1", self.port, timeout=10) as client:
            client.sendmail(envelope.mail_from, envelope.rcpt_tos, raw)


@pytest.mark.parametrize("hop", ["direct", "stripping"])
def test_two_desks_writing_to_each_other_stop(tmp_path, hop):
    ports = free_port(), free_port()
    with ExitStack() as stack:
        relays = list(ports[::-1])  # A's relay is B's listener and B's A's
        if hop == "stripping":
            relays = [stack.enter_context(smtp_server(Stripper(port))).port for port in relays]
        a = instance(tmp_path / "a", ports[0], "desk-a.test", "desk-b.test", relays[0])
        b = instance(tmp_path / "b", ports[1], "desk-b.test", "desk-a.test", relays[1])
        with serving(a), serving(b):
            # B's help desk writes to A, as a customer would.
            with smtplib.SMTP("127.0.0.1", a.port, timeout=10) as client:
                client.send_message(mail("hd@desk-b.test", "Hello from the other desk",
                                         to="hd@desk-a.test"))
            quiet([a, b])
    for home in (a, b):
        kinds = home.query('SELECT "to", template, ticket_number, count(*) FROM outbox '
                           "GROUP BY 1, 2, 3")
        assert all(n <= LIMIT for *_, n in kinds), kinds
    spooled = [h.query("SELECT count(*) FROM spool")[0][0] for h in (a, b)]
    # The first mail, then per desk its auto reply, its new-ticket notice and at most
    # LIMIT notices of the other desk's replies.
    assert sum(spooled) <= 1 + 2 * (LIMIT + 2), f"the desks kept writing: {spooled}"
    print(f"FIGURES two desks, {hop}: spooled a={spooled[0]} b={spooled[1]}")


class Robot:
    """A vacation robot: answers every mail to its address, with no Auto-Submitted,
    no Precedence and no X-Loop; the rest of what the relay gets it keeps."""

    def __init__(self, address: str, desk_port: int, threads_replies: bool):
        self.address, self.desk_port, self.threads = address, desk_port, threads_replies
        self.got: list[email.message.EmailMessage] = []
        self.answered = 0

    async def handle_DATA(self, server, session, envelope):
        """Keep and answer a mail to the robot; take anything else silently."""
        msg = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        if self.address in [r.lower() for r in envelope.rcpt_tos]:
            self.got.append(msg)
            await asyncio.get_running_loop().run_in_executor(None, self.answer, msg)
        return "250 2.0.0 OK"

    def answer(self, msg) -> None:
        """The robot's reply to ``msg``, sent to the desk's listener."""
        self.answered += 1
        reply = mail(self.address, f"Re: {msg['Subject']}" if self.threads else "I am away",
                     "I am on holiday until Monday. Your mail will not be read.",
                     in_reply_to=msg["Message-ID"] if self.threads else None)
        with smtplib.SMTP("127.0.0.1", self.desk_port, timeout=10) as client:
            client.send_message(reply)


@pytest.mark.parametrize("threads_replies", [True, False], ids=["re-subject", "new-subject"])
def test_a_vacation_robot_without_headers_stops_within_the_limit(tmp_path, threads_replies):
    desk_port = free_port()
    robot = Robot("robot@acme.it", desk_port, threads_replies)
    with smtp_server(robot) as relay:
        home = make_home(tmp_path, port=desk_port, extra=(
            f'[outbound]\ntransport = "smtp"\nhost = "127.0.0.1"\nport = {relay.port}\n'
            f"auto_reply_limit = {LIMIT}\n"))
        with serving(home):
            with smtplib.SMTP("127.0.0.1", home.port, timeout=10) as client:
                client.send_message(mail("robot@acme.it", "Printer broken"))
            quiet([home])
    assert 1 <= len(robot.got) <= LIMIT, f"{len(robot.got)} mails to the robot"
    suppressed = home.query("SELECT count(*) FROM event WHERE kind = 'auto_mail_suppressed'")
    print(f"FIGURES robot {threads_replies=}: mails to the robot={len(robot.got)} "
          f"robot answers={robot.answered} suppressed={suppressed[0][0]}")
