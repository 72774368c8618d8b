"""``mailgate import PATH``: a Maildir or an mbox, a summary, and safe to run twice."""

from __future__ import annotations

import mailbox

import pytest

from tests.helpers import mail, make_home


def messages():
    first = mail("mario@acme.it", "Old printer ticket", message_id="<imp-1@acme.it>")
    reply = mail("mario@acme.it", "Re: Old printer ticket", "Any news?\n",
                 message_id="<imp-2@acme.it>", in_reply_to="<imp-1@acme.it>",
                 references="<imp-1@acme.it>")
    other = mail("anna@beta.hu", "Régi levél", message_id="<imp-3@beta.hu>")
    news = mail("news@acme.it", "Newsletter", message_id="<imp-4@acme.it>",
                headers={"Precedence": "bulk"})
    return [first, reply, other, news]


@pytest.fixture
def home(tmp_path):
    return make_home(tmp_path)


@pytest.mark.parametrize("kind", ["mbox", "maildir"])
def test_import_summarises_and_is_safe_to_run_twice(home, tmp_path, kind):
    path = tmp_path / f"old.{kind}"
    box = mailbox.mbox(path) if kind == "mbox" else mailbox.Maildir(path)
    for msg in messages():
        box.add(msg)
    box.flush()

    first = home.cli("import", str(path))
    assert first.stdout.strip() == (
        f"{path}: 4 messages: 2 new tickets, 1 threaded, 0 sales, 1 ignored, 0 failed, "
        "0 already present")
    tickets = home.json("tickets", "list")
    assert sorted(t["subject"] for t in tickets) == ["Old printer ticket", "Régi levél"]
    [acme] = [t for t in tickets if t["company"] == "Acme Srl"]
    assert len(home.json("tickets", "show", str(acme["number"]))["articles"]) == 2
    assert {r["door"] for r in home.json("spool", "list")} == {"import"}

    again = home.cli("import", str(path))
    assert again.stdout.strip().endswith("0 new tickets, 0 threaded, 0 sales, 0 ignored, "
                                         "0 failed, 4 already present")
    assert len(home.json("tickets", "list")) == 2
    assert len(home.mails_to("mario@acme.it")) == 1


def test_import_refuses_what_is_not_a_mailbox(home, tmp_path):
    (tmp_path / "notes.txt").write_text("hello\n")
    proc = home.cli("import", str(tmp_path / "notes.txt"), check=False)
    assert proc.returncode == 65 and "not an mbox" in proc.stderr
    proc = home.cli("import", str(tmp_path / "missing"), check=False)
    assert proc.returncode == 65 and "no such file or folder" in proc.stderr
