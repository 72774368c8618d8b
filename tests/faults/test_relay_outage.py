"""The relay refuses, or takes no answer, for a simulated hour while tickets open and
staff answer: afterwards every notification is delivered, none twice, and each
recipient gets the mails about a ticket in the order they were written.

The relay is a real aiosmtpd server on loopback; the hour passes on the desk's fake
clock, with ``send.drain`` run every 10 simulated seconds as the outbox worker runs
it.  Refusal is a ``451`` at RCPT; "times out" is a relay that does not answer RCPT
within the client's timeout (a relay that took DATA and then went silent could not be
told from one that lost it: RFC 5321 §4.1.1.4's duplicate problem, out of scope).

Short: the refusal lasts the full hour, the silence 15 minutes; long: both an hour.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections import defaultdict

import pytest

from mailgate.outbound import send
from tests.desk import Desk
from tests.faults.traffic import smtp_server
from tests.helpers import mail
from tests.ledger import Figures

pytestmark = pytest.mark.e2e

STEP = 10  # simulated seconds between two runs of the outbox worker


class Relay:
    """An aiosmtpd handler that accepts, refuses (451 at RCPT) or stalls at RCPT."""

    def __init__(self):
        self.mode = "accept"
        self.received: list[tuple[str, str]] = []  # (recipient, Message-ID) in arrival order

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        """Take the recipient, refuse it, or say nothing for 2 s and refuse it."""
        if self.mode == "stall":
            await asyncio.sleep(2)
        if self.mode != "accept":
            return "451 4.3.2 Relay busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        """Keep (recipient, Message-ID) for each recipient."""
        msg = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        for rcpt in envelope.rcpt_tos:
            self.received.append((rcpt.lower(), msg["Message-ID"]))
        return "250 2.0.0 Stored"


@pytest.fixture
def relay():
    """The relay, accepting until a test says otherwise."""
    with smtp_server(Relay()) as controller:
        yield controller


def desk_on(tmp_path, relay) -> Desk:
    """A desk whose outbound goes to ``relay``; staff mail needs no authentication."""
    return Desk(tmp_path, extra_config=(
        'auth = "none"\n[outbound]\ntransport = "smtp"\nhost = "127.0.0.1"\n'
        f"port = {relay.port}\n"))


# What happens during the hour, in simulated seconds.  The staff answer at 1,900 s is
# chosen so that its backoff falls due (3,790 s) before that of the auto reply it
# follows (3,810 s): without the per-ticket order the customer would read the answer
# first.
EVENTS = [
    (0, mail("mario@acme.it", "Printer broken", message_id="<a1@acme.it>")),
    (300, mail("anna@beta.hu", "VPN down", message_id="<b1@beta.hu>")),
    (1900, mail("alice@example.com", "Re: [#10000] Printer broken",
                "#status open\n\nWe are on it.\n", message_id="<s1@example.com>")),
    (2400, mail("mario@acme.it", "Re: [#10000] Printer broken", "Any news?\n",
                message_id="<a2@acme.it>")),
    (3000, mail("alice@example.com", "Re: [#10001] VPN down",
                "#status resolved\n\nRestarted the gateway.\n", message_id="<s2@example.com>")),
]


def run_hour(desk: Desk, transport, refusing: float) -> None:
    """The events of EVENTS that fall within ``refusing`` seconds, with the worker
    running every STEP seconds, on the desk's clock."""
    cfg = desk.svc.config.outbound
    start = desk.clock()
    pending = [(at, msg) for at, msg in EVENTS if at < refusing]
    elapsed = 0
    while elapsed < refusing:
        while pending and pending[0][0] <= elapsed:
            desk.deliver(pending.pop(0)[1])
        send.drain(desk.svc.engine, transport, cfg, desk.clock())
        desk.clock.advance(seconds=STEP)
        elapsed = (desk.clock() - start).total_seconds()


def settle(desk: Desk, transport) -> None:
    """Run the worker until nothing is queued (at most two simulated hours)."""
    cfg = desk.svc.config.outbound
    for _ in range(2 * 3600 // STEP):
        send.drain(desk.svc.engine, transport, cfg, desk.clock())
        if not desk.home.query("SELECT count(*) FROM outbox WHERE state = 'queued'")[0][0]:
            return
        desk.clock.advance(seconds=STEP)
    raise AssertionError(f"still queued: {desk.home.query('SELECT * FROM outbox')}")


def check_delivery(desk: Desk, relay: Relay) -> Figures:
    """Every outbox row reached the relay once, in order per ticket and recipient."""
    rows = desk.home.query('SELECT id, ticket_number, "to", message_id, state FROM outbox '
                           "ORDER BY id")
    got = [mid for _, mid in relay.received]
    written = defaultdict(list)
    for _, number, to, mid, _ in rows:
        written[(number, to)].append(mid)
    for (number, to), mids in written.items():
        arrived = [mid for rcpt, mid in relay.received if rcpt == to and mid in mids]
        assert arrived == mids, f"mails about #{number} reached {to} out of order"
    return Figures(sent=len(rows), acknowledged=len(got),
                   processed=sum(state == "sent" for *_, state in rows),
                   lost=len({mid for *_, mid, _ in rows} - set(got)),
                   duplicated=len(got) - len(set(got)),
                   notes={"attempts": desk.home.query("SELECT sum(attempts) FROM outbox")[0][0]})


@pytest.mark.parametrize("mode", ["refuse", "stall"])
def test_an_hour_without_relay_then_every_notification_once_and_in_order(
        tmp_path, relay, mode, scale, report):
    refusing = 3600 if mode == "refuse" else scale(900, 3600)
    desk = desk_on(tmp_path, relay)
    # The stalled relay is given up on after 0.3 s instead of the daemon's 30: the same
    # code path, without an hour of real waiting.
    transport = send.SmtpTransport(desk.svc.config.outbound, timeout=0.3)
    relay.handler.mode = mode
    run_hour(desk, transport, refusing)
    assert relay.handler.received == [], "the relay was supposed to take nothing"
    queued = desk.home.query("SELECT count(*) FROM outbox WHERE state = 'queued'")[0][0]
    assert queued >= 4 and desk.home.query("SELECT max(attempts) FROM outbox")[0][0] > 3

    relay.handler.mode = "accept"
    settle(desk, transport)
    figures = check_delivery(desk, relay.handler)
    figures.notes["simulated_s"] = refusing
    report(figures)
    assert figures.processed == figures.sent
