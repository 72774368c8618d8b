"""The command line as a sysadmin meets it: check-config, schema guard, JSON shapes."""

from __future__ import annotations

import shutil
import subprocess

from tests.desk import Desk
from tests.helpers import MAILGATE, PROJECT, mail, make_home

TICKET_KEYS = {"number", "subject", "status", "priority", "category", "origin", "company",
               "requester", "assignee", "created_at", "response_due"}
SHOW_KEYS = TICKET_KEYS | {"participants", "time_spent_hours", "eta", "merged_into", "links",
                           "articles", "events"}
ARTICLE_KEYS = {"direction", "message_id", "from", "to", "subject", "text", "internal",
                "created_at", "attachments"}


def test_version_and_help():
    out = subprocess.run([*MAILGATE, "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("mailgate, version ")


def test_check_config_accepts_the_shipped_example():
    proc = subprocess.run([*MAILGATE, "-c", str(PROJECT / "config.example.toml"),
                           "check-config"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("config.example.toml: ok")


def test_check_config_names_file_key_and_reason_for_every_error(tmp_path):
    home = make_home(tmp_path, upgrade=False)
    text = home.config.read_text().replace("max_message_size = 200000",
                                           "max_message_size = -1\nprot = 1")
    home.config.write_text(text)
    (tmp_path / "rules" / "companies.toml").write_text(
        '[[company]]\nname = "A"\ndomains = ["a.it"]\n[[company]]\nname = "B"\n'
        'domains = ["a.it"]\n')
    proc = home.cli("check-config", check=False)
    assert proc.returncode == 78
    lines = proc.stderr.splitlines()
    assert any(f"{home.config}:smtp.max_message_size:" in line for line in lines)
    assert any(f"{home.config}:smtp.prot: Extra inputs" in line for line in lines)

    home.config.write_text(text.replace("max_message_size = -1\nprot = 1", ""))
    proc = home.cli("check-config", check=False)
    assert proc.returncode == 78
    assert "companies.toml:company[1].domains: a.it already belongs to A" in proc.stderr


def test_check_config_warns_about_staff_auth_none_and_a_public_listener(tmp_path):
    home = make_home(tmp_path, upgrade=False)
    text = home.config.read_text().replace("[staff]\n", '[staff]\nauth = "none"\n')
    home.config.write_text(text.replace('host = "127.0.0.1"', 'host = "0.0.0.0"', 1))
    proc = home.cli("check-config")
    assert "warning:" in proc.stderr and "staff.auth" in proc.stderr
    assert "smtp.host: 0.0.0.0 is not loopback" in proc.stderr


def test_serve_refuses_a_database_whose_schema_is_not_at_head(tmp_path):
    home = make_home(tmp_path, upgrade=False)
    proc = home.cli("serve", check=False)
    assert proc.returncode == 78
    assert "run 'mailgate db upgrade'" in proc.stderr


def test_json_listings_have_the_spec_shapes(tmp_path):
    desk = Desk(tmp_path)
    msg = mail("mario@acme.it", "Shapes", cc="anna@acme.it")
    msg.add_attachment(b"%PDF-1.4 fake", maintype="application", subtype="pdf",
                       filename="report.pdf")
    desk.deliver(msg)
    home = desk.home

    [ticket] = home.json("tickets", "list")
    assert set(ticket) >= TICKET_KEYS
    assert ticket["created_at"].endswith("+00:00")
    assert home.json("tickets", "list", "--company", "acme srl") == [ticket]
    assert home.json("tickets", "list", "--status", "closed") == []

    shown = home.json("tickets", "show", "10000")
    assert set(shown) >= SHOW_KEYS
    assert shown["participants"] == ["mario@acme.it", "anna@acme.it"]
    [article] = shown["articles"]
    assert set(article) >= ARTICLE_KEYS and article["direction"] == "in"
    assert article["attachments"][0]["filename"] == "report.pdf"
    assert article["attachments"][0]["size"] == len(b"%PDF-1.4 fake")
    assert {e["kind"] for e in shown["events"]} >= {"created"}

    [row] = home.json("spool", "list")
    assert {"id", "message_id", "door", "state", "outcome", "ticket", "error"} <= set(row)
    assert (row["door"], row["state"], row["ticket"]) == ("smtp", "processed", 10000)
    assert home.json("spool", "list", "--failed") == []

    outbox = home.json("outbox", "list")
    assert {"id", "to", "subject", "template", "state", "attempts", "ticket"} <= set(outbox[0])
    assert sorted(r["template"] for r in outbox) == ["auto_reply", "staff_new_ticket"]

    missing = home.cli("tickets", "show", "99999", check=False)
    assert missing.returncode == 1 and "no ticket 99999" in missing.stderr


def test_a_mail_that_fails_is_kept_listed_and_retried_once_fixed(tmp_path):
    home = make_home(tmp_path)
    templates = tmp_path / "templates"
    shutil.copytree(PROJECT / "templates", templates)
    home.config.write_text(home.config.read_text().replace(
        f'templates = "{PROJECT / "templates"}"', 'templates = "templates"'))
    broken = templates / "it" / "auto_reply.txt.j2"
    good = broken.read_text()
    broken.write_text("{{ ticket.no_such_field }}\n")  # a sysadmin's typo

    msg = mail("mario@acme.it", "Fails first")
    proc = subprocess.run([*MAILGATE, "-c", str(home.config), "deliver"], input=msg.as_bytes(),
                          capture_output=True, timeout=60)
    assert proc.returncode == 0  # stored: the MTA's job is done whatever happens next
    [row] = home.json("spool", "list", "--failed")
    assert row["state"] == "failed" and "no_such_field" in row["error"]
    assert home.json("tickets", "list") == []

    broken.write_text(good)
    retried = home.cli("spool", "retry")
    assert retried.stdout.strip() == f"{row['id']}: processed created"
    assert home.json("spool", "list", "--failed") == []
    assert len(home.json("tickets", "list")) == 1
    assert home.cli("spool", "retry").stdout == ""
