"""The IMAP door against a real Dovecot on loopback.

Mail is put in a user's folder with APPEND, as the user's MTA would have delivered
it; the door takes it with ``poll_once`` (in-process, on a ``Desk``), with ``watch``
in a thread, or inside ``mailgate serve``.  Each test checks what a user looks at:
the tickets, and what is left in the IMAP folders afterwards.  Every test has an
IMAP user of its own, so no test sees another's mail.
"""

from __future__ import annotations

import email.policy
import json
import ssl
import threading
import time

import pytest
from sqlalchemy.exc import OperationalError
from sqlmodel import select

from mailgate import pipeline, spool, views
from mailgate.db import session_scope
from mailgate.inbound import imap
from mailgate.inbound.imap import PollResult, poll_once
from mailgate.models import ImapState
from tests.desk import Desk
from tests.helpers import mail, make_home, serving

pytestmark = pytest.mark.e2e

SEEN, PROCESSED = b"\\Seen", b"$MailgateProcessed"

# --- helpers ---------------------------------------------------------------------------

def raw(msg) -> bytes:
    return msg.as_bytes(policy=email.policy.SMTP)


def append(user, *msgs, folder: str = "INBOX") -> None:
    """Deliver ``msgs`` into ``folder`` of ``user``'s mailbox."""
    with user.client() as client:
        for msg in msgs:
            client.append(folder, msg if isinstance(msg, bytes) else raw(msg))


def folder_flags(user, folder: str) -> list[set[bytes]]:
    """The flags of each message in ``folder``, in UID order ([] if there is none)."""
    with user.client() as client:
        if not client.folder_exists(folder):
            return []
        client.select_folder(folder, readonly=True)
        flags = client.get_flags(client.search(["ALL"]))
        return [set(flags[uid]) for uid in sorted(flags)]


def desk_for(tmp_path, user, **imap_keys) -> Desk:
    return Desk(tmp_path, extra_config=user.imap_toml(**imap_keys))


def poll_and_process(desk: Desk) -> PollResult:
    """``mailgate poll --once`` in-process: poll the account, then run the pipeline."""
    result = poll_once(desk.svc, desk.svc.config.imap[0])
    process_pending(desk)
    return result


def process_pending(desk: Desk) -> None:
    for spool_id in spool.pending_ids(desk.svc.engine):
        pipeline.process(desk.svc, spool_id)


def tickets(desk: Desk) -> list[dict]:
    """``tickets list --json``, oldest first."""
    with session_scope(desk.svc.engine) as session:
        return sorted(views.list_tickets(session), key=lambda t: t["number"])


def wait_for(predicate, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.05)
    raise AssertionError(f"not true after {timeout}s: {predicate}")


class WithoutMove:
    """A real client that pretends its server lacks MOVE (RFC 6851), as older ones do."""

    def __init__(self, client):
        self._client = client

    def has_capability(self, capability: str) -> bool:
        return capability.upper() != "MOVE" and self._client.has_capability(capability)

    def move(self, *args):
        raise AssertionError("MOVE used although the server does not offer it")

    def __getattr__(self, name):
        return getattr(self._client, name)


# --- poll --once -----------------------------------------------------------------------

def test_poll_turns_each_mail_into_a_ticket_and_moves_it_unread(tmp_path, imap_user):
    desk = desk_for(tmp_path, imap_user)
    append(imap_user, mail("mario@acme.it", "Stampante guasta"),
           mail("anna@beta.hu", "Nem megy a levelezés"), mail("luigi@acme.it", "VPN down"))

    assert poll_and_process(desk) == PollResult(fetched=3, spooled=3, duplicates=0, left=0)

    got = tickets(desk)
    assert [(t["subject"], t["company"], t["requester"]) for t in got] == [
        ("Stampante guasta", "Acme Srl", "mario@acme.it"),
        ("Nem megy a levelezés", "Beta Kft", "anna@beta.hu"),
        ("VPN down", "Acme Srl", "luigi@acme.it")]
    assert all(t["origin"] == "mail" and t["status"] == "new" for t in got)
    assert len(desk.outbox("mario@acme.it")) == 1  # the auto reply with the number
    assert folder_flags(imap_user, "INBOX") == []
    processed = folder_flags(imap_user, "Processed")
    assert len(processed) == 3
    # MOVE keeps flags: no \Seen means the fetch did not mark the mail as read.
    assert not any(SEEN in flags for flags in processed)
    spooled = desk.home.query("SELECT door, mail_from, rcpt_tos FROM spool")
    assert [(door, sender, json.loads(rcpts) if isinstance(rcpts, str) else rcpts)
            for door, sender, rcpts in spooled] == [("imap", None, ["hd@example.com"])] * 3


def test_second_poll_takes_nothing_and_a_redelivery_makes_no_second_ticket(tmp_path,
                                                                           imap_user):
    desk = desk_for(tmp_path, imap_user)
    first = mail("piero@acme.it", "Mouse rotto")
    append(imap_user, first)
    assert poll_and_process(desk).spooled == 1

    assert poll_and_process(desk) == PollResult(0, 0, 0, 0)

    append(imap_user, first)  # the same Message-ID delivered a second time
    assert poll_and_process(desk) == PollResult(fetched=1, spooled=0, duplicates=1, left=0)
    assert len(tickets(desk)) == 1
    assert folder_flags(imap_user, "INBOX") == []
    assert len(folder_flags(imap_user, "Processed")) == 2


def test_without_move_the_mail_is_copied_deleted_and_expunged(tmp_path, imap_user):
    desk = desk_for(tmp_path, imap_user)
    append(imap_user, mail("carla@acme.it", "Old server"), mail("carla@acme.it", "Second"))

    with imap_user.client() as client:
        assert client.has_capability("UIDPLUS")
        result = imap.poll(WithoutMove(client), desk.svc, desk.svc.config.imap[0])
    process_pending(desk)

    assert result == PollResult(fetched=2, spooled=2, duplicates=0, left=0)
    assert [t["subject"] for t in tickets(desk)] == ["Old server", "Second"]
    assert folder_flags(imap_user, "INBOX") == []
    processed = folder_flags(imap_user, "Processed")
    assert len(processed) == 2 and not any(b"\\Deleted" in f or SEEN in f for f in processed)


def test_without_processed_folder_mail_stays_flagged_and_is_not_taken_again(tmp_path,
                                                                           imap_user):
    desk = desk_for(tmp_path, imap_user, processed_folder="")
    append(imap_user, mail("mario@acme.it", "Keep it here"))

    assert poll_and_process(desk).spooled == 1
    assert [flags >= {SEEN, PROCESSED} for flags in folder_flags(imap_user, "INBOX")] == [True]
    with imap_user.client() as client:
        assert not client.folder_exists("Processed")

    append(imap_user, mail("mario@acme.it", "And this too"))
    assert poll_and_process(desk) == PollResult(fetched=1, spooled=1, duplicates=0, left=0)
    assert poll_and_process(desk).fetched == 0
    assert [t["subject"] for t in tickets(desk)] == ["Keep it here", "And this too"]
    assert len(folder_flags(imap_user, "INBOX")) == 2


def test_a_new_uidvalidity_makes_the_folder_read_again(tmp_path, imap_user):
    desk = desk_for(tmp_path, imap_user, folder="Support")
    with imap_user.client() as client:
        client.create_folder("Support")
    append(imap_user, mail("a@acme.it", "One"), mail("b@acme.it", "Two"), folder="Support")
    assert poll_and_process(desk).spooled == 2
    before = state_of(desk)

    with imap_user.client() as client:  # the folder is deleted and made again
        client.delete_folder("Support")
        client.create_folder("Support")
    append(imap_user, mail("c@acme.it", "Three"), mail("d@acme.it", "Four"), folder="Support")
    with imap_user.client() as client:
        client.select_folder("Support", readonly=True)
        assert max(client.search(["ALL"])) <= before.last_uid  # UIDs are low again

    assert poll_and_process(desk) == PollResult(fetched=2, spooled=2, duplicates=0, left=0)
    assert [t["subject"] for t in tickets(desk)] == ["One", "Two", "Three", "Four"]
    after = state_of(desk)
    assert after.uidvalidity != before.uidvalidity and after.last_uid == 2
    assert folder_flags(imap_user, "Support") == []


def state_of(desk: Desk) -> ImapState:
    with session_scope(desk.svc.engine) as session:
        return session.exec(select(ImapState)).one()


def test_a_locked_database_leaves_the_mail_in_place_until_it_is_free(tmp_path, imap_user):
    desk = desk_for(tmp_path, imap_user)
    assert poll_and_process(desk).fetched == 0  # the account's state row exists
    append(imap_user, mail("mario@acme.it", "During the backup"))

    locked, release = threading.Event(), threading.Event()

    def hold_lock():  # e.g. another process holds the write lock past the busy timeout
        with desk.home.database_unavailable():
            locked.set()
            release.wait(30)

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        assert locked.wait(5)
        # SQLite: the poll fetches and cannot store (left=1); PostgreSQL refusing every
        # connection: the account's lease cannot even be taken, and the poll says so.
        result = poll_once(desk.svc, desk.svc.config.imap[0])
    except OperationalError:
        result = None
    finally:
        release.set()
        holder.join()

    assert result in (PollResult(fetched=1, spooled=0, duplicates=0, left=1), None)
    [flags] = folder_flags(imap_user, "INBOX")
    assert SEEN not in flags and PROCESSED not in flags  # untouched, still unread
    assert desk.home.query("SELECT count(*) FROM spool") == [(0,)]

    assert poll_and_process(desk) == PollResult(fetched=1, spooled=1, duplicates=0, left=0)
    assert poll_and_process(desk).fetched == 0
    assert [t["subject"] for t in tickets(desk)] == ["During the backup"]
    assert folder_flags(imap_user, "INBOX") == []


def test_the_same_mail_by_smtp_and_by_imap_is_one_ticket(tmp_path, imap_user):
    desk = desk_for(tmp_path, imap_user)
    msg = mail("mario@acme.it", "Sent to both addresses")
    assert desk.deliver(msg).outcome == "created"  # the SMTP door had it first
    append(imap_user, msg)

    assert poll_and_process(desk) == PollResult(fetched=1, spooled=0, duplicates=1, left=0)
    assert len(tickets(desk)) == 1
    assert desk.home.query("SELECT door FROM spool") == [("smtp",)]
    assert len(desk.outbox("mario@acme.it")) == 1  # one auto reply, not two
    assert folder_flags(imap_user, "INBOX") == []


@pytest.mark.parametrize("tls", ["ssl", "starttls"])
def test_poll_over_tls_verifies_the_server_certificate(tmp_path, imap_user, tls):
    port = imap_user.ssl_port if tls == "ssl" else imap_user.port
    desk = desk_for(tmp_path, imap_user, tls=tls, port=port)
    append(imap_user, mail("mario@acme.it", f"Over {tls}"))

    assert poll_and_process(desk).spooled == 1
    assert [t["subject"] for t in tickets(desk)] == [f"Over {tls}"]

    # Without the private CA the self-signed certificate is refused.
    untrusted = desk.svc.config.imap[0].model_copy(update={"cafile": None})
    with pytest.raises(ssl.SSLCertVerificationError):
        poll_once(desk.svc, untrusted)


def test_a_wrong_password_is_an_error_not_a_silent_nothing(tmp_path, imap_user):
    desk = desk_for(tmp_path, imap_user, password="wrong")
    with pytest.raises(imap.CONNECTION_ERRORS):
        poll_once(desk.svc, desk.svc.config.imap[0])


def test_mailgate_poll_once_command(tmp_path, imap_user):
    desk = desk_for(tmp_path, imap_user)
    append(imap_user, mail("mario@acme.it", "Via the command line"))

    done = desk.home.cli("poll", "--once")

    assert "1 fetched, 1 new, 0 already received, 0 left" in done.stdout
    [ticket] = tickets(desk)
    assert ticket["subject"] == "Via the command line" and ticket["company"] == "Acme Srl"
    assert folder_flags(imap_user, "INBOX") == []
    assert desk.home.query("SELECT state FROM spool") == [("processed",)]


def test_reconnect_backoff_doubles_to_a_minute_with_jitter():
    retry = imap.Backoff()
    delays = [retry.next() for _ in range(9)]
    for delay, base in zip(delays, [1, 2, 4, 8, 16, 32, 60, 60, 60], strict=True):
        assert 0.8 * base <= delay <= 1.2 * base
    retry.reset()
    assert retry.next() <= 1.2


# --- watch: IDLE, stop, reconnect --------------------------------------------------------

class Watching:
    """``watch`` running in a thread on ``desk``, as the daemon runs it."""

    def __init__(self, desk: Desk):
        self.desk, self.stop, self.woken = desk, threading.Event(), threading.Event()
        self.thread = threading.Thread(target=imap.watch, daemon=True, args=(
            desk.svc, desk.svc.config.imap[0], self.stop, self.woken.set))

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(5)
        assert not self.thread.is_alive(), "watch did not leave within 5 s of stop"

    def spooled(self) -> int:
        return self.desk.home.query("SELECT count(*) FROM spool")[0][0]


class MailDuringSearch:
    """A real client; a mail is delivered while its first SEARCH runs, and the server's
    EXISTS for it comes in the reply to that command (here: a NOOP right after), as
    when the mail lands between the search and the reply."""

    def __init__(self, client, user, msg):
        self._client, self._user, self._msg = client, user, msg

    def search(self, *args):
        found = self._client.search(*args)
        if self._msg is not None:
            append(self._user, self._msg)
            self._client.noop()  # the announcement is read and gone
            self._msg = None
        return found

    def __getattr__(self, name):
        return getattr(self._client, name)


def test_mail_announced_during_an_empty_poll_is_taken_before_idling(tmp_path, imap_user):
    # Once EXISTS has been read in a reply to our own command, IDLE does not announce
    # the mail again: it would wait for the next mail or the IDLE renewal (9 minutes).
    desk = desk_for(tmp_path, imap_user, poll_interval="10m")
    account = desk.svc.config.imap[0]
    with imap_user.client() as client:
        racing = MailDuringSearch(client, imap_user, mail("mario@acme.it", "During the search"))
        result = imap._poll_until_quiet(racing, desk.svc, account, lambda: None,
                                        threading.Event())
    assert result.fetched == 0
    process_pending(desk)
    assert [t["subject"] for t in tickets(desk)] == ["During the search"]
    assert folder_flags(imap_user, "INBOX") == []


def test_watch_idles_wakes_on_new_mail_and_stops_at_once(tmp_path, imap_user):
    desk = desk_for(tmp_path, imap_user, poll_interval="10m")  # only IDLE can wake it
    append(imap_user, mail("mario@acme.it", "Before start"))
    with Watching(desk) as watching:
        wait_for(lambda: watching.spooled() == 1)
        time.sleep(0.5)  # let it enter IDLE
        started = time.monotonic()
        append(imap_user, mail("mario@acme.it", "While idling"))
        wait_for(lambda: watching.spooled() == 2, timeout=5)
        assert time.monotonic() - started < 3
        assert watching.woken.is_set()
        stopping = time.monotonic()
    assert time.monotonic() - stopping < 2.5  # stop is seen within about a second
    process_pending(desk)
    assert [t["subject"] for t in tickets(desk)] == ["Before start", "While idling"]
    assert folder_flags(imap_user, "INBOX") == []


def test_watch_without_idle_polls_every_interval(tmp_path, imap_user):
    desk = desk_for(tmp_path, imap_user, idle=False, poll_interval="1s")
    with Watching(desk) as watching:
        time.sleep(0.3)
        append(imap_user, mail("mario@acme.it", "Polled"))
        wait_for(lambda: watching.spooled() == 1, timeout=5)
    assert folder_flags(imap_user, "INBOX") == []


def test_watch_reconnects_after_a_server_restart(tmp_path, imap_user, dovecot, caplog):
    desk = desk_for(tmp_path, imap_user, poll_interval="10m")
    with Watching(desk) as watching:
        time.sleep(0.5)
        dovecot.restart()
        append(imap_user, mail("mario@acme.it", "After the restart"))
        wait_for(lambda: watching.spooled() == 1, timeout=20)
    assert "reconnecting" in caplog.text
    assert folder_flags(imap_user, "INBOX") == []


# --- mailgate serve ----------------------------------------------------------------------

def test_serve_takes_mail_while_idling(tmp_path, imap_user):
    home = make_home(tmp_path, extra=imap_user.imap_toml(poll_interval="10m"))
    append(imap_user, mail("mario@acme.it", "Waiting before start"))
    with serving(home):
        home.wait_settled(1)
        time.sleep(0.5)
        append(imap_user, mail("anna@beta.hu", "Sent while it idles"))
        home.wait_settled(2, timeout=10)
        listed = home.json("tickets", "list")
    assert sorted(t["subject"] for t in listed) == ["Sent while it idles",
                                                    "Waiting before start"]
    assert folder_flags(imap_user, "INBOX") == []
    assert len(home.mails_to("anna@beta.hu")) == 1


def test_serve_survives_a_dovecot_restart(tmp_path, imap_user, dovecot):
    home = make_home(tmp_path, extra=imap_user.imap_toml(poll_interval="10m"))
    with serving(home):
        time.sleep(1)
        dovecot.restart()
        append(imap_user, mail("mario@acme.it", "After the restart"))
        home.wait_settled(1, timeout=30)
        [ticket] = home.json("tickets", "list")
    assert ticket["subject"] == "After the restart"
    assert folder_flags(imap_user, "INBOX") == []


def test_mail_over_the_size_limit_is_flagged_and_left_for_a_person(tmp_path, imap_user):
    desk = desk_for(tmp_path, imap_user)
    big = mail("mario@acme.it", "Huge scan")
    big.set_content(("s" * 76 + "\n") * 3000)  # about 230 kB; the test limit is 200 kB
    append(imap_user, big, mail("mario@acme.it", "Small one"))
    result = poll_and_process(desk)
    assert (result.too_big, result.spooled, result.left) == (1, 1, 0)
    assert [t["subject"] for t in tickets(desk)] == ["Small one"]
    [flags] = folder_flags(imap_user, "INBOX")
    assert b"$MailgateTooBig" in flags and SEEN not in flags
    assert poll_and_process(desk) == PollResult()  # passed by for good, not refetched
