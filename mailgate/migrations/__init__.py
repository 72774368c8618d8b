"""Alembic migrations of the mailgate schema; run with ``mailgate db upgrade``."""
