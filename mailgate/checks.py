"""``mailgate check-config``: everything that can be wrong before the daemon starts.

Each problem names file, key and reason.  Warnings are for settings that work but
that a careful sysadmin would not run in production.
"""

from __future__ import annotations

import ipaddress

from mailgate import bizhours
from mailgate.config import Config, ConfigError
from mailgate.outbound.compose import FALLBACK_LANGUAGE, Templates
from mailgate.policy import load_policy
from mailgate.rules import load_rules

# Templates the code renders; every one must exist in the fallback language.
TEMPLATE_NAMES = (
    "auto_reply", "staff_new_ticket", "staff_customer_reply", "not_contracted", "sales_forward",
    "status_open", "status_waiting", "status_resolved", "status_closed", "auto_closed",
    "reply", "command_error", "command_result", "hours_low", "ticket_list",
    "sla_warning", "sla_breach", "eta_delayed", "eta_reminder", "stats_report",
    "approval_request", "approval_pending", "approval_granted", "approval_rejected",
    "quote_request", "quote_notice", "project_notice", "complaint_copy",
)


def check_all(config: Config) -> tuple[list[str], list[str]]:
    """``(errors, warnings)`` for ``config`` and the rules and templates it points at."""
    errors: list[str] = []
    warnings: list[str] = []
    src = config.source
    try:
        policy = load_policy(config.paths.rules)
    except ConfigError as exc:
        errors += exc.problems
        policy = None
    try:
        load_rules(config.paths.rules / "triage.toml")
    except ConfigError as exc:
        errors += exc.problems
    templates = Templates(config.paths.templates)
    for name in TEMPLATE_NAMES:
        if not templates.exists(FALLBACK_LANGUAGE, name):
            errors.append(f"{config.paths.templates}/{FALLBACK_LANGUAGE}/{name}: template "
                          "missing (needs .subject.j2 and .txt.j2)")
    if policy:
        errors += [f"{config.paths.rules}/{p}" for p in bizhours.validate(policy)]
        for company in policy.companies:
            if not (config.paths.templates / company.language).is_dir():
                warnings.append(f"company {company.name!r}: no templates in language "
                                f"{company.language!r}; it gets {FALLBACK_LANGUAGE}")
    if config.smtp.enabled and not _loopback(config.smtp.host):
        warnings.append(f"{src}:smtp.host: {config.smtp.host} is not loopback; the listener "
                        "takes mail from anyone who reaches it and trusts their "
                        "Authentication-Results: keep it behind your MTA or a firewall")
    if config.staff.auth == "none":
        warnings.append(f"{src}:staff.auth: 'none' trusts any From: of a staff address; "
                        "use it only in a lab")
    if config.staff.auth == "authres" and not config.staff.authserv_id:
        warnings.append(f"{src}:staff.authserv_id: empty, so no Authentication-Results can "
                        "be trusted and every staff mail is refused")
    if not config.staff.notify:
        warnings.append(f"{src}:staff.notify: not set; staff hear of new tickets only "
                        "through an assignee")
    return errors, warnings


def _loopback(host: str) -> bool:
    """True for an address only this machine can reach."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
