"""A database that already holds a million tickets (issue 8, point 5), made in seconds
with set-based SQL inside SQLite rather than through mailgate.

Each archived ticket comes with what mailgate would have left behind: its spool row
(``processed``), one article with a Message-ID, the requester as participant, a
``created`` event and a sent auto-reply in the outbox; 100,000 contacts share them.
The tickets are closed (97%), open or waiting without deadlines, so the scheduled jobs
find nothing to send.  Their numbers start at ``ARCHIVE_FIRST``, far above the live
range, so the corpus's ``[#N]`` tags keep naming the tickets the corpus opens.

The columns are read from the schema after ``mailgate db upgrade``: a column a later
migration adds gets a neutral value (0, '', '[]', a date) when it is NOT NULL without
a default, so the preload keeps working while the schema grows.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

ARCHIVE_FIRST = 2_000_000
CONTACTS = 100_000
DATE = "strftime('%Y-%m-%d %H:%M:%S', 1600000000 + n * 30, 'unixepoch') || '.000000'"
LATER = "strftime('%Y-%m-%d %H:%M:%S', 1600086400 + n * 30, 'unixepoch') || '.000000'"
REQUESTER = "'c' || (n % 100000) || '@' || c.domain"
MSGID = "'pre.' || n || '@' || c.domain"


def _tables(tickets: int) -> list[tuple[str, int, dict[str, str]]]:
    """(table, rows, column → SQL expression of ``n`` and the company ``c``)."""
    status = ("CASE WHEN n % 100 < 97 THEN 'closed' WHEN n % 100 < 99 THEN 'open' "
              "ELSE 'waiting' END")
    subject = "'Archived request ' || n"
    return [
        ("contact", CONTACTS, {"address": REQUESTER, "name": "'Customer ' || n",
                               "company_id": "c.id", "created_at": DATE}),
        ("spool", tickets, {
            "dedupe_key": "'mid:' || " + MSGID, "message_id": MSGID, "door": "'smtp'",
            "mail_from": REQUESTER, "rcpt_tos": "'[\"hd@example.com\"]'",
            "size": "120", "received_at": DATE, "state": "'processed'", "outcome": "'created'",
            "ticket_number": f"{ARCHIVE_FIRST} + n", "attempts": "1", "processed_at": DATE}),
        ("spool_raw", tickets, {
            "spool_id": "{spool} + n",
            "raw": "CAST('From: ' || " + REQUESTER + " || char(13, 10) || 'Subject: ' || "
                   + subject + " || char(13, 10, 13, 10) || 'Archived.' AS BLOB)"}),
        ("ticket", tickets, {
            "number": f"{ARCHIVE_FIRST} + n", "token": "lower(hex(randomblob(8)))",
            "subject": subject, "status": status, "priority": "'P3'", "origin": "'mail'",
            "company_id": "c.id", "requester": REQUESTER, "created_at": DATE,
            "updated_at": LATER, "closed_at": f"CASE WHEN n % 100 < 97 THEN {LATER} END",
            "first_response_at": LATER, "time_spent_hours": "0.25"}),
        ("participant", tickets, {"ticket_id": "{ticket} + n", "address": REQUESTER,
                                  "role": "'requester'"}),
        ("article", tickets, {
            "ticket_id": "{ticket} + n", "direction": "'in'", "message_id": MSGID,
            "from_addr": REQUESTER, "to": "'[\"hd@example.com\"]'", "cc": "'[]'",
            "subject": subject, "text": "'The archived request number ' || n || ', as written.'",
            "full_text": "'The archived request number ' || n || ', as written.'",
            "internal": "0", "spool_id": "{spool} + n", "created_at": DATE}),
        ("event", tickets, {"ticket_id": "{ticket} + n", "kind": "'created'", "at": DATE,
                            "actor": REQUESTER, "detail": "'opened from mail ' || " + MSGID,
                            "spool_id": "{spool} + n"}),
        ("outbox", tickets, {
            "ticket_number": f"{ARCHIVE_FIRST} + n", "template": "'auto_reply'",
            "mail_from": "'hd@example.com'", "to": REQUESTER, "subject": subject,
            "message_id": f"'{ARCHIVE_FIRST}.' || n || '.mg1@example.com'",
            "message": "CAST('Subject: ' || " + subject + " AS BLOB)", "automatic": "1",
            "state": "'sent'", "attempts": "1", "created_at": DATE, "next_attempt_at": DATE,
            "sent_at": DATE}),
    ]


def _filler(sql_type: str) -> str:
    kind = sql_type.upper()
    if any(t in kind for t in ("INT", "BOOL", "FLOAT", "REAL", "NUMERIC")):
        return "0"
    if "JSON" in kind:
        return "'[]'"
    if "DATE" in kind or "TIME" in kind:
        return DATE
    return "''"


def _insert(conn: sqlite3.Connection, table: str, rows: int, exprs: dict[str, str]) -> None:
    chosen = {}
    for _cid, name, sql_type, notnull, default, pk in conn.execute(
            f'PRAGMA table_info("{table}")'):
        if name in exprs:
            chosen[name] = exprs[name]
        elif notnull and default is None and not pk:
            chosen[name] = _filler(sql_type)
    columns = ", ".join(f'"{c}"' for c in chosen)
    conn.execute(
        "WITH RECURSIVE seq(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM seq"
        f" WHERE n < {rows - 1})"
        f' INSERT INTO "{table}" ({columns}) SELECT {", ".join(chosen.values())}'
        " FROM seq JOIN bench_company AS c ON c.k = n % (SELECT count(*) FROM bench_company)")


def _primary_key(conn: sqlite3.Connection, table: str) -> str:
    """The name of ``table``'s one-column primary key (``id``, or ``spool_id``)."""
    return next(row[1] for row in conn.execute(f'PRAGMA table_info("{table}")') if row[5])


def preload(db_path: Path, tickets: int) -> None:
    """Add ``tickets`` archived tickets (and what goes with them) to the database at
    ``db_path``, whose companies must be synchronised already; no daemon may run."""
    conn = sqlite3.connect(db_path, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous=OFF")  # a bulk load: durability comes at the end
        conn.execute("CREATE TEMP TABLE bench_company (k INTEGER PRIMARY KEY, id, domain)")
        companies = conn.execute("SELECT id, domains FROM company ORDER BY id").fetchall()
        if not companies:
            raise RuntimeError("no company in the database: companies were not synchronised")
        conn.executemany("INSERT INTO bench_company VALUES (?, ?, json_extract(?, '$[0]'))",
                         [(k, cid, domains) for k, (cid, domains) in enumerate(companies)])
        conn.execute("BEGIN")
        bases: dict[str, int] = {}  # the id of each table's first new row
        for table, rows, exprs in _tables(tickets):
            key = _primary_key(conn, table)
            first = conn.execute(f'SELECT coalesce(max("{key}"), 0) + 1 FROM "{table}"')
            bases[table] = first.fetchone()[0]
            _insert(conn, table, rows, {key: f"{bases[table]} + n",
                                        **{k: v.format(**bases) for k, v in exprs.items()}})
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
