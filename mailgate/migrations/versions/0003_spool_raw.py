"""spool: the raw message in a table of its own, ``spool_raw``

SQLite keeps a row as one record and writes all of it again on every UPDATE.  With
the message in ``spool``, the claim and the outcome of each message rewrote the whole
message: for a 25 MB mail, about 100 MB of memory for a moment and 70 MB written,
twice.  In ``spool_raw`` the message is written once, at intake, and only read after;
being the last column of its row, it can be written and read in pieces through
SQLite's incremental BLOB I/O (``mailgate/blobio.py``).  PostgreSQL gains the same:
an UPDATE there writes a new row version, TOAST pointers included.

The column is dropped with ALTER TABLE (SQLite >= 3.35, which the spool's ``INSERT …
RETURNING`` needs already), not by rebuilding the table: a rebuild would drop
``spool``, which ``article`` and ``event`` reference.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "spool_raw",
        sa.Column("spool_id", sa.Integer(), sa.ForeignKey("spool.id"), primary_key=True),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
    )
    op.execute("INSERT INTO spool_raw (spool_id, raw) SELECT id, raw FROM spool")
    op.execute("ALTER TABLE spool DROP COLUMN raw")


def downgrade() -> None:
    """Revert this revision: the message back into ``spool``."""
    op.execute("ALTER TABLE spool ADD COLUMN raw BLOB")
    op.execute("UPDATE spool SET raw = (SELECT raw FROM spool_raw WHERE spool_id = spool.id)")
    op.drop_table("spool_raw")
