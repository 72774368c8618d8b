"""spool: the raw message becomes the table's last column (SQLite)

SQLite stores a row's columns in order, and a value too large for its page continues
on overflow pages.  Two things follow for ``spool.raw`` in the middle of the row: every
column after it (state, outcome, …) is reached only by walking the message's overflow
pages, and an insert must build the whole row, message included, in memory.  As the
last column, the message can be inserted as ``zeroblob(N)`` and written in pieces
through SQLite's incremental BLOB I/O (https://sqlite.org/c3ref/blob_open.html), so a
25 MB mail is not copied twice more on its way to disk (see ``mailgate/blobio.py``).

The column is moved with ALTER TABLE (ADD, copy, DROP, RENAME: SQLite >= 3.35, which
the spool's ``INSERT … RETURNING`` needs already), not by rebuilding the table: a
rebuild would drop ``spool``, which ``article`` and ``event`` reference.  PostgreSQL
stores large values apart from the row (TOAST) and needs nothing.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    _move_last("raw")


def downgrade() -> None:
    """Revert this revision: the column order is no schema difference worth undoing."""


def _move_last(column: str) -> None:
    """Move ``spool.column`` (a NOT NULL BLOB) to the end of the row on SQLite."""
    if op.get_bind().dialect.name != "sqlite":
        return
    moved = f"{column}_moved"
    op.execute(f"ALTER TABLE spool ADD COLUMN {moved} BLOB NOT NULL DEFAULT x''")
    op.execute(f"UPDATE spool SET {moved} = {column}")
    op.execute(f"ALTER TABLE spool DROP COLUMN {column}")
    op.execute(f"ALTER TABLE spool RENAME COLUMN {moved} TO {column}")
