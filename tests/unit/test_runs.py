"""runs.bounded: items in order, in runs bounded in number and in bytes."""

from __future__ import annotations

from mailgate.runs import bounded


def test_runs_stop_at_the_count_or_the_bytes_whichever_comes_first():
    items = [("a", 10), ("b", 10), ("c", 10), ("d", 50), ("e", 1)]
    assert list(bounded(items, 2, 1000)) == [["a", "b"], ["c", "d"], ["e"]]
    assert list(bounded(items, 10, 30)) == [["a", "b", "c"], ["d"], ["e"]]


def test_an_item_larger_than_the_bound_goes_alone():
    assert list(bounded([("a", 5), ("big", 500), ("b", 5)], 10, 100)) == [
        ["a"], ["big"], ["b"]]
    assert list(bounded([], 10, 100)) == []
