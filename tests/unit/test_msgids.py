"""msgids: our Message-IDs carry ticket number and token, and are recognised as ours."""

from __future__ import annotations

from mailgate import msgids


def test_make_parse_round_trip():
    token = msgids.new_token()
    mid = msgids.make("example.com", 10001, token)
    assert mid.startswith("<10001.") and mid.endswith("@example.com>")
    assert msgids.parse(mid, "example.com") == (10001, token)
    assert msgids.is_ours(mid, "EXAMPLE.com")


def test_two_ids_for_the_same_ticket_differ():
    assert msgids.make("example.com", 1, "ab") != msgids.make("example.com", 1, "ab")


def test_wrong_domain_is_not_ours():
    mid = msgids.make("example.com", 1, "ab")
    assert msgids.parse(mid, "example.org") is None
    assert not msgids.is_ours(mid, "example.org")


def test_no_ticket_ids_are_ours_but_name_no_ticket():
    mid = msgids.make("example.com")
    assert mid.startswith("<nt.mg")
    assert msgids.is_ours(mid, "example.com")
    assert msgids.parse(mid, "example.com") is None


def test_customer_id_of_our_shape_in_another_domain_is_not_ours():
    assert not msgids.is_ours("<123.abc.mgdef@other.com>", "example.com")
    assert msgids.parse("<123.abc.mgdef@other.com>", "example.com") is None


def test_ordinary_customer_id_is_not_ours():
    assert not msgids.is_ours("<CAF=abc123@mail.gmail.com>", "example.com")
    assert not msgids.is_ours("<12345@example.com>", "example.com")
