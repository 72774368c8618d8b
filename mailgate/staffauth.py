"""Staff mail authentication (SPEC §6, ``[staff] auth``): is this From really staff?

Staff commands change tickets, so before any of them applies, the mail's From domain
must be authenticated.  Authentication is per domain, as in DMARC: it proves the mail
comes from the domain in From, not from one mailbox of it; checking that the address
is in ``rules/staff.toml`` is the caller's business.

Three modes:

``authres``
    Trust the ``Authentication-Results`` header (RFC 8601) that our border MTA adds.
    Only the topmost header whose authserv-id equals ``staff.authserv_id`` counts
    (RFC 8601 §5: the one added last, by the nearest hop); headers of other
    authserv-ids are ignored, and so are lower ones of our authserv-id, which anybody
    can write into a mail before sending it.  It passes on ``dkim=pass`` whose
    ``header.d`` (or the domain of ``header.i``) is aligned with the From domain, or on
    ``spf=pass`` whose ``smtp.mailfrom`` domain (or, when the result names none, the
    envelope sender's) is aligned with it.

    Trust model: a forged header of our authserv-id written *above* ours cannot be told
    apart from ours.  So the border MTA MUST strip every incoming
    ``Authentication-Results`` header carrying our authserv-id (RFC 8601 §5 asks it to),
    and mailgate's SMTP door MUST be reachable only through that MTA: a mail handed to
    the door directly brings whatever headers its sender wrote.

``dkim``
    Verify the DKIM signatures (RFC 6376) of the raw mail with dkimpy.  It passes when
    one signature has a ``d=`` aligned with the From domain, signs From (RFC 6376
    §6.1.1; dkimpy does not check this when verifying), carries no ``l=`` body length
    limit (RFC 6376 §8.2: text could be appended below the signed part) and verifies.

``none``
    No check at all: for a lab; ``mailgate check-config`` warns about it.

Alignment is DMARC's relaxed alignment (RFC 7489 §3.1, §3.1.1) without the Public
Suffix List: the domains are equal, or one is a subdomain of the other.  This accepts
``alice@mail.example.com`` signed by ``example.com``, refuses siblings such as
``a.example.com`` against ``b.example.com``, and never aligns a bare top-level domain.

The Authentication-Results values are read from the raw mail, not RFC 2047 decoded.
``authenticate`` never raises: any error is a failed verdict whose reason says why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import compat32

import authres
import dkim
from dkim.util import parse_tag_value

from mailgate.config import StaffConfig
from mailgate.message import ParsedMail, without_nul

_COMMENT_RE = re.compile(r"\([^()]*\)")
_AUTHSERV_RE = re.compile(r'\s*(?:"([^"]*)"|([^\s;()"]+))')


@dataclass(frozen=True)
class AuthVerdict:
    """Whether a staff mail is authenticated, and why, as one sentence for a human."""

    ok: bool
    reason: str

    def __post_init__(self):
        # The reason quotes what the raw message says (Authentication-Results, DKIM
        # tags), and it is recorded on the ticket: without NUL (message.without_nul).
        object.__setattr__(self, "reason", without_nul(self.reason))


def authenticate(
    config: StaffConfig,
    mail: ParsedMail,
    raw: bytes,
    mail_from: str | None,
    dns_lookup=None,
) -> AuthVerdict:
    """Authenticate the From domain of ``mail`` the way ``config.auth`` says.

    ``raw`` is the message as received (for ``dkim``, and for the undecoded
    Authentication-Results values), ``mail_from`` the envelope sender (for ``authres``
    SPF results that name none).  ``dns_lookup`` replaces
    dkimpy's DNS TXT lookup; it follows dkimpy's ``dnsfunc`` convention,
    ``dns_lookup(name: bytes, timeout=5) -> bytes | None``.  Never raises.
    """
    if config.auth == "none":
        return AuthVerdict(True, "staff.auth is none: not checked")
    from_domain = _domain(mail.from_addr)
    if not from_domain:
        return AuthVerdict(False, "the mail has no From address to authenticate")
    try:
        if config.auth == "authres":
            values = _authres_values(mail, raw)
            return _by_authres(config.authserv_id, values, from_domain, mail_from)
        if config.auth == "dkim":
            return _by_dkim(raw, from_domain, dns_lookup)
    except Exception as exc:  # noqa: BLE001 - a failed check is a failed verdict
        return AuthVerdict(False, f"authentication check failed: {_short(exc)}")
    return AuthVerdict(False, f"unknown staff.auth {config.auth!r}")


def aligned(domain: str | None, from_domain: str) -> bool:
    """True when ``domain`` is aligned with ``from_domain`` (relaxed, RFC 7489 §3.1.1).

    Equal, or one a subdomain of the other; a bare top-level domain never aligns.
    """
    domain, from_domain = (domain or "").lower().rstrip("."), from_domain.lower().rstrip(".")
    if not domain or "." not in domain or "." not in from_domain:
        return False
    return (
        domain == from_domain
        or from_domain.endswith("." + domain)
        or domain.endswith("." + from_domain)
    )


# --- authres ---------------------------------------------------------------------------


def _authres_values(mail: ParsedMail, raw: bytes) -> list[str]:
    """The ``Authentication-Results`` values, topmost first, as received.

    Read from ``raw`` without RFC 2047 decoding: ``ParsedMail.headers`` holds decoded
    values, where ``=?utf-8?q?mx.example.com?=`` (which the border MTA does not take for
    its own authserv-id, and so does not strip) would read as ``mx.example.com``.
    ``mail.headers`` serves only when ``raw`` is empty.
    """
    if not raw:
        return mail.headers.get("authentication-results", [])
    msg = BytesHeaderParser(policy=compat32).parsebytes(raw)
    return [str(v) for v in msg.get_all("authentication-results") or []]


def _by_authres(
    authserv_id: str, values: list[str], from_domain: str, mail_from: str | None
) -> AuthVerdict:
    ours = authserv_id.strip().lower()
    if not ours:
        return AuthVerdict(
            False, "staff.authserv_id is not set: no Authentication-Results can be trusted"
        )
    for value in values:
        if _authserv_id(value) == ours:
            return _judge_header(value, ours, from_domain, mail_from)
    return AuthVerdict(False, f"no Authentication-Results from {ours}")


def _authserv_id(value: str) -> str:
    """The authserv-id a header value starts with (RFC 8601 §2.2), lower-cased, or ""."""
    text = value.lstrip()
    while text.startswith("("):  # leading comments (CFWS), not nested
        comment = _COMMENT_RE.match(text)
        if not comment:
            return ""
        text = text[comment.end() :].lstrip()
    match = _AUTHSERV_RE.match(text)
    if not match:
        return ""
    return (match.group(1) if match.group(1) is not None else match.group(2)).lower()


def _judge_header(value: str, ours: str, from_domain: str, mail_from: str | None) -> AuthVerdict:
    """The verdict of the one ``Authentication-Results`` header we trust."""
    try:
        header = authres.AuthenticationResultsHeader.parse_value(value)
    except Exception as exc:  # noqa: BLE001 - authres raises its own SyntaxError and more
        return AuthVerdict(False, f"unreadable Authentication-Results of {ours}: {_short(exc)}")
    if (header.authserv_id or "").lower() != ours:
        return AuthVerdict(False, f"unreadable Authentication-Results of {ours}")
    found = []
    for result in header.results:
        method, outcome = (result.method or "").lower(), (result.result or "").lower()
        if method == "dkim":
            domain = _dkim_domain(result)
            if outcome == "pass" and aligned(domain, from_domain):
                return AuthVerdict(True, f"DKIM signature of {domain} verified by {ours}")
            found.append(f"dkim={outcome}" + (f" (d={domain})" if domain else ""))
        elif method == "spf":
            domain = _spf_domain(result, mail_from)
            if outcome == "pass" and aligned(domain, from_domain):
                return AuthVerdict(True, f"SPF pass for {domain} verified by {ours}")
            found.append(f"spf={outcome}" + (f" (mailfrom {domain})" if domain else ""))
    summary = ", ".join(found) or "no dkim or spf result"
    return AuthVerdict(
        False,
        f"{summary} in Authentication-Results of {ours}: no pass aligned with {from_domain}",
    )


def _dkim_domain(result) -> str:
    """``header.d`` of a dkim result, else the domain of ``header.i``."""
    return (
        getattr(result, "header_d", None) or _domain(getattr(result, "header_i", None)) or ""
    ).lower()


def _spf_domain(result, mail_from: str | None) -> str:
    """The domain SPF checked: ``smtp.mailfrom``, else the envelope sender's.

    A result that names only ``smtp.helo`` checked the HELO name, not the envelope
    sender, and authenticates nothing here.
    """
    checked = getattr(result, "smtp_mailfrom", None)
    if checked:
        return _domain(checked)
    if any(p.type == "smtp" and p.name == "helo" for p in result.properties):
        return ""
    return _domain(mail_from)


# --- dkim ------------------------------------------------------------------------------


def _by_dkim(raw: bytes, from_domain: str, dns_lookup) -> AuthVerdict:
    verifier = dkim.DKIM(raw)
    signatures = [v for n, v in verifier.headers if n.lower() == b"dkim-signature"]
    if not signatures:
        return AuthVerdict(False, "the mail carries no DKIM signature")
    problems = []
    for idx, signature in enumerate(signatures):
        problem = _check_signature(verifier, idx, signature, from_domain, dns_lookup)
        if problem is None:
            domain = _tags(signature).get(b"d", b"").decode("ascii", "replace").lower()
            return AuthVerdict(True, f"DKIM signature of {domain} verified")
        problems.append(problem)
    return AuthVerdict(False, "; ".join(problems))


def _check_signature(verifier, idx: int, signature: bytes, from_domain: str, dns_lookup):
    """Why the ``idx``-th DKIM signature does not authenticate ``from_domain``, or None."""
    tags = _tags(signature)
    domain = tags.get(b"d", b"").decode("ascii", "replace").lower()
    name = f"DKIM signature of {domain}" if domain else "DKIM signature without d="
    if not aligned(domain, from_domain):
        return f"{name} is not aligned with {from_domain}"
    signed = [h.strip().lower() for h in tags.get(b"h", b"").split(b":")]
    if b"from" not in signed:
        return f"{name} does not sign From"
    if b"l" in tags:
        return f"{name} covers only part of the body (l=)"
    try:
        if dns_lookup is None:
            valid = verifier.verify(idx=idx)
        else:
            valid = verifier.verify(idx=idx, dnsfunc=dns_lookup)
    except Exception as exc:  # noqa: BLE001 - dkimpy and the DNS lookup raise many kinds
        return f"{name} failed: {_short(exc)}"
    return None if valid else f"{name} does not verify"


def _tags(signature: bytes) -> dict[bytes, bytes]:
    """The tag=value pairs of a DKIM-Signature value; empty when unparsable."""
    try:
        return parse_tag_value(signature)
    except Exception:  # noqa: BLE001 - a garbage signature has no tags
        return {}


# --- helpers ---------------------------------------------------------------------------


def _domain(address: str | None) -> str:
    """The domain of an address (``<a@b>``, ``a@b``, ``@b``) or a bare domain, lower-cased."""
    text = (address or "").strip().strip("<>").strip()
    return text.rpartition("@")[2].lower().rstrip(".")


def _short(exc: BaseException) -> str:
    """An exception as a short phrase: no dumps of keys or hashes in parentheses."""
    text = str(exc).split(" (", 1)[0].strip() or type(exc).__name__
    return text[:200]
