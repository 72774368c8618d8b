"""The fault-and-attack suite: its ``--long-faults`` switch and the figures it reports.

By default every fault runs in a short variant, so that ``pytest`` in CI stays within
minutes; ``--long-faults`` (when tests/faults is named on the command line, where this
conftest is loaded early enough to add an option) or ``MAILGATE_LONG_FAULTS=1`` runs
the long ones (tests/faults/README.md lists them: 5,000-mail floods killed 10 times,
a 60 s database outage, an hour of silent relay, ...).  Each fault test reports its
figures through ``report``: a ``record_property`` each (JUnit XML), one ``FIGURES``
line on stdout, and a table at the end of the run.
"""

from __future__ import annotations

import os

import pytest

from tests.e2e.conftest import dovecot, imap_user  # noqa: F401 - fixtures for test_imap_faults
from tests.ledger import Figures

FIGURES = pytest.StashKey[list]()


def pytest_addoption(parser):
    """``--long-faults``: run the long variants of the fault tests."""
    parser.addoption("--long-faults", action="store_true", default=False,
                     help="run the long variants of tests/faults (also MAILGATE_LONG_FAULTS=1)")


@pytest.fixture(scope="session")
def long_faults(request) -> bool:
    """True when the long variants were asked for."""
    return bool(request.config.getoption("--long-faults", default=False)
                or os.environ.get("MAILGATE_LONG_FAULTS") == "1")


@pytest.fixture(scope="session")
def scale(long_faults):
    """``scale(short, long)``: the figure of the variant that runs."""
    return lambda short, long: long if long_faults else short


@pytest.fixture
def report(request, record_property):
    """``report(figures)``: record and print the figures, then assert that nothing was
    lost and nothing doubled."""

    def done(figures: Figures) -> None:
        for name in ("sent", "acknowledged", "processed", "lost", "duplicated"):
            record_property(name, getattr(figures, name))
        for name, value in figures.notes.items():
            record_property(name, value)
        print(f"FIGURES {request.node.name}: {figures.line()}")
        request.config.stash.setdefault(FIGURES, []).append((request.node.name, figures))
        assert figures.lost == 0, f"lost mail: {figures.line()}"
        assert figures.duplicated == 0, f"doubled mail: {figures.line()}"

    return done


def pytest_terminal_summary(terminalreporter, config):
    """The figures of every fault test that ran, one line each."""
    rows = config.stash.get(FIGURES, [])
    if rows:
        terminalreporter.section("fault figures")
        for name, figures in rows:
            terminalreporter.write_line(f"{name}: {figures.line()}")
