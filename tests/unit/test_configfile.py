"""The light reading of the config file (configfile.py) that ``deliver`` uses before
it hands a message to the daemon must agree with the full, validated one."""

from __future__ import annotations

import pytest

from mailgate import config
from mailgate.configfile import RawConfig
from mailgate.inbound import handoff

MAILBOX = '[[mailbox]]\naddress = "hd@example.com"\nunknown_sender = "create"\n'


@pytest.mark.parametrize("text, environ", [
    ("", {}),
    ('[paths]\ndata = "state"\n[smtp]\nmax_message_size = 1000\n', {}),
    ('[paths]\ndata = "/srv/mailgate"\n', {}),
    ('[paths]\ndata = "state"\n', {"MAILGATE_PATHS_DATA": "../elsewhere",
                                  "MAILGATE_SMTP_MAX_MESSAGE_SIZE": "4242"}),
])
def test_the_light_reading_finds_what_the_full_load_finds(tmp_path, text, environ):
    path = tmp_path / "etc" / "config.toml"
    path.parent.mkdir()
    path.write_text(text + MAILBOX)
    full = config.load(path, environ)
    light = RawConfig(path, environ)
    assert light.data_dir() == full.paths.data
    assert handoff.socket_path(light) == full.paths.data / "deliver.sock"
    assert light.max_message_size() == full.smtp.max_message_size


def test_an_unreadable_file_is_an_error_for_the_caller(tmp_path):
    with pytest.raises(OSError):
        RawConfig(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[smtp\n")
    with pytest.raises(ValueError):
        RawConfig(broken)
    bad_size = tmp_path / "size.toml"
    bad_size.write_text('[smtp]\nmax_message_size = "big"\n')
    with pytest.raises(ValueError):
        RawConfig(bad_size).max_message_size()
