"""Alembic environment: runs migrations on the engine that mailgate hands over."""

from alembic import context
from sqlmodel import SQLModel

import mailgate.models  # noqa: F401  (registers the tables on SQLModel.metadata)

target_metadata = SQLModel.metadata


def run() -> None:
    """Run the migrations online on ``config.attributes['engine']``."""
    engine = context.config.attributes["engine"]
    with engine.connect() as connection:
        # SQLite cannot ALTER most things in place: batch mode rebuilds tables.
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run()
