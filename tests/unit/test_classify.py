"""classify: normal mail versus auto-replies, bulk, bounces and our own loops."""

from __future__ import annotations

from email.header import Header

import pytest

from mailgate import msgids
from mailgate.classify import (
    AUTO_REPLY,
    BOUNCE,
    BULK,
    LOOP,
    NORMAL,
    OwnMarks,
    classify,
    is_feedback_report,
)
from mailgate.message import parse

OWN = OwnMarks(
    addresses=frozenset({"hd@example.com", "support@example.com"}),
    x_loop="hd@example.com",
    msgid_domain="example.com",
)


def mail(*headers: str, sender: str = "mario@acme.it", body: str = "Printer is broken."):
    lines = [f"From: Mario Rossi <{sender}>", "To: hd@example.com", "Subject: Help",
             "Message-ID: <abc123@acme.it>", *headers]
    return parse(("\r\n".join(lines) + "\r\n\r\n" + body + "\r\n").encode())


def kind(*headers: str, mail_from: str | None = "mario@acme.it", sender: str = "mario@acme.it"):
    return classify(mail(*headers, sender=sender), mail_from, OWN).kind


def test_plain_customer_mail_is_normal():
    verdict = classify(mail(), "mario@acme.it", OWN)
    assert verdict.kind == NORMAL
    assert verdict.normal


def test_auto_submitted_auto_replied_is_auto_reply():
    assert kind("Auto-Submitted: auto-replied") == AUTO_REPLY


def test_auto_submitted_no_is_normal():
    assert kind("Auto-Submitted: no") == NORMAL


@pytest.mark.parametrize("value", ["bulk", "junk", "list", "Bulk"])
def test_precedence_bulk_junk_list_is_bulk(value):
    assert kind(f"Precedence: {value}") == BULK


def test_list_id_is_bulk():
    assert kind("List-Id: Customers <customers.lists.acme.it>") == BULK


@pytest.mark.parametrize("mail_from", ["", "<>"])
def test_null_envelope_sender_is_bounce(mail_from):
    assert kind(mail_from=mail_from) == BOUNCE


def test_no_envelope_at_all_is_not_a_bounce():
    assert kind(mail_from=None) == NORMAL


def test_mailer_daemon_sender_is_bounce():
    assert kind(sender="MAILER-DAEMON@mx.acme.it") == BOUNCE


def test_multipart_report_is_bounce():
    headers = ('Content-Type: multipart/report; report-type=delivery-status; boundary="b"',)
    body = "--b\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n--b--"
    verdict = classify(mail(*headers, body=body), "mario@acme.it", OWN)
    assert verdict.kind == BOUNCE


def test_our_x_loop_is_loop():
    assert kind("X-Loop: HD@example.com") == LOOP


def test_our_message_id_is_loop():
    ours = msgids.make("example.com", 1, "ab")
    raw = f"From: x@acme.it\r\nMessage-ID: {ours}\r\nSubject: Re\r\n\r\nhi\r\n".encode()
    verdict = classify(parse(raw), "x@acme.it", OWN)
    assert verdict.kind == LOOP
    assert ours in verdict.reason


def test_mail_from_our_own_address_is_loop():
    assert kind(sender="Support@Example.com") == LOOP


# --- bounces, feedback reports and auto replies in full (RFC 3834, 3464, 6522, 5965) -------


def message(subject: str = "Help", *headers: str, sender: str = "Mario Rossi <mario@acme.it>",
            body: str = "Printer is broken.", content_type: str = "text/plain; charset=utf-8"):
    subject = Header(subject, "utf-8").encode() if not subject.isascii() else subject
    lines = [f"From: {sender}", "To: hd@example.com", f"Subject: {subject}",
             "Message-ID: <abc123@acme.it>", f"Content-Type: {content_type}", *headers]
    return parse(("\r\n".join(lines) + "\r\n\r\n" + body + "\r\n").encode())


def verdict_of(mail_, mail_from: str | None = "mario@acme.it"):
    return classify(mail_, mail_from, OWN)


@pytest.mark.parametrize("sender", [
    "<>", "MAILER-DAEMON <>", "Mail Delivery System <MAILER-DAEMON>",
    "post_master@vtext.example.com", "Postmaster@acme.it"])
def test_null_and_mailer_daemon_from_headers_are_bounces(sender):
    assert verdict_of(message("Hello", sender=sender)).kind == BOUNCE


def test_null_return_path_header_is_bounce():
    verdict = verdict_of(message("Hello", "Return-Path: <>"))
    assert verdict.kind == BOUNCE and "Return-Path" in verdict.reason


def test_null_return_path_on_an_out_of_office_is_auto_reply():
    # RFC 3834 §3.3: auto-replies go to the null reverse-path too.
    assert verdict_of(message("Automatic reply: Help", "Return-Path: <>")).kind == AUTO_REPLY


def report(report_type: str, part: str) -> tuple[str, str]:
    # The part is an attachment with a file name, as McAfee's gateway sends it:
    # message.parse lists only such message/* parts, and classify sees no more.
    return (f'multipart/report; report-type={report_type}; boundary="b"',
            f"--b\r\nContent-Type: text/plain\r\n\r\nA report.\r\n"
            f'--b\r\nContent-Type: {part}; name="report.txt"\r\n'
            f'Content-Disposition: attachment; filename="report.txt"\r\n\r\n'
            f"Feedback-Type: abuse\r\n"
            f"Final-Recipient: rfc822; bob@acme.it\r\nAction: failed\r\n--b--")


def test_arf_feedback_report_is_a_bounce_that_marks_nobody():
    ctype, body = report("feedback-report", "message/feedback-report")
    mail_ = message("Abuse report", body=body, content_type=ctype)
    verdict = verdict_of(mail_)
    assert verdict.kind == BOUNCE and verdict.reason.startswith("ARF feedback report")
    assert is_feedback_report(mail_)


def test_read_receipt_is_auto_reply():
    ctype, body = report("disposition-notification", "message/disposition-notification")
    assert verdict_of(message("Read: Help", body=body, content_type=ctype)).kind == AUTO_REPLY


@pytest.mark.parametrize("part", ["message/delivery-status", "message/feedback-report"])
def test_report_part_inside_multipart_mixed_is_bounce(part):
    _ctype, body = report("x", part)
    mail_ = message("Delivery Status", body=body, content_type='multipart/mixed; boundary="b"')
    assert verdict_of(mail_).kind == BOUNCE
    assert is_feedback_report(mail_) == (part == "message/feedback-report")


def test_exim_x_failed_recipients_is_bounce():
    assert verdict_of(message("Hello", "X-Failed-Recipients: bob@acme.it")).kind == BOUNCE


BOUNCE_SUBJECTS = [
    "Undelivered Mail Returned to Sender", "Delivery Status Notification (Failure)",
    "Mail delivery failed: returning message to sender", "Returned mail: User unknown",
    "Undeliverable: Printer", "Mancato recapito: Stampante", "Kézbesítési hiba",
    "Nem kézbesíthető: Nyomtató", "Недоставленное сообщение", "Не удалось доставить",
    "Unzustellbar: Drucker",
]


@pytest.mark.parametrize("subject", BOUNCE_SUBJECTS)
def test_bounce_subject_from_a_machine_is_bounce(subject):
    machine = message(subject, "Auto-Submitted: auto-replied", sender="noreply@mx.acme.it")
    assert verdict_of(machine).kind == BOUNCE
    assert verdict_of(message(subject, "Return-Path: <>")).kind == BOUNCE


@pytest.mark.parametrize("subject", BOUNCE_SUBJECTS)
def test_bounce_subject_written_by_a_customer_stays_normal(subject):
    assert verdict_of(message(subject, body="Our mail to the bank bounces, please help.")).normal


def test_forwarded_bounce_is_a_support_request():
    body = ("Why does this bounce?\r\n\r\n> From: MAILER-DAEMON@mx.acme.it\r\n"
            "> Subject: Returned mail: see transcript for details\r\n> User unknown")
    assert verdict_of(message("Fwd: Returned mail: see transcript for details",
                              body=body)).normal


def test_bounce_wording_with_a_null_return_path_is_bounce():
    body = "This message could not be delivered to <bob@acme.it>: user unknown."
    assert verdict_of(message("Mail", "Return-Path: <>", body=body)).kind == BOUNCE


def test_bounce_wording_from_a_noreply_monitor_stays_normal():
    # Monitoring alerts come from no-reply senders and may talk about mail delivery.
    body = "PROBLEM: mail delivery failed on mx1 - the queue holds 400 messages."
    mail_ = message("PROBLEM: mx1 queue", sender="noreply@monitor.acme.it", body=body)
    assert verdict_of(mail_).normal


def test_amazon_ses_bounce_and_complaint():
    def ses(kind: str):
        return message("AWS Notification Message", "x-amz-sns-message-id: 1",
                       sender="no-reply@sns.amazonaws.com",
                       body=f'{{"notificationType":"{kind}","mail":{{}}}}')
    assert verdict_of(ses("Bounce")).kind == BOUNCE
    assert verdict_of(ses("Complaint")).reason.startswith("ARF feedback report")


@pytest.mark.parametrize("header", [
    "Auto-Submitted: auto-generated", "Auto-Submitted: auto-replied (vacation)",
    "X-Autoreply: yes", "X-Autorespond: yes", "Precedence: auto_reply",
    "X-Autogenerated: Reply", "X-Apple-Action: VACATION"])
def test_auto_reply_headers(header):
    assert verdict_of(message("Re: Help", header)).kind == AUTO_REPLY


def test_ordinary_outlook_mail_with_x_auto_response_suppress_stays_normal():
    mail_ = message("Printer on floor 2", "X-Auto-Response-Suppress: All",
                    "X-MS-Has-Attach:", "X-MS-TNEF-Correlator:",
                    body="Hello, the printer on floor 2 prints blank pages.")
    assert verdict_of(mail_).normal


def test_out_of_office_text_with_x_auto_response_suppress_is_auto_reply():
    mail_ = message("Re: [#10042] Printer", "X-Auto-Response-Suppress: All",
                    body="I am out of the office this week.")
    assert verdict_of(mail_).kind == AUTO_REPLY


@pytest.mark.parametrize("subject", [
    "Out of Office: Help", "Automatic reply: Help", "Auto: Mario Rossi is out of the office",
    "AutoReply: Help", "Abwesenheitsnotiz: Drucker", "Automatische Antwort: Drucker",
    "Risposta automatica: Stampante", "Fuori sede: Stampante", "Automatikus válasz: Nyomtató",
    "Házon kívül: Nyomtató", "Автоматический ответ: Принтер", "Вне офиса: Принтер"])
def test_vacation_subjects_on_replies_are_auto_replies(subject):
    assert verdict_of(message(subject, "In-Reply-To: <ours@example.com>")).kind == AUTO_REPLY


def test_out_of_office_subject_of_a_new_mail_stays_normal():
    # A person may write this; only the explicit "Automatic reply:" kind counts alone.
    assert verdict_of(message("Out of office: how do I turn it on?")).normal


@pytest.mark.parametrize("body", [
    "I am out of the office until 5 May with limited access to email.",
    "Thank you for your message. I'm currently away; for urgent matters please call Anna.",
    "This is an automatic reply: your message has been received.",
    "Sono assente fino al 5 maggio. Per urgenze contattare Anna.",
    "Ich bin bis zum 5. Mai nicht im Büro. In dringenden Fällen wenden Sie sich an Anna.",
    "Házon kívül vagyok május 5-ig. Sürgős esetben hívja Annát.",
    "Я в отпуске до 5 мая. По срочным вопросам обращайтесь к Анне.",
])
def test_vacation_text_is_auto_reply(body):
    assert verdict_of(message("Re: Help", body=body)).kind == AUTO_REPLY


@pytest.mark.parametrize("body", [
    "I was out of office last week, the printer still fails.",
    "I'm out of the office today, please reset my VPN password.",
    "Our automatic reply does not work since Monday, can you check?",
    "Sono stato assente ieri, la stampante non funziona ancora.",
])
def test_customer_mail_that_mentions_absence_stays_normal(body):
    assert verdict_of(message("Printer", body=body)).normal


def test_mailing_list_software_headers_are_bulk():
    assert kind("X-Mailman-Version: 2.1") == BULK
    assert kind("X-MLServer: fml [fml 4.0.3]") == BULK
