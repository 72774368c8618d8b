"""Shared fixtures: a mailgate home, a running daemon, the shared corpus."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import PROJECT, Home, make_home, serving


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
