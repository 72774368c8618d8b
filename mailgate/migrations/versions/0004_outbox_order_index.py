"""outbox: an index for the order guard (ticket, address, state)

The outbox worker sends a mail only when no older mail about the same ticket to the
same address is still queued (``send._due_statement``).  SQLite answered that
subquery through ``ix_outbox_to``, reading every older mail to the address: for the
staff address, every staff mail ever queued, for each row of each drain.  With 17,000
mails queued in a 100,000-mail soak one drain's query took 2.6 s and the outbox fell
behind.  This index answers it with one lookup.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_index("ix_outbox_ticket_to_state", "outbox", ["ticket_number", "to", "state"])


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_outbox_ticket_to_state", table_name="outbox")
