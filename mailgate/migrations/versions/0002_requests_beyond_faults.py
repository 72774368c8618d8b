"""requests beyond faults: approval, waiting reason, project

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_STRING = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    """Apply this revision."""
    # Batch mode: SQLite rebuilds the table, PostgreSQL alters it in place.
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.add_column(sa.Column("approval", _STRING(), nullable=True))
        batch_op.add_column(sa.Column("waiting_reason", _STRING(), nullable=True))
        batch_op.add_column(sa.Column("project", sa.Integer(), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.drop_column("project")
        batch_op.drop_column("waiting_reason")
        batch_op.drop_column("approval")
