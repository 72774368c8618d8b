"""Staff mail authentication: authres, dkim and none (SPEC §6, mailgate.staffauth)."""

from __future__ import annotations

import base64
import random
import re

import dkim
import pytest

from mailgate.config import StaffConfig
from mailgate.message import parse
from mailgate.staffauth import AuthVerdict, aligned, authenticate

MX = "mx.example.com"
BODY = b"#status resolved\r\n\r\nFixed the printer.\r\n"


def mail_bytes(from_addr="alice@example.com", headers=(), body=BODY) -> bytes:
    """A raw staff mail: ``headers`` (name, value) go on top, as a receiving MTA adds them."""
    lines = [f"{name}: {value}" for name, value in headers]
    lines += [
        f"From: Alice <{from_addr}>",
        "To: hd@example.com",
        "Subject: Re: [#15789] printer",
        "Date: Tue, 24 Nov 2026 10:00:00 +0100",
        "Message-ID: <staff-1@example.com>",
    ]
    return "\r\n".join(lines).encode() + b"\r\n\r\n" + body


def check(raw: bytes, auth="authres", mail_from=None, dns_lookup=None) -> AuthVerdict:
    config = StaffConfig(auth=auth, authserv_id=MX)
    return authenticate(config, parse(raw), raw, mail_from, dns_lookup=dns_lookup)


def ar(value: str) -> tuple[str, str]:
    return ("Authentication-Results", value)


# --- authres ---------------------------------------------------------------------------


def test_authres_pass_by_aligned_dkim():
    raw = mail_bytes(headers=[ar(f"{MX}; dkim=pass header.d=example.com header.s=sel")])
    verdict = check(raw)
    assert verdict.ok
    assert verdict.reason == f"DKIM signature of example.com verified by {MX}"


def test_authres_pass_by_spf_with_aligned_mailfrom():
    raw = mail_bytes(headers=[ar(f"{MX}; dkim=none; spf=pass smtp.mailfrom=bounce@example.com")])
    verdict = check(raw, mail_from="bounce@example.com")
    assert verdict.ok
    assert verdict.reason == f"SPF pass for example.com verified by {MX}"


def test_authres_spf_without_mailfrom_uses_the_envelope_sender():
    raw = mail_bytes(headers=[ar(f"{MX}; spf=pass")])
    assert check(raw, mail_from="<alice@example.com>").ok
    verdict = check(raw, mail_from="spammer@evil.com")
    assert not verdict.ok
    assert "spf=pass (mailfrom evil.com)" in verdict.reason


def test_authres_spf_pass_of_the_helo_name_only_does_not_count():
    raw = mail_bytes(headers=[ar(f"{MX}; spf=pass smtp.helo=mail.example.com")])
    verdict = check(raw, mail_from="alice@example.com")
    assert not verdict.ok
    assert "spf=pass" in verdict.reason and "no pass aligned with example.com" in verdict.reason


def test_authres_pass_with_from_in_a_subdomain():
    raw = mail_bytes(
        from_addr="alice@mail.example.com",
        headers=[ar(f"{MX}; dkim=pass header.d=example.com")],
    )
    verdict = check(raw)
    assert verdict.ok
    assert "example.com" in verdict.reason


def test_authres_pass_by_header_i_when_d_is_missing():
    raw = mail_bytes(headers=[ar(f"{MX}; dkim=pass header.i=@example.com")])
    verdict = check(raw)
    assert verdict.ok
    assert verdict.reason == f"DKIM signature of example.com verified by {MX}"


def test_authres_fails_without_the_header():
    verdict = check(mail_bytes())
    assert not verdict.ok
    assert verdict.reason == f"no Authentication-Results from {MX}"


def test_authres_ignores_a_foreign_authserv_id_saying_pass():
    raw = mail_bytes(headers=[ar("mx.evil.com; dkim=pass header.d=example.com; spf=pass")])
    verdict = check(raw, mail_from="alice@example.com")
    assert not verdict.ok
    assert verdict.reason == f"no Authentication-Results from {MX}"


def test_authres_foreign_header_above_ours_is_skipped():
    raw = mail_bytes(
        headers=[
            ar("mx.evil.com; dkim=fail header.d=example.com"),
            ar(f"{MX}; dkim=pass header.d=example.com"),
        ]
    )
    verdict = check(raw)
    assert verdict.ok
    assert MX in verdict.reason


def test_authres_only_the_topmost_header_of_ours_counts():
    # The lower one is a forgery the sender wrote before the mail reached our MTA.
    raw = mail_bytes(
        headers=[
            ar(f"{MX}; dkim=fail header.d=example.com; spf=softfail smtp.mailfrom=example.com"),
            ar(f"{MX}; dkim=pass header.d=example.com; spf=pass smtp.mailfrom=example.com"),
        ]
    )
    verdict = check(raw, mail_from="alice@example.com")
    assert not verdict.ok
    assert "dkim=fail (d=example.com)" in verdict.reason
    assert "spf=softfail (mailfrom example.com)" in verdict.reason
    assert f"in Authentication-Results of {MX}" in verdict.reason


def test_authres_an_encoded_word_is_not_our_authserv_id():
    # Decoded, this would read "mx.example.com; dkim=pass ..."; the border MTA does not
    # decode it, so it does not strip it either.
    raw = mail_bytes(headers=[ar("=?utf-8?q?mx.example.com?=; dkim=pass header.d=example.com")])
    assert parse(raw).header("authentication-results").startswith(MX)
    verdict = check(raw)
    assert not verdict.ok
    assert verdict.reason == f"no Authentication-Results from {MX}"


def test_authres_fails_when_dkim_pass_is_for_a_foreign_domain():
    raw = mail_bytes(headers=[ar(f"{MX}; dkim=pass header.d=evil.com")])
    verdict = check(raw)
    assert not verdict.ok
    assert "dkim=pass (d=evil.com)" in verdict.reason
    assert "no pass aligned with example.com" in verdict.reason


def test_authres_a_sibling_subdomain_is_not_aligned():
    raw = mail_bytes(
        from_addr="alice@a.example.com", headers=[ar(f"{MX}; dkim=pass header.d=b.example.com")]
    )
    verdict = check(raw)
    assert not verdict.ok
    assert "d=b.example.com" in verdict.reason


def test_authres_fails_on_a_garbage_header():
    raw = mail_bytes(headers=[ar(f"{MX}; ;;;; === dkim pass")])
    verdict = check(raw)
    assert not verdict.ok
    assert verdict.reason.startswith(f"unreadable Authentication-Results of {MX}")


def test_authres_fails_when_our_header_has_no_results():
    raw = mail_bytes(headers=[ar(f"{MX} 1; none")])
    verdict = check(raw)
    assert not verdict.ok
    assert verdict.reason.startswith("no dkim or spf result")


def test_authres_authserv_id_is_case_insensitive_and_may_be_folded():
    raw = mail_bytes(
        headers=[ar("(border) MX.Example.COM;\r\n\tdkim=pass (good) header.d=Example.com")]
    )
    verdict = check(raw)
    assert verdict.ok
    assert verdict.reason == f"DKIM signature of example.com verified by {MX}"


def test_authres_without_authserv_id_configured_fails():
    raw = mail_bytes(headers=[ar(f"{MX}; dkim=pass header.d=example.com")])
    config = StaffConfig(auth="authres", authserv_id="")
    verdict = authenticate(config, parse(raw), raw, None)
    assert not verdict.ok
    assert "authserv_id is not set" in verdict.reason


def test_a_mail_without_from_fails():
    raw = b"To: hd@example.com\r\nSubject: x\r\n\r\n#note\r\n"
    verdict = check(raw)
    assert not verdict.ok
    assert "no From address" in verdict.reason


@pytest.mark.parametrize(
    ("domain", "from_domain", "expected"),
    [
        ("example.com", "example.com", True),
        ("EXAMPLE.com.", "example.com", True),
        ("example.com", "mail.example.com", True),
        ("mail.example.com", "example.com", True),
        ("a.example.com", "b.example.com", False),
        ("evil.com", "example.com", False),
        ("notexample.com", "example.com", False),
        ("com", "example.com", False),
        ("", "example.com", False),
        (None, "example.com", False),
    ],
)
def test_alignment(domain, from_domain, expected):
    assert aligned(domain, from_domain) is expected


# --- dkim ------------------------------------------------------------------------------


def _der_int(n: int) -> bytes:
    body = n.to_bytes(n.bit_length() // 8 + 1, "big")  # leading 0 keeps it positive
    return b"\x02" + _der_len(len(body)) + body


def _der_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _der(tag: int, body: bytes) -> bytes:
    return bytes([tag]) + _der_len(len(body)) + body


def _is_prime(n: int, rng: random.Random) -> bool:
    if n % 2 == 0:
        return n == 2
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for _ in range(40):
        x = pow(rng.randrange(2, n - 1), d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def _prime(bits: int, rng: random.Random, e: int) -> int:
    while True:
        p = rng.getrandbits(bits) | (3 << (bits - 2)) | 1  # top two bits: full-size modulus
        if (p - 1) % e and _is_prime(p, rng):
            return p


def rsa_keypair(seed: int, bits: int = 1024) -> tuple[bytes, bytes]:
    """A PEM PKCS#1 private key and the base64 SubjectPublicKeyInfo for its DNS record.

    Pure Python (``cryptography`` is not installed), seeded so the tests are repeatable.
    """
    rng, e = random.Random(seed), 65537
    p, q = _prime(bits // 2, rng, e), _prime(bits // 2, rng, e)
    n, d = p * q, pow(e, -1, (p - 1) * (q - 1))
    numbers = [0, n, e, d, p, q, d % (p - 1), d % (q - 1), pow(q, -1, p)]
    private = _der(0x30, b"".join(_der_int(x) for x in numbers))
    pem = (
        b"-----BEGIN RSA PRIVATE KEY-----\n"
        + base64.encodebytes(private)
        + b"-----END RSA PRIVATE KEY-----\n"
    )
    rsa_oid = bytes.fromhex("06092a864886f70d010101")
    public = _der(0x30, _der_int(n) + _der_int(e))
    spki = _der(0x30, _der(0x30, rsa_oid + b"\x05\x00") + _der(0x03, b"\x00" + public))
    return pem, base64.b64encode(spki)


@pytest.fixture(scope="module")
def keys():
    """Key pairs of example.com and evil.com, each published under selector ``sel``."""
    return {"example.com": rsa_keypair(1), "evil.com": rsa_keypair(2)}


@pytest.fixture
def dns(keys):
    """A dkimpy dnsfunc answering the ``sel._domainkey`` TXT records of ``keys``."""
    records = {
        f"sel._domainkey.{domain}.".encode(): b"v=DKIM1; k=rsa; p=" + public
        for domain, (_private, public) in keys.items()
    }

    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        return records.get(name)

    return lookup


def signed(raw: bytes, keys, domain="example.com", **options) -> bytes:
    private, _public = keys[domain]
    return dkim.sign(raw, b"sel", domain.encode(), private, **options) + raw


def test_dkim_verified_signature_passes(keys, dns):
    verdict = check(signed(mail_bytes(), keys), auth="dkim", dns_lookup=dns)
    assert verdict.ok
    assert verdict.reason == "DKIM signature of example.com verified"


def test_dkim_from_in_a_subdomain_passes(keys, dns):
    raw = signed(mail_bytes(from_addr="alice@mail.example.com"), keys)
    verdict = check(raw, auth="dkim", dns_lookup=dns)
    assert verdict.ok
    assert "example.com" in verdict.reason


def test_dkim_modified_body_fails(keys, dns):
    raw = signed(mail_bytes(), keys).replace(b"#status resolved", b"#status closed!!")
    verdict = check(raw, auth="dkim", dns_lookup=dns)
    assert not verdict.ok
    assert verdict.reason == "DKIM signature of example.com failed: body hash mismatch"


def test_dkim_modified_from_fails(keys, dns):
    raw = signed(mail_bytes(from_addr="alice@example.com"), keys)
    raw = raw.replace(b"alice@example.com", b"boss@example.com")
    verdict = check(raw, auth="dkim", dns_lookup=dns)
    assert not verdict.ok
    assert verdict.reason == "DKIM signature of example.com does not verify"


def test_dkim_signature_of_a_foreign_domain_fails(keys, dns):
    raw = signed(mail_bytes(from_addr="alice@example.com"), keys, domain="evil.com")
    verdict = check(raw, auth="dkim", dns_lookup=dns)
    assert not verdict.ok
    assert verdict.reason == "DKIM signature of evil.com is not aligned with example.com"


def test_dkim_any_aligned_signature_will_do(keys, dns):
    raw = signed(signed(mail_bytes(), keys), keys, domain="evil.com")  # evil.com on top
    verdict = check(raw, auth="dkim", dns_lookup=dns)
    assert verdict.ok
    assert verdict.reason == "DKIM signature of example.com verified"


def test_dkim_without_signature_fails(dns):
    verdict = check(mail_bytes(), auth="dkim", dns_lookup=dns)
    assert not verdict.ok
    assert verdict.reason == "the mail carries no DKIM signature"


def test_dkim_signature_not_covering_from_fails(keys, dns):
    # dkimpy refuses to sign without From but verifies such a signature (and then
    # anyone may change From): RFC 6376 §6.1.1 says ignore it.  The h= tag is checked
    # before any cryptography, so rewriting it is enough to reach that check.
    raw = signed(mail_bytes(), keys)
    raw = re.sub(rb"h=[^;]*;", b"h=subject : date;", raw, count=1)
    assert b"h=subject : date;" in raw
    verdict = check(raw, auth="dkim", dns_lookup=dns)
    assert not verdict.ok
    assert verdict.reason == "DKIM signature of example.com does not sign From"


def test_dkim_signature_with_body_length_limit_fails(keys, dns):
    raw = signed(mail_bytes(), keys, length=True)
    verdict = check(raw, auth="dkim", dns_lookup=dns)
    assert not verdict.ok
    assert "covers only part of the body" in verdict.reason


def test_dkim_missing_key_record_fails(keys):
    raw = signed(mail_bytes(), keys)
    verdict = check(raw, auth="dkim", dns_lookup=lambda name, timeout=5: None)
    assert not verdict.ok
    assert verdict.reason == "DKIM signature of example.com does not verify"


def test_dkim_lookup_that_raises_fails_without_raising(keys):
    def broken(name, timeout=5):
        raise OSError("DNS server unreachable")

    verdict = check(signed(mail_bytes(), keys), auth="dkim", dns_lookup=broken)
    assert not verdict.ok
    assert verdict.reason == "DKIM signature of example.com failed: DNS server unreachable"


def test_dkim_garbage_signature_fails(dns):
    raw = mail_bytes(headers=[("DKIM-Signature", "v=1; d=example.com; garbage")])
    verdict = check(raw, auth="dkim", dns_lookup=dns)
    assert not verdict.ok
    assert "DKIM signature" in verdict.reason


# --- none ------------------------------------------------------------------------------


def test_none_accepts_everything():
    verdict = check(mail_bytes(from_addr="anyone@evil.com"), auth="none")
    assert verdict.ok
    assert verdict.reason == "staff.auth is none: not checked"
