"""Shared fixtures: a mailgate home, a running daemon, the shared corpus."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests import dbs
from tests.helpers import PROJECT, Home, make_home, serving


def pytest_report_header(config) -> str:
    """Say which database this run is on."""
    return f"mailgate test database: {dbs.BACKEND} (MAILGATE_TEST_DB)"


def pytest_collection_modifyitems(config, items) -> None:
    """A PostgreSQL run where no server can be had skips everything, saying why."""
    if dbs.POSTGRESQL and (why := dbs.postgres_unavailable()):
        mark = pytest.mark.skip(reason=f"MAILGATE_TEST_DB=postgresql: {why}")
        for item in items:
            item.add_marker(mark)


def pytest_sessionfinish(session, exitstatus) -> None:
    """Stop the throw-away PostgreSQL cluster, if this session started one."""
    dbs.shutdown()


def corpus_root() -> Path:
    """``$MAILGATE_CORPUS``, else ``../shared/corpus`` beside the checkout."""
    return Path(os.environ.get("MAILGATE_CORPUS") or PROJECT.parent / "shared" / "corpus")


@pytest.fixture
def home(tmp_path) -> Home:
    """A fresh installation: config, rules, database at head."""
    return make_home(tmp_path)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """One running ``mailgate serve`` shared by the tests of a module."""
    home = make_home(tmp_path_factory.mktemp("served"))
    with serving(home):
        yield home
