"""The configuration file: pydantic models of config.example.toml.

Loading reads TOML, applies ``MAILGATE_<SECTION>_<KEY>`` environment overrides, reads
``*_file`` secrets, resolves relative paths against the config file's folder and
validates.  Every problem becomes a ``ConfigError`` whose lines read
``file:key: reason``, so ``mailgate check-config`` can print them as they are.
"""

from __future__ import annotations

import os
import tomllib
from email.utils import parseaddr
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from mailgate.configfile import DATA_DIR, MAX_MESSAGE_SIZE, RawConfig, env_name
from mailgate.durations import parse_duration


class ConfigError(Exception):
    """One or more configuration problems, each as ``file:key: reason``."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


class Section(BaseModel):
    """Base of every section: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class DatabaseConfig(Section):
    url: str = "sqlite:///var/mailgate.db"


class PathsConfig(Section):
    rules: Path = Path("rules")
    templates: Path = Path("templates")
    data: Path = Path(DATA_DIR)


class SmtpConfig(Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(2525, ge=0, le=65535)
    protocol: Literal["smtp", "lmtp"] = "smtp"
    max_message_size: int = Field(MAX_MESSAGE_SIZE, gt=0)
    # Abuse limits of the listener: sessions open at once (one more is answered 421
    # and closed), and seconds a session may take for one command, the whole DATA
    # transfer included, before it is dropped (RFC 5321 §4.5.3.2 suggests 5 minutes).
    max_connections: int = Field(100, gt=0)
    timeout: float = Field(300, gt=0)


class MailboxConfig(Section):
    address: str
    aliases: list[str] = []
    unknown_sender: Literal["sales", "create", "reject"] = "sales"
    sales_address: str | None = None

    @field_validator("address", "aliases", "sales_address")
    @classmethod
    def _lower_addresses(cls, value):
        if isinstance(value, list):
            return [_address(v) for v in value]
        return None if value is None else _address(value)

    def owns(self, address: str) -> bool:
        """True when ``address`` is this mailbox's address or one of its aliases."""
        return address.lower() in {self.address, *self.aliases}


class ImapConfig(Section):
    host: str = "127.0.0.1"
    port: int = 143
    tls: Literal["none", "starttls", "ssl"] = "starttls"
    username: str
    password: str | None = None
    folder: str = "INBOX"
    processed_folder: str = "Processed"
    idle: bool = True
    poll_interval: str = "60s"
    cafile: Path | None = None  # a CA bundle for a private certificate (tests, lab)

    _interval = field_validator("poll_interval")(lambda cls, v: _duration(v))

    @model_validator(mode="after")
    def _processed_elsewhere(self):
        # Moving a message into the folder it came from gives it a new UID at every
        # poll: the door would take the same mail for ever.
        if self.processed_folder == self.folder:
            raise ValueError("processed_folder must differ from folder")
        return self

    @property
    def key(self) -> str:
        """The account's name in the IMAP state table: ``user@host:port``."""
        return f"{self.username}@{self.host}:{self.port}"


class OutboundConfig(Section):
    transport: Literal["maildir", "smtp"] = "maildir"
    maildir: Path = Path("var/outbox")
    host: str = "127.0.0.1"
    port: int = 25
    starttls: bool = False
    username: str | None = None
    password: str | None = None
    from_: str = Field("Help Desk <hd@example.com>", alias="from")
    auto_reply_limit: int = Field(5, ge=0)
    max_age: str = "2d"

    _max_age = field_validator("max_age")(lambda cls, v: _duration(v))

    @field_validator("from_")
    @classmethod
    def _from_has_address(cls, value: str) -> str:
        _address(parseaddr(value)[1])
        return value

    # Cached: asked for by every outbound mail, and a loaded configuration never
    # changes (a reload builds a new one).
    @cached_property
    def from_address(self) -> str:
        """The bare address of ``from``."""
        return parseaddr(self.from_)[1].lower()

    @cached_property
    def domain(self) -> str:
        """The domain our Message-IDs are made in."""
        return self.from_address.rpartition("@")[2]


class TicketsConfig(Section):
    first_number: int = Field(10000, ge=1)
    subject_tag: str = "[#{number}]"
    auto_close_days: int = Field(5, ge=0)
    confirm_words: list[str] = []
    max_attachment_size: int = Field(10485760, ge=0)  # bytes; larger files are not kept
    auto_mail_per_ticket: int = Field(20, ge=1)  # automatic mails per ticket per day
    complaints_address: str | None = None  # gets complaint_copy of every complaint

    @field_validator("complaints_address")
    @classmethod
    def _complaints_address(cls, value: str | None) -> str | None:
        return None if not value else _address(value)

    @field_validator("subject_tag")
    @classmethod
    def _tag_has_number(cls, value: str) -> str:
        if "{number}" not in value:
            raise ValueError("must contain {number}")
        return value


class StaffConfig(Section):
    auth: Literal["authres", "dkim", "none"] = "authres"
    authserv_id: str = ""
    notify: str | None = None
    transcript: Literal["errors", "always"] = "errors"
    language: str = "en"


class SlaConfig(Section):
    warn_at: float = Field(0.75, gt=0, lt=1)
    escalation_address: str | None = None


class JobsConfig(Section):
    interval: str = "60s"  # how often SLA, ETA and auto-close deadlines are checked

    _interval = field_validator("interval")(lambda cls, v: _duration(v))


class ProcessingConfig(Section):
    # Pipeline worker processes of ``serve``; 0 processes in the main process.
    workers: int = Field(0, ge=0, le=64)


class MetricsConfig(Section):
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 9525


LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


class LoggingConfig(Section):
    format: Literal["text", "journald", "json"] = "text"  # journald: <N> priority prefixes
    level: str = "info"

    @field_validator("level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if value.lower() not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
        return value.lower()


class Config(Section):
    """The whole configuration; ``source`` is the file it came from."""

    database: DatabaseConfig = DatabaseConfig()
    paths: PathsConfig = PathsConfig()
    smtp: SmtpConfig = SmtpConfig()
    mailbox: list[MailboxConfig] = []
    imap: list[ImapConfig] = []
    outbound: OutboundConfig = OutboundConfig()
    tickets: TicketsConfig = TicketsConfig()
    staff: StaffConfig = StaffConfig()
    sla: SlaConfig = SlaConfig()
    jobs: JobsConfig = JobsConfig()
    processing: ProcessingConfig = ProcessingConfig()
    metrics: MetricsConfig = MetricsConfig()
    logging: LoggingConfig = LoggingConfig()
    source: Path = Path("config.toml")

    def mailbox_for(self, address: str) -> MailboxConfig | None:
        """The ``[[mailbox]]`` that owns ``address``, or None."""
        return next((m for m in self.mailbox if m.owns(address)), None)

    @cached_property
    def own_addresses(self) -> frozenset[str]:
        """Every address that is ours: mail from them is a loop, never a customer."""
        own = {self.outbound.from_address}
        for box in self.mailbox:
            own |= {box.address, *box.aliases}
        return frozenset(own)


def _duration(value: str) -> str:
    """Validate a duration such as "60s" or "2d" (kept as written)."""
    parse_duration(value)
    return value


def _address(value: str) -> str:
    """A lower-cased bare address; raises ValueError when it has no ``@``."""
    value = value.strip().lower()
    if "@" not in value or any(c.isspace() for c in value):
        raise ValueError(f"{value!r} is not a mail address")
    return value


def load(path: Path, environ: dict[str, str] | None = None) -> Config:
    """Read, override, validate and resolve the configuration at ``path``."""
    environ = os.environ if environ is None else environ
    try:
        data = RawConfig(path, environ).data
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: {exc}"]) from exc
    _apply_environment(data, environ)
    problems = _read_secret_files(data, path.parent, environ.get("CREDENTIALS_DIRECTORY"))
    if problems:
        raise ConfigError([f"{path}:{p}" for p in problems])
    try:
        config = Config.model_validate({**data, "source": path})
    except ValidationError as exc:
        raise ConfigError([_describe(path, err) for err in exc.errors()]) from exc
    problems = _check(config)
    if problems:
        raise ConfigError([f"{path}:{p}" for p in problems])
    return _resolved(config, path.parent)


def _apply_environment(data: dict[str, Any], environ: dict[str, str]) -> None:
    """Override table keys from ``MAILGATE_<SECTION>_<KEY>`` (SPEC §10).

    Values stay strings, which pydantic converts for numbers and booleans, so a
    numeric password stays a password; array keys take a TOML array such as
    ``["a", "b"]``.  Arrays of tables such as ``[[mailbox]]`` cannot be overridden.
    """
    for name, field in Config.model_fields.items():
        model = field.annotation
        if not (isinstance(model, type) and issubclass(model, Section)):
            continue
        for key, kfield in model.model_fields.items():
            toml_key = kfield.alias or key
            for env_key in {toml_key, key.rstrip("_")}:
                raw = environ.get(env_name(name, env_key))
                if raw is not None:
                    is_list = get_origin(kfield.annotation) is list
                    data.setdefault(name, {})[toml_key] = _toml_array(raw) if is_list else raw


def _toml_array(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _read_secret_files(data: dict[str, Any], base: Path,
                       credentials: str | None = None) -> list[str]:
    """Replace ``password_file`` style keys by the file's first line.

    A relative name is looked up first in ``$CREDENTIALS_DIRECTORY`` (systemd's
    ``LoadCredential=``) when that is set and holds it, then beside the config file.
    """
    problems = []
    tables = [(k, v) for k, v in data.items() if isinstance(v, dict)]
    for name, items in data.items():
        if isinstance(items, list):
            tables += [(f"{name}[{i}]", t) for i, t in enumerate(items) if isinstance(t, dict)]
    for name, table in tables:
        for key in [k for k in table if k.endswith("_file")]:
            secret = _secret_path(str(table[key]), base, credentials)
            try:
                table[key.removesuffix("_file")] = secret.read_text().splitlines()[0].strip()
            except (OSError, IndexError) as exc:
                problems.append(f"{name}.{key}: cannot read secret {secret}: {exc}")
            del table[key]
    return problems


def _secret_path(name: str, base: Path, credentials: str | None) -> Path:
    if credentials and not Path(name).is_absolute():
        candidate = Path(credentials) / name
        if candidate.exists():
            return candidate
    return base / name


def _check(config: Config) -> list[str]:
    """Cross-key checks that a single field cannot express."""
    problems = []
    if not config.mailbox:
        problems.append("mailbox: at least one [[mailbox]] is needed")
    for i, box in enumerate(config.mailbox):
        if box.unknown_sender == "sales" and not box.sales_address:
            problems.append(f"mailbox[{i}].sales_address: needed when unknown_sender = 'sales'")
    return problems


def _describe(path: Path, err: dict) -> str:
    key = ".".join(str(p) for p in err["loc"])
    return f"{path}:{key}: {err['msg']}"


def _resolved(config: Config, base: Path) -> Config:
    """Relative paths, including a relative SQLite file, resolve against ``base``."""
    paths = config.paths
    for name in ("rules", "templates", "data"):
        setattr(paths, name, (base / getattr(paths, name)).resolve())
    config.outbound.maildir = (base / config.outbound.maildir).resolve()
    for account in config.imap:
        if account.cafile:
            account.cafile = (base / account.cafile).resolve()
    url = config.database.url
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        rest = url.removeprefix("sqlite:///")
        if rest and rest != ":memory:":
            config.database.url = f"sqlite:///{(base / rest).resolve()}"
    return config
