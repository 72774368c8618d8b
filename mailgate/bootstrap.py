"""One wiring place: a validated ``Config`` becomes the services the daemon uses.

Nothing is wired at import time and there is no global configuration; the clock is
injected so that time-dependent code is testable without sleeping.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.engine import Engine

from mailgate import bizhours
from mailgate.classify import OwnMarks
from mailgate.config import Config, ConfigError
from mailgate.correlate import SubjectTag
from mailgate.db import make_engine
from mailgate.models import utcnow
from mailgate.outbound.compose import Templates
from mailgate.policy import Policy, load_policy
from mailgate.rules import Rule, load_rules
from mailgate.turns import no_turn


@dataclass
class Services:
    """Everything a door, the pipeline or a worker needs."""

    config: Config
    engine: Engine
    policy: Policy
    templates: Templates
    tag: SubjectTag
    own: OwnMarks
    rules: list[Rule] = field(default_factory=list)
    clock: Callable[[], datetime] = utcnow
    # Held around each pipeline transaction: worker processes take turns (turns.py).
    turn: Callable[..., AbstractContextManager] = no_turn


def own_marks(config: Config) -> OwnMarks:
    """What marks a message as ours, from the configuration."""
    return OwnMarks(
        addresses=frozenset(config.own_addresses),
        x_loop=config.mailbox[0].address,
        msgid_domain=config.outbound.domain,
    )


def build(config: Config, engine: Engine | None = None,
          clock: Callable[[], datetime] = utcnow) -> Services:
    """Wire the services for ``config`` (raises ConfigError on bad rules)."""
    policy = load_policy(config.paths.rules)
    problems = bizhours.validate(policy)
    if problems:
        raise ConfigError([f"{config.paths.rules}/{p}" for p in problems])
    return Services(
        config=config,
        engine=engine or make_engine(config.database.url),
        policy=policy,
        templates=Templates(config.paths.templates),
        tag=SubjectTag(config.tickets.subject_tag),
        own=own_marks(config),
        rules=load_rules(config.paths.rules / "triage.toml"),
        clock=clock,
    )
