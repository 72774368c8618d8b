"""What became of the mail a test sent, counted from the database as an operator would
count it: sent, acknowledged, processed, lost, duplicated.

Shared by the SIGKILL tests of ``tests/e2e/test_durability.py`` and the fault suite
(``tests/faults``).  ``query`` is any callable that runs SQL and returns rows:
``Home.query`` for SQLite, a small wrapper around a connection for PostgreSQL.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

Query = Callable[[str], list[tuple]]

# The mails that a new ticket causes once and only once.
ONCE_PER_TICKET = ("auto_reply", "staff_new_ticket")


@dataclass
class Figures:
    """The five figures every fault test reports, and what else it measured."""

    sent: int
    acknowledged: int
    processed: int
    lost: int
    duplicated: int
    notes: dict[str, object] = field(default_factory=dict)

    def line(self) -> str:
        """``sent=… acknowledged=… processed=… lost=… duplicated=…`` then the notes."""
        main = (f"sent={self.sent} acknowledged={self.acknowledged} "
                f"processed={self.processed} lost={self.lost} duplicated={self.duplicated}")
        return " ".join([main, *(f"{k}={v}" for k, v in self.notes.items())])


def count(query: Query, sent: Iterable[str], acked: Iterable[str]) -> Figures:
    """The figures of the mails ``sent`` (Message-IDs), of which ``acked`` got a 250.

    processed: sent mails whose spool row is processed and that made an article.
    lost: acknowledged mails that are not processed.  duplicated: extra articles of
    one mail, tickets that no spool row owns, and second auto replies or staff mails
    of one ticket.
    """
    sent, acked = set(sent), set(acked)
    state = dict(query("SELECT message_id, state FROM spool"))
    articles = Counter(m for (m,) in query("SELECT message_id FROM article WHERE direction = 'in'"))
    processed = {m for m in sent if state.get(m) == "processed" and articles[m]}
    extra_articles = sum(n - 1 for m, n in articles.items() if m in sent)
    [(tickets,)] = query("SELECT count(*) FROM ticket")
    [(owned,)] = query("SELECT count(DISTINCT ticket_number) FROM spool "
                       "WHERE ticket_number IS NOT NULL")
    names = ", ".join(f"'{t}'" for t in ONCE_PER_TICKET)
    [(extra_mails,)] = query(
        "SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM outbox WHERE "
        f"template IN ({names}) GROUP BY ticket_number, template) AS per_ticket")
    return Figures(sent=len(sent), acknowledged=len(acked), processed=len(processed),
                   lost=len(acked - processed),
                   duplicated=extra_articles + max(tickets - owned, 0) + extra_mails)


def assert_each_once(home, acked: set[str]) -> None:
    """Every acknowledged message is exactly one ticket with exactly one auto reply,
    and the database holds no ticket that a spooled message did not make."""
    figures = count(home.query, acked, acked)
    assert (figures.lost, figures.duplicated) == (0, 0), figures.line()
    numbers = dict(home.query("SELECT message_id, ticket_number FROM spool"))
    assert len({numbers[m] for m in acked}) == len(acked), "messages shared a ticket"
    [(tickets,)] = home.query("SELECT count(*) FROM ticket")
    assert tickets == len(numbers)
