"""logs.setup: text, journald <N> prefixes and JSON lines, with ``extra`` fields."""

from __future__ import annotations

import io
import json
import logging

import pytest

from mailgate import logs


@pytest.fixture
def capture():
    """Set up logging into a buffer; restore the root logger afterwards."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    buffer = io.StringIO()

    def configure(fmt: str, level: str = "info") -> io.StringIO:
        logs.setup(fmt, level, stream=buffer)
        return buffer

    yield configure
    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


def test_text_is_the_old_format(capture):
    out = capture("text")
    logging.getLogger("mailgate.test").warning("hello %s", "world")
    assert out.getvalue() == "WARNING mailgate.test: hello world\n"


def test_journald_prefixes_each_line_with_its_priority(capture):
    out = capture("journald", "debug")
    log = logging.getLogger("mailgate.test")
    log.debug("d")
    log.info("i")
    log.warning("w")
    log.error("e")
    log.critical("c")
    assert out.getvalue().splitlines() == [
        "<7>mailgate.test: d", "<6>mailgate.test: i", "<4>mailgate.test: w",
        "<3>mailgate.test: e", "<3>mailgate.test: c"]


def test_journald_traceback_lines_keep_the_prefix(capture):
    out = capture("journald")
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("mailgate.test").exception("failed")
    lines = out.getvalue().splitlines()
    assert len(lines) > 2
    assert all(line.startswith("<3>") for line in lines)
    assert lines[-1] == "<3>ValueError: boom"


def test_json_lines_carry_extra_fields(capture):
    out = capture("json")
    logging.getLogger("mailgate.pipeline").info(
        "spool=%s done", 7, extra={"message_id": "<a@b>", "door": "smtp", "ticket": 10001,
                                   "ms": 12.5})
    data = json.loads(out.getvalue())
    assert data["level"] == "info"
    assert data["logger"] == "mailgate.pipeline"
    assert data["msg"] == "spool=7 done"
    assert data["ts"].endswith("+00:00")
    assert (data["message_id"], data["door"], data["ticket"], data["ms"]) == (
        "<a@b>", "smtp", 10001, 12.5)
    assert "args" not in data and "levelno" not in data


def test_json_exception_is_one_line(capture):
    out = capture("json")
    try:
        raise KeyError("x")
    except KeyError:
        logging.getLogger("mailgate.test").exception("failed")
    assert len(out.getvalue().splitlines()) == 1
    assert "KeyError" in json.loads(out.getvalue())["exc"]


def test_level_filters_and_setup_replaces_its_own_handler(capture):
    capture("text")
    out = capture("json", "warning")
    logging.getLogger("mailgate.test").info("hidden")
    logging.getLogger("mailgate.test").warning("shown")
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["msg"] == "shown"
    assert sum(getattr(h, "mailgate", False) for h in logging.getLogger().handlers) == 1


def test_floor_keeps_a_quiet_command_quiet(capture):
    out = io.StringIO()
    logs.setup("text", "debug", floor=logging.WARNING, stream=out)
    logging.getLogger("mailgate.test").info("hidden")
    assert out.getvalue() == ""
