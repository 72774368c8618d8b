"""correlate.SubjectTag: formatting, finding and adding the ticket tag in subjects."""

from __future__ import annotations

from mailgate.correlate import SubjectTag

TAG = SubjectTag("[#{number}]")


def test_format():
    assert TAG.format(10001) == "[#10001]"


def test_numbers_finds_configured_and_bare_tags():
    assert TAG.numbers("[#123] printer") == [123]
    assert TAG.numbers("about #123 again") == [123]
    assert TAG.numbers("Re: AW: [#10001] x") == [10001]
    assert TAG.numbers("[#5] see also #7") == [5, 7]


def test_numbers_ignores_entities_and_words():
    assert TAG.numbers("caf&#123; bar") == []
    assert TAG.numbers("abc#12") == []
    assert TAG.numbers("no tag here") == []


def test_custom_format():
    tag = SubjectTag("[HD-{number}]")
    assert tag.format(42) == "[HD-42]"
    assert tag.numbers("Re: [HD-42] VPN down") == [42]
    assert tag.tagged("VPN down", 42) == "[HD-42] VPN down"


def test_tagged_adds_the_tag_once():
    once = TAG.tagged("Printer broken", 10001)
    assert once == "[#10001] Printer broken"
    assert TAG.tagged(once, 10001) == once
    assert TAG.tagged("Re: [#10001] Printer broken", 10001) == "Re: [#10001] Printer broken"


def test_tagged_empty_subject_is_just_the_tag():
    assert TAG.tagged("", 7) == "[#7]"
