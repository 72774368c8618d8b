"""The IMAP door (imapclient): take new mail from a folder, spool it, then move it.

The door reads by UID only (RFC 3501 §2.3.1.1): a folder's UIDs grow, and the pair
(UIDVALIDITY, last UID taken) in the ``ImapState`` table says where it stopped.  When
UIDVALIDITY changes, the UIDs mean nothing any more and the folder is read again from
the start; the spool's dedupe key keeps mail already taken from becoming a second
ticket.

A message is fetched with ``BODY.PEEK[]`` so that reading it does not set ``\\Seen``,
committed to the spool, and only then moved to the processed folder: with MOVE where
the server has it (RFC 6851), else COPY, ``\\Deleted`` and UID EXPUNGE (UIDPLUS,
RFC 4315).  With no processed folder it is flagged ``\\Seen $MailgateProcessed`` and
stays.  When the database cannot take a message it stays where it is, untouched, and
is taken by a later poll (SPEC §2).

``watch`` is the long-running loop of ``mailgate serve``: it polls, then waits in IDLE
(RFC 2177, renewed well within the 29 minutes after which a server may log an idle
client out) or sleeps ``poll_interval``, and reconnects with a jittered exponential
backoff whenever the connection breaks.  Everything here blocks: run it in a thread.
"""

from __future__ import annotations

import imaplib
import logging
import random
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime

from imapclient import IMAPClient
from imapclient.imapclient import SocketTimeout
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import select

from mailgate import leases, runs, spool
from mailgate.bootstrap import Services
from mailgate.config import ImapConfig
from mailgate.db import TRANSIENT_ERRORS, session_scope
from mailgate.durations import parse_duration
from mailgate.models import ImapState

log = logging.getLogger("mailgate.imap")

PROCESSED_FLAG = b"$MailgateProcessed"
TOO_BIG_FLAG = b"$MailgateTooBig"
SEEN, DELETED = b"\\Seen", b"\\Deleted"
BODY = "BODY.PEEK[]"  # not RFC822, whose FETCH sets \Seen (RFC 3501 §6.4.5)
BATCH_MESSAGES = 50
BATCH_BYTES = 32 * 1024 * 1024  # one fetch holds at most this much mail in memory
TIMEOUT = SocketTimeout(connect=15, read=120)
IDLE_RENEW = 9 * 60.0  # RFC 2177 §3: re-issue IDLE at least every 29 minutes
DB_RETRY = 5.0  # seconds before retrying mail the database could not take
BACKOFF_FIRST, BACKOFF_MAX, JITTER = 1.0, 60.0, 0.2
LEASE_RETRY = 10.0  # how soon a waiting instance takes over an account whose poller died

# A broken connection shows up as any of these: the socket's own errors (which
# include ssl.SSLError and timeouts), or imaplib's error/abort that imapclient raises.
CONNECTION_ERRORS = (OSError, imaplib.IMAP4.error, EOFError)


@dataclass(frozen=True)
class PollResult:
    """What one poll did: ``fetched`` new messages were found in the folder; of them
    ``spooled`` were new to the spool, ``duplicates`` were there already (both were
    moved or flagged), ``too_big`` were over ``max_message_size`` (flagged and left
    for a person, never taken), and ``left`` stayed in the folder for a later poll."""

    fetched: int = 0
    spooled: int = 0
    duplicates: int = 0
    left: int = 0
    too_big: int = 0
    exists: int = field(default=0, compare=False)  # messages in the folder at its SELECT


class ConnectionLost(ConnectionError):
    """The server said BYE or closed the connection while we were idling."""


class Busy(RuntimeError):
    """Another instance on the same database is polling the account right now."""


class LeaseLost(RuntimeError):
    """The account's lease ended under its poller (the database's connection did)."""


def lease_name(account: ImapConfig) -> str:
    """The lease (leases.py) that makes one instance at a time poll ``account``."""
    return f"imap {account.key}"


def poll_once(svc: Services, account: ImapConfig,
              on_spooled: Callable[[], None] = lambda: None) -> PollResult:
    """Connect, take the new mail of ``account.folder`` once, and log out.

    Raises Busy when another instance holds the account's lease, raises on
    connection, login and IMAP errors, and when the database cannot even be read;
    mail the database refuses is left in place and counted in ``left``.
    """
    with leases.held(svc.engine, lease_name(account)) as mine:
        if not mine:
            raise Busy("another instance is polling this account now; nothing fetched")
        with connected(account) as client:
            return poll(client, svc, account, on_spooled)


def watch(svc: Services, account: ImapConfig, stop: threading.Event,
          on_spooled: Callable[[], None]) -> None:
    """Poll ``account`` until ``stop`` is set, while this instance holds its lease.

    With several instances on one database, one polls the account and the others
    try every LEASE_RETRY seconds to take over, which they do once it stops or dies.
    """
    told = False
    while not stop.is_set():
        try:
            with leases.held(svc.engine, lease_name(account)) as lease:
                if lease:
                    log.info("imap %s: this instance polls the account", account.key)
                    _watch_held(svc, account, stop, on_spooled, lease)
                    return
        except LeaseLost as exc:
            log.warning("imap %s: %s; stopped polling, taking the lease again", account.key,
                        exc)
            told = False
        except TRANSIENT_ERRORS as exc:
            log.warning("imap %s: cannot take the account's lease: %s", account.key, exc)
        else:
            if not told:
                log.info("imap %s: polled by another instance; waiting to take over",
                         account.key)
            told = True
        stop.wait(LEASE_RETRY)


def _watch_held(svc: Services, account: ImapConfig, stop: threading.Event,
                on_spooled: Callable[[], None], lease: leases.Lease) -> None:
    """The watch itself.  Raises only LeaseLost: a broken connection, a refused login
    or an unreachable database is logged on one line and retried after a jittered
    exponential backoff."""
    retry = Backoff()
    while not stop.is_set():
        try:
            with connected(account) as client:
                _session(client, svc, account, stop, on_spooled, retry.reset, lease)
            return
        except LeaseLost:
            raise
        except (*CONNECTION_ERRORS, *TRANSIENT_ERRORS) as exc:
            delay = retry.next()
            log.warning("imap %s: %s: %s; reconnecting in %.1fs",
                        account.key, type(exc).__name__, exc, delay)
        except Exception:  # noqa: BLE001 - a bug must not end the door for good
            delay = retry.next()
            log.exception("imap %s: unexpected error; reconnecting in %.1fs", account.key, delay)
        stop.wait(delay)


class Backoff:
    """Jittered exponential backoff: 1 s doubling to 60 s, each delay ±20 %.

    The jitter keeps several instances (or accounts) from hammering a server that
    has just come back all at the same moment.
    """

    def __init__(self, first: float = BACKOFF_FIRST, cap: float = BACKOFF_MAX,
                 jitter: float = JITTER):
        self.first, self.cap, self.jitter = first, cap, jitter
        self.failures = 0

    def next(self) -> float:
        """The delay before the next attempt; each call counts one more failure."""
        base = min(self.cap, self.first * 2 ** min(self.failures, 16))
        self.failures += 1
        return base * random.uniform(1 - self.jitter, 1 + self.jitter)

    def reset(self) -> None:
        """Start again from the first delay (called after a poll that worked)."""
        self.failures = 0


@contextmanager
def connected(account: ImapConfig) -> Iterator[IMAPClient]:
    """A logged-in client for ``account``; logs out (or drops the socket) on exit."""
    client = _connect(account)
    try:
        client.login(account.username, account.password or "")
        yield client
    except BaseException:
        with suppress(Exception):
            client.shutdown()
        raise
    else:
        with suppress(*CONNECTION_ERRORS):
            client.logout()


def _connect(account: ImapConfig) -> IMAPClient:
    """Open the connection as ``account.tls`` says: plain, STARTTLS or implicit TLS."""
    context = None
    if account.tls != "none":
        cafile = str(account.cafile) if account.cafile else None
        context = ssl.create_default_context(cafile=cafile)
    implicit = account.tls == "ssl"
    client = IMAPClient(account.host, port=account.port, ssl=implicit, ssl_context=context,
                        timeout=TIMEOUT)
    if account.tls == "starttls":
        try:
            client.starttls(context)
        except BaseException:
            with suppress(Exception):
                client.shutdown()
            raise
    return client


def _session(client: IMAPClient, svc: Services, account: ImapConfig, stop: threading.Event,
             on_spooled: Callable[[], None], healthy: Callable[[], None],
             lease: leases.Lease) -> None:
    """Poll, wait for news, poll again, until ``stop``; raises when the link breaks,
    and LeaseLost when the lease is found lost before a poll: another instance may
    be polling the account by then, and two pollers fetch every mail twice."""
    interval = parse_duration(account.poll_interval).total_seconds()
    use_idle = account.idle and client.has_capability("IDLE")
    log.info("imap %s: watching %s (%s)", account.key, account.folder,
             "IDLE" if use_idle else f"polling every {interval:g}s")
    while not stop.is_set():
        if lease.lost():
            raise LeaseLost("the account's lease ended with its database connection")
        result = _poll_until_quiet(client, svc, account, on_spooled, stop)
        healthy()
        if result.left:
            stop.wait(min(DB_RETRY, interval))
        elif use_idle:
            _idle_until_news(client, stop)
        else:
            stop.wait(interval)


def _poll_until_quiet(client: IMAPClient, svc: Services, account: ImapConfig,
                      on_spooled: Callable[[], None], stop: threading.Event) -> PollResult:
    """Poll until a poll finds nothing new, and the folder still holds as many
    messages as when that poll selected it.

    Mail that arrives while we search, fetch or move is announced (EXISTS, RFC 3501
    §7.3.1) in the reply to one of our own commands, where IDLE would never see it:
    one more poll takes it.  A poll that found nothing selects the folder once more
    to see whether such news came (a new mail after that is IDLE's to announce).
    """
    while True:
        result = poll(client, svc, account, on_spooled, stop)
        if result.left or stop.is_set():
            return result
        if not result.fetched and _exists(client, account) == result.exists:
            return result


def _exists(client: IMAPClient, account: ImapConfig) -> int:
    """How many messages ``account.folder`` holds now."""
    return int(client.select_folder(account.folder)[b"EXISTS"])


def _idle_until_news(client: IMAPClient, stop: threading.Event) -> bool:
    """IDLE until the folder has news (True), or a renewal is due or ``stop`` is set."""
    client.idle()
    renew_at = time.monotonic() + IDLE_RENEW
    quick_empty = 0
    news = False
    while not news and not stop.is_set() and time.monotonic() < renew_at:
        started = time.monotonic()
        responses = client.idle_check(timeout=1)
        news = _has_news(responses)
        # A socket that reads as ready but yields nothing, again and again, is one
        # the server closed: imapclient swallows that EOF inside idle_check.
        quick = not responses and time.monotonic() - started < 0.5
        quick_empty = quick_empty + 1 if quick else 0
        if quick_empty >= 3:
            raise ConnectionLost("the server closed the connection")
    client.idle_done()
    return news


def _has_news(responses: list) -> bool:
    """True for an untagged EXISTS or RECENT (RFC 3501 §7.3), or an untagged NO or BAD:
    Dovecot's only word when the folder is deleted under IDLE, after which nothing
    arrives in the folder made again, so select it again (its new UIDVALIDITY
    included).  Raises on BYE."""
    for response in responses:
        if len(response) >= 2 and response[1] in (b"EXISTS", b"RECENT"):
            return True
        if response and response[0] in (b"NO", b"BAD"):
            log.warning("imap: the server said %r during IDLE; selecting the folder again",
                        response)
            return True
        if response and response[0] == b"BYE":
            raise ConnectionLost(f"server said BYE {response[1:]!r}")
    return False


def poll(client: IMAPClient, svc: Services, account: ImapConfig,
         on_spooled: Callable[[], None] = lambda: None,
         stop: threading.Event | None = None) -> PollResult:
    """Take the new mail of ``account.folder`` on a logged-in ``client``."""
    info = client.select_folder(account.folder)
    uidvalidity, exists = int(info[b"UIDVALIDITY"]), int(info[b"EXISTS"])
    last_uid = _last_uid(svc.engine, account, uidvalidity, svc.clock())
    # "n:*" always matches the highest UID, even one below n (RFC 3501 §6.4.8).
    uids = sorted(u for u in client.search(["UID", f"{last_uid + 1}:*"]) if u > last_uid)
    if not uids:
        return PollResult(exists=exists)
    if account.processed_folder:
        _ensure_folder(client, account.processed_folder)
    taker = _Taker(client, svc, account, uidvalidity, on_spooled)
    sizes = _sizes(client, uids)
    for batch in runs.bounded(((uid, sizes[uid]) for uid in uids), BATCH_MESSAGES,
                              BATCH_BYTES):
        if not taker.take(batch, sizes, stop):
            break
    left = len(uids) - taker.spooled - taker.duplicates - taker.vanished - taker.too_big
    if left:
        log.warning("imap %s: %d message(s) left in %s for the next poll",
                    account.key, left, account.folder)
    return PollResult(len(uids), taker.spooled, taker.duplicates, left, taker.too_big)


class _Taker:
    """Spools, moves and records messages one by one, in UID order."""

    def __init__(self, client: IMAPClient, svc: Services, account: ImapConfig,
                 uidvalidity: int, on_spooled: Callable[[], None]):
        self.client, self.svc, self.account = client, svc, account
        self.uidvalidity = uidvalidity
        self.on_spooled = on_spooled
        self.rcpt = _recipient(svc, account)
        self.limit = svc.config.smtp.max_message_size
        self.spooled = self.duplicates = self.vanished = self.too_big = 0

    def take(self, uids: list[int], sizes: dict[int, int], stop: threading.Event | None) -> bool:
        """Take the messages ``uids``; False when the poll must stop here."""
        wanted = [uid for uid in uids if sizes.get(uid, 0) <= self.limit]
        bodies = self.client.fetch(wanted, [BODY]) if wanted else {}
        for uid in uids:
            if stop is not None and stop.is_set():
                return False
            if uid not in wanted:
                if not self._refuse(uid, sizes[uid]):
                    return False
                continue
            raw = bodies.get(uid, {}).get(b"BODY[]")
            if raw is None:
                self.vanished += 1  # expunged by someone else since the search
                continue
            if not self._take_one(uid, raw):
                return False
        return True

    def _take_one(self, uid: int, raw: bytes) -> bool:
        """Spool one message, then move it and record its UID; False on database trouble."""
        svc = self.svc
        try:
            stored = spool.intake(svc.engine, raw, door="imap", mail_from=None,
                                  rcpt_tos=[self.rcpt], now=svc.clock())
        except Exception as exc:  # noqa: BLE001 - whatever it is, the mail stays put
            log.error("imap %s: cannot spool UID %d, leaving it in %s: %s",
                      self.account.key, uid, self.account.folder, exc)
            return False
        if stored.duplicate:
            self.duplicates += 1
        else:
            self.spooled += 1
        self.on_spooled()
        acknowledge(self.client, uid, self.account.processed_folder)
        try:
            _save_state(svc.engine, self.account, self.uidvalidity, uid, svc.clock())
        except TRANSIENT_ERRORS as exc:
            # The message is spooled and moved; at worst a later poll fetches it again
            # (processed_folder = "") and the spool knows it as a duplicate.
            log.error("imap %s: cannot record UID %d: %s", self.account.key, uid, exc)
            return False
        return True


    def _refuse(self, uid: int, size: int) -> bool:
        """Flag a message over ``max_message_size`` and pass it by for good (the SMTP
        door's 552): it stays in the folder for a person to deal with."""
        log.warning("imap %s: UID %d is %d bytes, over max_message_size %d; flagged %s and"
                    " left in %s", self.account.key, uid, size, self.limit,
                    TOO_BIG_FLAG.decode(), self.account.folder)
        self.client.add_flags([uid], [TOO_BIG_FLAG], silent=True)
        self.too_big += 1
        try:
            _save_state(self.svc.engine, self.account, self.uidvalidity, uid, self.svc.clock())
        except TRANSIENT_ERRORS as exc:
            log.error("imap %s: cannot record UID %d: %s", self.account.key, uid, exc)
            return False
        return True


def acknowledge(client: IMAPClient, uid: int, processed_folder: str) -> None:
    """Mark message ``uid`` as taken: move it to ``processed_folder``, or flag it."""
    if not processed_folder:
        client.add_flags([uid], [SEEN, PROCESSED_FLAG], silent=True)
    elif client.has_capability("MOVE"):
        client.move([uid], processed_folder)
    else:
        client.copy([uid], processed_folder)
        client.add_flags([uid], [DELETED], silent=True)
        # UID EXPUNGE removes only this message; a plain EXPUNGE would also remove
        # whatever a person marked \Deleted in the folder, so without UIDPLUS the
        # message is left flagged for the mail client to expunge.
        if client.has_capability("UIDPLUS"):
            client.uid_expunge([uid])


def _ensure_folder(client: IMAPClient, folder: str) -> None:
    """Create ``folder`` unless it exists (another instance may create it meanwhile)."""
    if client.folder_exists(folder):
        return
    try:
        client.create_folder(folder)
    except imaplib.IMAP4.error:
        if not client.folder_exists(folder):
            raise
    log.info("created IMAP folder %s", folder)


def _sizes(client: IMAPClient, uids: list[int]) -> dict[int, int]:
    """The size of each message, from one FETCH of RFC822.SIZE."""
    found = client.fetch(uids, ["RFC822.SIZE"])
    return {uid: int(found.get(uid, {}).get(b"RFC822.SIZE", 0)) for uid in uids}


def _recipient(svc: Services, account: ImapConfig) -> str:
    """The mailbox this account delivers to: the one owning its username, else the first."""
    box = svc.config.mailbox_for(account.username)
    return (box or svc.config.mailbox[0]).address


def _last_uid(engine: Engine, account: ImapConfig, uidvalidity: int, now: datetime) -> int:
    """The last UID taken from the folder; 0 when it was never read or UIDVALIDITY changed.

    A new or reset row is written at once, so that the change is logged once; if the
    database refuses that write the poll goes on from UID 0 and the row is written
    with the first message taken.
    """
    with session_scope(engine) as session:
        state = session.exec(select(ImapState).where(
            ImapState.account == account.key, ImapState.folder == account.folder)).first()
    if state is not None and state.uidvalidity == uidvalidity:
        return state.last_uid
    if state is not None:
        log.warning("imap %s: UIDVALIDITY of %s changed from %s to %s: reading the folder "
                    "again from the start", account.key, account.folder, state.uidvalidity,
                    uidvalidity)
    try:
        _save_state(engine, account, uidvalidity, 0, now)
    except TRANSIENT_ERRORS as exc:
        log.error("imap %s: cannot record UIDVALIDITY %s: %s", account.key, uidvalidity, exc)
    return 0


def _save_state(engine: Engine, account: ImapConfig, uidvalidity: int, uid: int,
                now: datetime) -> None:
    """Record ``uid`` as taken, in a short transaction of its own (creating the row)."""
    values = {"uidvalidity": uidvalidity, "last_uid": uid, "updated_at": now}
    with session_scope(engine) as session:
        done = session.execute(update(ImapState).where(
            ImapState.account == account.key, ImapState.folder == account.folder,
        ).values(**values))
        if done.rowcount == 0:
            session.add(ImapState(account=account.key, folder=account.folder, **values))
