"""The IMAP door against a real Dovecot that misbehaves while ``mailgate serve`` watches
it: restarted in the middle of a fetch, restarted during IDLE, and a folder whose
UIDVALIDITY changes (deleted and made again, with a backup's copies of mail already
taken).  Nothing may be lost and nothing taken twice; the door's acknowledgement is
the move to the processed folder.

Short: 150 mails in the interrupted fetch; long: 1,000.
"""

from __future__ import annotations

import pytest

from tests.e2e.test_imap import append, folder_flags
from tests.faults.traffic import numbered, processed, wait_for
from tests.helpers import make_home, serving
from tests.ledger import count

pytestmark = pytest.mark.e2e


def spooled(home) -> int:
    """How many mails the door has spooled."""
    return home.query("SELECT count(*) FROM spool")[0][0]


def figures_of(home, user, msgs, folder: str = "INBOX"):
    """The figures of ``msgs`` appended to ``folder``; a mail still there is not acknowledged."""
    ids = [m["Message-ID"] for m in msgs]
    left = len(folder_flags(user, folder))
    figures = count(home.query, ids, ids if left == 0 else [])
    figures.acknowledged = len(ids) - left
    figures.notes["left_on_server"] = left
    return figures


def test_a_restart_in_the_middle_of_a_fetch_loses_and_doubles_nothing(
        tmp_path, imap_user, dovecot, scale, report):
    msgs = numbered("fetch", scale(150, 1000))
    append(imap_user, *msgs)
    home = make_home(tmp_path, extra=imap_user.imap_toml(poll_interval="1s"))
    with serving(home):
        at_restart = wait_for(lambda: spooled(home) or None, 60, "the fetch began", step=0.02)
        dovecot.restart()
        assert at_restart < len(msgs), "the fetch ended before the restart: nothing was tested"
        processed(home, len(msgs))
    figures = figures_of(home, imap_user, msgs)
    figures.notes["spooled_at_restart"] = at_restart
    report(figures)
    assert len(folder_flags(imap_user, "Processed")) == len(msgs)


def test_a_restart_during_idle_loses_and_doubles_nothing(tmp_path, imap_user, dovecot, report):
    before, during, after = numbered("before", 5), numbered("during", 5), numbered("after", 5)
    home = make_home(tmp_path, extra=imap_user.imap_toml(poll_interval="10m"))
    with serving(home):
        append(imap_user, *before)
        processed(home, 5)  # then the watcher idles: only IDLE can wake it for ten minutes
        dovecot.restart()
        append(imap_user, *during)  # while the watcher reconnects
        processed(home, 10, timeout=60)
        append(imap_user, *after)  # once it idles again
        processed(home, 15, timeout=60)
    report(figures_of(home, imap_user, before + during + after))


def test_a_new_uidvalidity_loses_and_doubles_nothing(tmp_path, imap_user, report):
    first, second = numbered("first", 10), numbered("second", 10)
    home = make_home(tmp_path, extra=imap_user.imap_toml(folder="Support", poll_interval="1s"))
    with imap_user.client() as client:
        client.create_folder("Support")
    append(imap_user, *first, folder="Support")
    with serving(home):
        processed(home, 10)
        # The folder is deleted under the watcher and made again (a new UIDVALIDITY,
        # UIDs from 1): a backup brings back half of what was taken, and new mail comes.
        with imap_user.client() as client:
            client.delete_folder("Support")
            client.create_folder("Support")
        append(imap_user, *first[:5], *second, folder="Support")
        processed(home, 20, timeout=60)
        wait_for(lambda: not folder_flags(imap_user, "Support"), 30, "the folder emptied")
    figures = figures_of(home, imap_user, first + second, folder="Support")
    figures.notes["restored_copies"] = 5
    report(figures)
    [(tickets,)] = home.query("SELECT count(*) FROM ticket")
    assert tickets == 20
