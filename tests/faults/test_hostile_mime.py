"""Hostile MIME through the pipe door (``mailgate deliver``, which spools, processes
and sends in one process): a 50 MB line, 100,000 parts, message/rfc822 and multipart
nested thousands deep, compression bombs in base64, attachment names that are paths
or carry NUL bytes.  The attack works if the process takes unbounded memory or time,
fails the mail, or writes a file outside the data folder.

Each case runs in a child process whose peak memory comes from ``wait4``'s rusage;
the bounds are generous (a loaded 2-core CI machine) but each is far below what a
decompressed bomb, a quadratic walk or a recursion crash would cost.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import subprocess
import sys
import time
import zipfile
import zlib
from pathlib import Path

import pytest

from tests.helpers import MAILGATE, make_home
from tests.ledger import Figures

pytestmark = pytest.mark.e2e

MB = 1024 * 1024
HOSTILE_NAMES = ["../../etc/passwd", "/etc/passwd", "..\\..\\windows\\win.ini",
                 "evil\x00.txt", "..", ".", "a" * 5000 + ".txt"]


def head(subject: str, content_type: str) -> bytes:
    """The headers of a hostile mail from Mario, up to the blank line."""
    return (f"From: Mario <mario@acme.it>\r\nTo: hd@example.com\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject.replace(' ', '-')}@acme.it>\r\nMIME-Version: 1.0\r\n"
            f"Content-Type: {content_type}\r\n\r\n").encode()


def long_line() -> bytes:
    """A text/plain body of one 50 MB line."""
    return head("long line", "text/plain; charset=us-ascii") + b"A" * (50 * MB) + b"\r\n"


def many_parts() -> bytes:
    """A multipart/mixed of 100,000 small text parts."""
    parts = b"".join(b"--P\r\nContent-Type: text/plain\r\n\r\npart %d\r\n" % n
                     for n in range(100_000))
    return head("many parts", 'multipart/mixed; boundary="P"') + parts + b"--P--\r\n"


def deep_rfc822() -> bytes:
    """message/rfc822 inside message/rfc822, 5,000 levels deep."""
    inner = b"From: x@acme.it\r\nSubject: core\r\n\r\nthe core\r\n"
    for n in range(5000):
        inner = (b"From: x@acme.it\r\nSubject: level %d\r\nMIME-Version: 1.0\r\n"
                 b"Content-Type: message/rfc822\r\n\r\n" % n) + inner
    return head("deep rfc822", "message/rfc822") + inner


def deep_multipart() -> bytes:
    """multipart/mixed inside multipart/mixed, 2,000 levels deep."""
    inner = b"Content-Type: text/plain\r\n\r\nthe core\r\n"
    for n in range(2000):
        boundary = b"b%d" % n
        inner = (b'Content-Type: multipart/mixed; boundary="' + boundary + b'"\r\n\r\n--'
                 + boundary + b"\r\n" + inner + b"\r\n--" + boundary + b"--\r\n")
    return head("deep multipart", "multipart/mixed; boundary=top") + b"--top\r\n" + inner + \
        b"\r\n--top--\r\n"


def zeros_deflated(size: int) -> bytes:
    """A gzip stream of ``size`` zero bytes, made without holding them in memory."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = bytes(MB)
    return b"".join([*(packer.compress(chunk) for _ in range(size // MB)), packer.flush()])


def bombs() -> bytes:
    """A gzip of 1 GB of zeros, the same inside a zip, and as text/plain."""
    gz = zeros_deflated(1024 * MB)
    box = io.BytesIO()
    with zipfile.ZipFile(box, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("inner.gz", gz)  # a bomb in a zip: 1 GB two levels down
    return attachments("bombs", [("zeros.gz", "application/gzip", gz),
                                 ("zeros.zip", "application/zip", box.getvalue()),
                                 ("zeros.txt", "text/plain", gz)])


def hostile_names() -> bytes:
    """One attachment per name of HOSTILE_NAMES, named the RFC 2231 way."""
    return attachments("hostile names", [(name, "application/octet-stream", b"x")
                                         for name in HOSTILE_NAMES], rfc2231=True)


def attachments(subject: str, files: list[tuple[str, str, bytes]], rfc2231=False) -> bytes:
    """A mail with ``files`` in base64; with ``rfc2231`` each name also percent-encoded."""
    parts = [b"--B\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"]
    for name, kind, data in files:
        plain = name.replace("\x00", "\\0").encode()  # a raw NUL ends a C string, not this one
        encoded = "".join(c if c.isalnum() else f"%{ord(c):02X}" for c in name).encode()
        disposition = (b"attachment; filename*=utf-8''" + encoded if rfc2231
                       else b'attachment; filename="' + plain + b'"')
        parts.append(b"--B\r\nContent-Type: " + kind.encode() + b"\r\nContent-Disposition: "
                     + disposition + b"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                     + base64.encodebytes(data).replace(b"\n", b"\r\n"))
    return head(subject, 'multipart/mixed; boundary="B"') + b"".join(parts) + b"--B--\r\n"


# case: (mail maker, peak memory bound in MB, time bound in s)
CASES = {
    "long_line": (long_line, 1500, 120),
    "many_parts": (many_parts, 800, 120),
    "deep_rfc822": (deep_rfc822, 400, 60),
    "deep_multipart": (deep_multipart, 400, 60),
    "bombs": (bombs, 400, 60),
    "hostile_names": (hostile_names, 400, 60),
}


def files_under(root: Path, but: Path) -> set[Path]:
    """Every file under ``root`` but those under ``but``."""
    return {p for p in root.rglob("*") if p.is_file() and but not in p.parents}


# Linux starts a child's peak RSS at its parent's when it execs (fork or vfork), so a
# mailgate spawned straight from a pytest grown past the bound reports pytest's size.
# A small Python in between spawns it instead and passes on its wait4 rusage.
MEASURED = ("import os, sys\n"
            "pid = os.posix_spawn(sys.argv[2], sys.argv[2:], os.environ)\n"
            "_, status, usage = os.wait4(pid, 0)\n"
            "open(sys.argv[1], 'w').write(str(usage.ru_maxrss))\n"
            "sys.exit(os.waitstatus_to_exitcode(status))\n")


def delivered(home, raw: Path) -> tuple[int, float, float]:
    """Run ``deliver`` on ``raw``: exit status, peak resident MB, seconds."""
    peak = raw.with_suffix(".maxrss")
    started = time.monotonic()
    with raw.open("rb") as stdin:
        proc = subprocess.run(
            [sys.executable, "-c", MEASURED, str(peak),
             *MAILGATE, "-c", str(home.config), "deliver", "--recipient", "hd@example.com"],
            stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=home.root,
            env=dict(os.environ, MAILGATE_SMTP_MAX_MESSAGE_SIZE=str(64 * MB)))
    errors = proc.stderr.decode(errors="replace")
    assert proc.returncode == 0, f"deliver exited {proc.returncode}: {errors[-2000:]}"
    return proc.returncode, int(peak.read_text()) / 1024, time.monotonic() - started


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_mime_takes_bounded_memory_and_time_and_stays_in_the_data_folder(
        tmp_path, case, report):
    make, memory_bound, time_bound = CASES[case]
    home = make_home(tmp_path / "home")
    raw = tmp_path / f"{case}.eml"
    raw.write_bytes(make())
    data = home.root / "var"
    before = files_under(home.root, data)
    passwd = hashlib.sha256(Path("/etc/passwd").read_bytes()).hexdigest()

    _, peak_mb, seconds = delivered(home, raw)

    assert files_under(home.root, data) == before, "a file was written outside the data folder"
    assert hashlib.sha256(Path("/etc/passwd").read_bytes()).hexdigest() == passwd
    rows = home.query("SELECT state, outcome, ticket_number FROM spool")
    assert rows == [("processed", "created", 10000)], rows
    names = [n for (n,) in home.query("SELECT filename FROM attachment")]
    for name in names:
        assert "/" not in name and "\\" not in name and "\x00" not in name and len(name) <= 200
        assert name not in (".", "..")
    if case == "hostile_names":
        assert "passwd" in names and "win.ini" in names
    sizes = [s for (s,) in home.query("SELECT size FROM attachment")]
    assert all(s < 10 * MB for s in sizes), "an attachment was stored decompressed"
    [(articles,)] = home.query("SELECT count(*) FROM article")
    report(Figures(sent=1, acknowledged=1, processed=int(articles == 1), lost=int(articles < 1),
                   duplicated=max(articles - 1, 0),
                   notes={"size_mb": round(raw.stat().st_size / MB, 1),
                          "peak_mb": round(peak_mb), "seconds": round(seconds, 1)}))
    assert peak_mb < memory_bound, f"{case}: {peak_mb:.0f} MB"
    assert seconds < time_bound, f"{case}: {seconds:.0f} s"
