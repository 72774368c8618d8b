"""Large values in and out of SQLite in pieces (incremental BLOB I/O).

An ordinary INSERT of a 25 MB value costs SQLite two copies of it besides the caller's:
the bound parameter (pysqlite binds with SQLITE_TRANSIENT, which copies) and the
record it builds from it; an ordinary SELECT costs one copy besides the ``bytes`` it
returns.  Inserting ``zeroblob(N)`` instead, then writing the value through
``sqlite3_blob_write`` a piece at a time (https://sqlite.org/c3ref/blob_open.html),
and reading it straight into one ``bytes`` with ``sqlite3_blob_read``, costs none.
A zeroblob stays unexpanded only as the last column of its row (SQLite's record
format), which ``spool_raw.raw`` and ``blob.data`` are (migration 0003).

Everything here is inside the caller's transaction.  Other databases, and values
under ``MIN_SIZE`` (where the copies cost nothing worth a second statement), take
the ordinary path: ``piecewise`` says which.
"""

from __future__ import annotations

from sqlalchemy import func
from sqlalchemy.engine import Connection

MIN_SIZE = 1 << 20  # bytes; smaller values are bound as they are
PIECE = 1 << 20  # bytes written per sqlite3_blob_write call


def piecewise(conn: Connection, size: int) -> bool:
    """True when a value of ``size`` bytes goes through incremental BLOB I/O."""
    return size >= MIN_SIZE and conn.dialect.name == "sqlite"


def placeholder(size: int):
    """The SQL value to insert in place of a value written later by ``write``."""
    return func.zeroblob(size)


def write(conn: Connection, table: str, column: str, rowid: int, data) -> None:
    """Fill the zeroblob in ``table.column`` of row ``rowid`` with ``data`` (bytes-like)."""
    view = memoryview(data)
    with _raw(conn).blobopen(table, column, rowid) as blob:
        for start in range(0, len(view), PIECE):
            blob.write(view[start:start + PIECE])


def read(conn: Connection, table: str, column: str, rowid: int) -> bytes:
    """The whole value of ``table.column`` in row ``rowid``, read into one ``bytes``."""
    with _raw(conn).blobopen(table, column, rowid, readonly=True) as blob:
        return blob.read()


def _raw(conn: Connection):
    """The sqlite3.Connection under ``conn`` (the same transaction)."""
    return conn.connection.dbapi_connection
