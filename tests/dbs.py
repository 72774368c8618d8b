"""The database the test suite runs on: SQLite (the default) or PostgreSQL.

``MAILGATE_TEST_DB=postgresql pytest`` runs every test that makes a mailgate home on
a fresh PostgreSQL database of its own.  The server is ``$MAILGATE_TEST_DATABASE_URL``
when set, else a throw-away cluster started on loopback from
``tests/servers/postgres-up.sh`` the first time a test needs it and stopped when the
session ends (``shutdown``).
"""

from __future__ import annotations

import glob
import os
import sqlite3
import subprocess
import tempfile
import uuid
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import sqlalchemy
from sqlalchemy.pool import NullPool

SERVERS = Path(__file__).parent / "servers"
BACKEND = os.environ.get("MAILGATE_TEST_DB", "sqlite")
POSTGRESQL = BACKEND == "postgresql"
_cluster: dict[str, str] = {}


def postgres_unavailable() -> str | None:
    """Why no PostgreSQL server can be had here, or None when one can."""
    if os.environ.get("MAILGATE_TEST_DATABASE_URL"):
        return None
    if not glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"):
        return "PostgreSQL is not installed (apt-get install postgresql)"
    if os.geteuid() != 0:
        return "the throw-away PostgreSQL cluster is started as root (or set " \
               "MAILGATE_TEST_DATABASE_URL)"
    return None


def postgres_server() -> str:
    """The SQLAlchemy URL of the server, without a database name; started once."""
    url = os.environ.get("MAILGATE_TEST_DATABASE_URL")
    if url:
        return url.rsplit("/", 1)[0]
    if "url" not in _cluster:
        from tests.helpers import free_port

        folder = tempfile.mkdtemp(prefix="mg-pg.", dir="/tmp")
        os.chmod(folder, 0o755)
        started = subprocess.run([SERVERS / "postgres-up.sh", folder, str(free_port())],
                                 check=True, capture_output=True, text=True, timeout=120)
        _cluster.update(folder=folder, url=started.stdout.strip().rsplit("/", 1)[0])
    return _cluster["url"]


def shutdown() -> None:
    """Stop and remove the cluster this session started, if any."""
    if "folder" in _cluster:
        subprocess.run([SERVERS / "postgres-down.sh", _cluster.pop("folder"), "--purge"],
                       check=False, timeout=60, capture_output=True)
        _cluster.clear()


def new_postgres_database() -> str:
    """The URL of a new, empty database on the server."""
    server = postgres_server()
    name = f"mg_{uuid.uuid4().hex[:12]}"
    with admin(server).connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    return f"{server}/{name}"


@cache
def admin(server: str) -> sqlalchemy.Engine:
    """An autocommit engine on the server's ``postgres`` database."""
    return sqlalchemy.create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT",
                                    poolclass=NullPool)


@cache
def engine(url: str) -> sqlalchemy.Engine:
    """An engine for a test's reads and writes; NullPool so that no connection stays
    open between them (hundreds of homes would exhaust the server's connections)."""
    return sqlalchemy.create_engine(url, poolclass=NullPool)


def run_sql(url: str, sql: str, params: tuple = ()) -> list[tuple]:
    """Rows of ``sql`` (``?`` placeholders on either backend), committed."""
    if url.startswith("postgresql"):
        sql = sql.replace("%", "%%").replace("?", "%s")
    with engine(url).begin() as conn:
        result = conn.exec_driver_sql(sql, params)
        return [tuple(row) for row in result] if result.returns_rows else []


@contextmanager
def unavailable(url: str):
    """The database cannot be used inside the block, as in an outage.

    SQLite: another connection holds the write lock (longer than the busy timeout).
    PostgreSQL: the database refuses connections and its sessions are ended.
    """
    if url.startswith("sqlite"):
        locker = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        return
    server, name = url.rsplit("/", 1)
    with admin(server).connect() as conn:
        conn.exec_driver_sql(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
        conn.exec_driver_sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                             f"WHERE datname = '{name}' AND pid <> pg_backend_pid()")
        try:
            yield
        finally:
            conn.exec_driver_sql(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")


def end_lease_holders(url: str) -> list[bool]:
    """End the sessions that hold an advisory lock (a lease, mailgate/leases.py) on
    the PostgreSQL database ``url``, as a server restart would; what
    ``pg_terminate_backend`` said of each."""
    engine = sqlalchemy.create_engine(url, poolclass=NullPool)
    with engine.connect() as conn:
        return list(conn.execute(sqlalchemy.text(
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
            "AND pid <> pg_backend_pid() AND database = "
            "(SELECT oid FROM pg_database WHERE datname = current_database())")).scalars())
