"""config.load: defaults, path resolution, environment overrides, secrets and errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailgate.config import ConfigError, load

MAILBOX = """
[[mailbox]]
address = "HD@Example.com"
aliases = ["Support@Example.com"]
sales_address = "sales@example.com"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_with_only_a_mailbox(tmp_path):
    config = load(write(tmp_path, MAILBOX), environ={})
    assert config.smtp.port == 2525
    assert config.smtp.host == "127.0.0.1"
    assert config.outbound.transport == "maildir"
    assert config.outbound.from_address == "hd@example.com"
    assert config.tickets.subject_tag == "[#{number}]"
    assert config.tickets.first_number == 10000
    assert config.source == tmp_path / "config.toml"


def test_relative_paths_resolve_against_the_config_folder(tmp_path):
    text = MAILBOX + '[paths]\nrules = "my-rules"\n[outbound]\nmaildir = "spool/out"\n'
    text += '[database]\nurl = "sqlite:///var/x.db"\n'
    config = load(write(tmp_path, text), environ={})
    base = tmp_path.resolve()
    assert config.paths.rules == base / "my-rules"
    assert config.paths.templates == base / "templates"
    assert config.outbound.maildir == base / "spool" / "out"
    assert config.database.url == f"sqlite:///{base / 'var' / 'x.db'}"


def test_absolute_sqlite_url_is_kept(tmp_path):
    text = MAILBOX + '[database]\nurl = "sqlite:////srv/mailgate.db"\n'
    assert load(write(tmp_path, text), environ={}).database.url == "sqlite:////srv/mailgate.db"


def test_environment_overrides_file_values(tmp_path):
    text = MAILBOX + "[smtp]\nport = 2525\n"
    env = {
        "MAILGATE_SMTP_PORT": "2600",
        "MAILGATE_DATABASE_URL": "postgresql+psycopg://mg@db.example.com/mailgate",
    }
    config = load(write(tmp_path, text), environ=env)
    assert config.smtp.port == 2600
    assert config.database.url == "postgresql+psycopg://mg@db.example.com/mailgate"


def test_numeric_password_from_environment_stays_a_string(tmp_path):
    config = load(write(tmp_path, MAILBOX), environ={"MAILGATE_OUTBOUND_PASSWORD": "123456"})
    assert config.outbound.password == "123456"


def test_password_file_first_line_becomes_password(tmp_path):
    (tmp_path / "relay.secret").write_text("s3cret  \nsecond line\n")
    text = MAILBOX + '[outbound]\nusername = "hd"\npassword_file = "relay.secret"\n'
    config = load(write(tmp_path, text), environ={})
    assert config.outbound.password == "s3cret"


def test_missing_password_file_is_an_error(tmp_path):
    text = MAILBOX + '[outbound]\npassword_file = "nope.secret"\n'
    with pytest.raises(ConfigError, match=r"outbound\.password_file"):
        load(write(tmp_path, text), environ={})


def test_unknown_key_names_file_and_key(tmp_path):
    path = write(tmp_path, MAILBOX + "[smtp]\nprot = 25\n")
    with pytest.raises(ConfigError) as err:
        load(path, environ={})
    assert str(path) in str(err.value)
    assert "smtp.prot" in str(err.value)


def test_missing_mailbox_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match=r"mailbox: at least one \[\[mailbox\]\]"):
        load(write(tmp_path, "[smtp]\nport = 25\n"), environ={})


def test_sales_without_sales_address_is_an_error(tmp_path):
    text = '[[mailbox]]\naddress = "hd@example.com"\nunknown_sender = "sales"\n'
    with pytest.raises(ConfigError, match=r"mailbox\[0\]\.sales_address"):
        load(write(tmp_path, text), environ={})


def test_bad_toml_is_an_error_naming_the_file(tmp_path):
    path = write(tmp_path, "[smtp\nport = \n")
    with pytest.raises(ConfigError) as err:
        load(path, environ={})
    assert str(path) in str(err.value)


def test_mailbox_for_matches_address_and_aliases_case_insensitively(tmp_path):
    text = MAILBOX + '[[mailbox]]\naddress = "billing@example.com"\nunknown_sender = "reject"\n'
    config = load(write(tmp_path, text), environ={})
    assert config.mailbox_for("hd@example.com").address == "hd@example.com"
    assert config.mailbox_for("SUPPORT@EXAMPLE.COM").address == "hd@example.com"
    assert config.mailbox_for("Billing@Example.com").address == "billing@example.com"
    assert config.mailbox_for("nobody@example.com") is None


def test_own_addresses_include_from_mailboxes_and_aliases(tmp_path):
    text = MAILBOX + '[outbound]\nfrom = "Help Desk <noreply@example.com>"\n'
    config = load(write(tmp_path, text), environ={})
    assert config.own_addresses == {
        "noreply@example.com", "hd@example.com", "support@example.com",
    }


def test_relative_secret_file_is_taken_from_credentials_directory(tmp_path):
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "imap.secret").write_text("from-systemd\n")
    (tmp_path / "imap.secret").write_text("beside-config\n")
    text = MAILBOX + '[[imap]]\nusername = "hd"\npassword_file = "imap.secret"\n'
    config = load(write(tmp_path, text), environ={"CREDENTIALS_DIRECTORY": str(creds)})
    assert config.imap[0].password == "from-systemd"
    assert load(write(tmp_path, text), environ={}).imap[0].password == "beside-config"


def test_secret_missing_from_credentials_directory_falls_back_to_config_folder(tmp_path):
    (tmp_path / "creds").mkdir()
    (tmp_path / "imap.secret").write_text("beside-config\n")
    text = MAILBOX + '[[imap]]\nusername = "hd"\npassword_file = "imap.secret"\n'
    config = load(write(tmp_path, text), environ={"CREDENTIALS_DIRECTORY": str(tmp_path / "creds")})
    assert config.imap[0].password == "beside-config"


def test_logging_section_defaults_and_validation(tmp_path):
    config = load(write(tmp_path, MAILBOX), environ={})
    assert (config.logging.format, config.logging.level) == ("text", "info")
    env = {"MAILGATE_LOGGING_FORMAT": "json", "MAILGATE_LOGGING_LEVEL": "DEBUG"}
    config = load(write(tmp_path, MAILBOX), environ=env)
    assert (config.logging.format, config.logging.level) == ("json", "debug")
    with pytest.raises(ConfigError, match=r"logging\.format"):
        load(write(tmp_path, MAILBOX + '[logging]\nformat = "xml"\n'), environ={})
    with pytest.raises(ConfigError, match=r"logging\.level"):
        load(write(tmp_path, MAILBOX + '[logging]\nlevel = "loud"\n'), environ={})
