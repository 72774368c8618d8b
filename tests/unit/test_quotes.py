"""quotes.new_part / html_new_part: quoted history and "-- " signatures removed (RFC 3676
§4.3), in the five languages of the desk, with the sender's words never lost."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailgate.quotes import html_new_part, new_part

EN_ON = "On Mon, Nov 23, 2026 at 10:00 AM Mario Rossi <m@acme.it> wrote:"
IT_ON = "Il giorno lun 23 nov 2026 alle 10:00 Mario Rossi <m@acme.it> ha scritto:"
HU_ON = "2026. nov. 23., hétfő 10:00 időpontban Kiss Anna <a@beta.hu> írta:"
RU_ON = "23 нояб. 2026 г., в 10:00, Иван <i@gamma.ru> написал(а):"
DE_ON = "Am Mo., 23. Nov. 2026 um 10:00 Uhr schrieb Hans Müller <h@delta.de>:"

OUTLOOK = {
    "en": "From: Mario Rossi <m@acme.it>\nSent: Monday, November 23, 2026 10:00 AM\n"
          "To: hd@example.com\nSubject: Printer",
    "it": "Da: Mario Rossi <m@acme.it>\nInviato: lunedì 23 novembre 2026 10:00\n"
          "A: hd@example.com\nOggetto: Stampante",
    "hu": "Feladó: Kiss Anna <a@beta.hu>\nKüldve: 2026. november 23., hétfő 10:00\n"
          "Címzett: hd@example.com\nTárgy: Nyomtató",
    "ru": "От: Иван <i@gamma.ru>\nОтправлено: 23 ноября 2026 г. 10:00\n"
          "Кому: hd@example.com\nТема: Принтер",
    "de": "Von: Hans Müller <h@delta.de>\nGesendet: Montag, 23. November 2026 10:00\n"
          "An: hd@example.com\nBetreff: Drucker",
}

ORIGINAL_MESSAGE = {
    "en": "-----Original Message-----",
    "en-zimbra": "----- Original Message -----",
    "it": "-----Messaggio originale-----",
    "de": "-----Ursprüngliche Nachricht-----",
    "hu": "-----Eredeti üzenet-----",
    "ru": "-----Исходное сообщение-----",
    "ru-thunderbird": "-------- Исходное сообщение --------",
}

# (id, mail text, expected new part)
CASES = [
    # attribution line + ">" quote, top-posting, one per language
    ("en-on-wrote", f"Thanks, it works now.\n\n{EN_ON}\n> Please restart the printer.\n",
     "Thanks, it works now."),
    ("en-on-wrote-wrapped",
     "Done.\n\nOn Mon, Nov 23, 2026 at 10:00 AM Mario Rossi <\nm@acme.it> wrote:\n\n> old\n",
     "Done."),
    ("en-apple", "Done.\n\nOn 23 Nov 2026, at 10:00, Mario Rossi <m@acme.it> wrote:\n\n> old",
     "Done."),
    ("en-yahoo-dashes", "Done.\n\n--- On Mon, 23/11/26, Mario <m@acme.it> wrote:\n\n> old",
     "Done."),
    ("it-il-giorno", f"Grazie, ora funziona.\n\n{IT_ON}\n> Riavviate la stampante.",
     "Grazie, ora funziona."),
    ("it-thunderbird", "Grazie.\n\nIl 23/11/2026 10:00, Mario Rossi ha scritto:\n> vecchio",
     "Grazie."),
    ("hu-gmail", f"Köszönöm, működik.\n\n{HU_ON}\n> Indítsa újra a nyomtatót.",
     "Köszönöm, működik."),
    ("hu-gmail-old", "Köszönöm.\n\nKiss Anna <a@beta.hu> ezt írta (időpont: 2026. nov. 23., "
     "H, 10:00):\n> régi", "Köszönöm."),
    ("hu-wrapped", "Köszönöm.\n\n2026. nov. 23., hétfő 10:00 időpontban Kiss Anna <\n"
     "a@beta.hu> írta:\n\n> régi", "Köszönöm."),
    ("ru-gmail", f"Спасибо, работает.\n\n{RU_ON}\n> Перезагрузите принтер.",
     "Спасибо, работает."),
    ("ru-napisal", "Спасибо.\n\n23.11.2026 10:00, Иван <i@gamma.ru> написал:\n> старое",
     "Спасибо."),
    ("ru-pishet", "Спасибо.\n\n23.11.2026 10:00, Иван Петров пишет:\n> старое", "Спасибо."),
    ("ru-yandex", 'Спасибо.\n\n23.11.2026, 10:00, "Иван" <i@gamma.ru>:\n> старое', "Спасибо."),
    ("de-am-schrieb", f"Danke, geht wieder.\n\n{DE_ON}\n> Bitte neu starten.",
     "Danke, geht wieder."),
    # Outlook header blocks: everything after them is history, quoted or not
    *[(f"outlook-{lang}", f"Fixed.\n\n{block}\n\nold text\nmore old text", "Fixed.")
      for lang, block in OUTLOOK.items()],
    ("outlook-rule-line", f"Fixed.\n\n{'_' * 32}\n{OUTLOOK['en']}\n\nold", "Fixed."),
    ("outlook-bold", "Fixed.\n\n*From:* Mario Rossi <m@acme.it>\n*Sent:* Monday 10:00\n"
     "*To:* hd@example.com\n\nold", "Fixed."),
    *[(f"separator-{name}", f"Fixed.\n\n{line}\nold text without headers", "Fixed.")
      for name, line in ORIGINAL_MESSAGE.items()],
    # signatures (RFC 3676 §4.3)
    ("signature", "Printer fixed.\n-- \nMario Rossi\nAcme Srl", "Printer fixed."),
    ("signature-space-stripped", "Printer fixed.\n--\nMario Rossi", "Printer fixed."),
    ("signature-then-quote", f"Printer fixed.\n\n-- \nMario\n\n{EN_ON}\n> old",
     "Printer fixed."),
    ("double-dash-text-is-not-a-signature", "Steps:\n-- restart\n-- check the cable",
     "Steps:\n-- restart\n-- check the cable"),
    # bottom-posting and interleaved answers: the sender's lines after the quote are kept
    ("bottom-posting", f"{EN_ON}\n> Is the printer on?\n\nYes, it is on now.",
     "Yes, it is on now."),
    ("bottom-posting-no-header", "> Is the printer on?\nYes.", "Yes."),
    ("bottom-posting-signature", f"{IT_ON}\n> Acceso?\n\nSì.\n-- \nMario", "Sì."),
    ("interleaved", f"Hi,\n\n{EN_ON}\n> Is it on?\nYes.\n> Which model?\nHP 4250.\n\n-- \nMario",
     "Hi,\n\nYes.\n\nHP 4250."),
    # nothing to cut: unchanged (stripped); lists and "Thanks," are not signatures
    ("no-quote", "Hello,\nthe printer is broken.\n\n- restart tried\n- cable checked\n\n"
     "Thanks, Mario\n", "Hello,\nthe printer is broken.\n\n- restart tried\n- cable checked"
     "\n\nThanks, Mario"),
    ("hu-prose-without-time", "Anna ezt írta:\nA nyomtató nem működik.",
     "Anna ezt írta:\nA nyomtató nem működik."),
    ("ru-prose-without-time", "Иван пишет:\nпринтер не работает",
     "Иван пишет:\nпринтер не работает"),
    ("headers-in-prose-without-from", "Date: tomorrow\nSubject: printers\nall of them",
     "Date: tomorrow\nSubject: printers\nall of them"),
    # nothing new: the whole mail, stripped (never an empty text for a non-empty mail)
    ("only-a-quote", f"{EN_ON}\n> old text\n", f"{EN_ON}\n> old text"),
    ("only-an-outlook-block", f"{OUTLOOK['en']}\n\nold", f"{OUTLOOK['en']}\n\nold"),
    ("only-a-signature", "-- \nMario Rossi", "-- \nMario Rossi"),
    # commands at the top stay with the text
    ("commands", f"#status open\n\nThanks\n\n{EN_ON}\n> old",
     "#status open\n\nThanks"),
    ("commands-it", f"#status resolved\n#time 1h\n\nRisolto.\n\n{OUTLOOK['it']}\n\nold",
     "#status resolved\n#time 1h\n\nRisolto."),
    # forwards are the point of the mail: kept from the marker on
    ("forward-gmail", "FYI, see below.\n\n---------- Forwarded message ---------\n"
     f"{OUTLOOK['en']}\n\nThe printer is broken.",
     "FYI, see below.\n\n---------- Forwarded message ---------\n"
     f"{OUTLOOK['en']}\n\nThe printer is broken."),
    ("forward-apple", "FYI\n\nBegin forwarded message:\n\nFrom: Mario <m@acme.it>\n"
     "Date: 23 Nov 2026\n\nbroken", "FYI\n\nBegin forwarded message:\n\nFrom: Mario <m@acme.it>\n"
     "Date: 23 Nov 2026\n\nbroken"),
    ("crlf", f"Fixed.\r\n\r\n{EN_ON}\r\n> old\r\n", "Fixed."),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_new_part(text, expected):
    assert new_part(text) == expected


def test_languages_choose_the_headers():
    text = f"Köszönöm.\n\n{HU_ON}\nrégi"
    assert new_part(text, languages=("hu",)) == "Köszönöm."
    assert new_part(text, languages=("en",)) == text
    assert new_part(f"Ok.\n\n{OUTLOOK['ru']}\n\nold", languages=("en",)).startswith("Ok.\n\nОт:")


def test_indentation_inside_the_new_part_is_kept():
    text = f"Output:\n    C:\\> ping 10.0.0.1\n    timeout\n\n{EN_ON}\n> old"
    assert new_part(text) == "Output:\n    C:\\> ping 10.0.0.1\n    timeout"


@pytest.mark.parametrize("text", ["", "   \n\n", "\x00\x01", "> ", "-- ", ":", "\r\r\r"])
def test_odd_input(text):
    assert new_part(text) == text.strip()


def test_never_raises_on_a_non_string():
    assert new_part(None) == ""  # type: ignore[arg-type]


def test_long_lines_are_fast():
    hostile = ("On " + "a " * 190 + "wrote:\n") * 300 + "On " + "x" * 200_000 + "\n"
    started = time.monotonic()
    new_part(hostile)
    assert time.monotonic() - started < 5


TOKENS = [*"ab >-:\n\r\t@<.0123456789íá", "On ", " wrote:", "From: ", "Sent: ", "-- \n",
          "> ", "\u00a0", " írta:", " пишет:", "-----Original Message-----"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=60).map("".join))
def test_never_empty_for_a_non_blank_mail(text):
    result = new_part(text)
    assert isinstance(result, str)
    assert bool(result) == bool(text.strip())


# --- HTML ------------------------------------------------------------------------------------

HTML_CASES = [
    ("gmail", '<div dir="ltr">New text</div><div class="gmail_quote"><div class="gmail_attr">'
     f"{EN_ON}</div><blockquote class=\"gmail_quote\">Old text</blockquote></div>", "New text"),
    ("thunderbird", '<p>New text</p><div class="moz-cite-prefix">On 23/11/2026, Mario wrote:'
     '</div><blockquote type="cite">Old text</blockquote>', "New text"),
    ("outlook-web", '<div>New text</div><hr><div id="divRplyFwdMsg"><b>From:</b> Mario<br>'
     "<b>Sent:</b> Monday</div><div>Old text</div>", "New text"),
    ("outlook-desktop", "<p>New text</p><div style='border-top:solid #E1E1E1 1.0pt'><p>"
     "<b>From:</b> Mario<br><b>Sent:</b> Monday<br><b>To:</b> hd</p></div><p>Old text</p>",
     "New text"),
    ("hr-separated", "<div>New text<hr><b>Feladó:</b> Anna<br><b>Küldve:</b> hétfő<br>"
     "<b>Tárgy:</b> x<br><br>Old text</div>", "New text"),
    ("yandex", '<p>New text<br/>23.11.2026, 10:00, "Иван" &lt;i@gamma.ru&gt;:</p>'
     "<blockquote>Old text</blockquote>", "New text"),
    ("no-quote", "<p>Only <b>new</b> text</p>", "Only new text"),
]


@pytest.mark.parametrize(("html", "expected"), [c[1:] for c in HTML_CASES],
                         ids=[c[0] for c in HTML_CASES])
def test_html_new_part(html, expected):
    assert html_new_part(html) == expected


def test_html_indent_blockquote_is_not_a_quote():
    html = '<div>Steps:</div><blockquote style="margin:0 0 0 40px;border:none;padding:0px">' \
           "restart the spooler</blockquote>"
    assert "restart the spooler" in html_new_part(html)


def test_html_gmail_forward_is_kept():
    html = '<div>FYI</div><div class="gmail_quote"><div class="gmail_attr">---------- ' \
           "Forwarded message ---------<br>From: Mario &lt;m@acme.it&gt;<br>Date: Mon<br>" \
           "Subject: Printer<br></div><div>The printer is broken.</div></div>"
    assert "The printer is broken." in html_new_part(html)


@pytest.mark.parametrize("html", ["", "   ", "<html></html>"])
def test_html_without_text_is_none(html):
    assert html_new_part(html) is None


@pytest.mark.parametrize("html", ["<<<>>>", "\x00", "<p>a</p" * 10_000, "<?xml version='1.0'?>"])
def test_html_garbage_never_raises(html):
    result = html_new_part(html)
    assert result is None or isinstance(result, str)


def test_html_rule_above_a_removed_quote_goes_too():
    html = f"<div>New text</div><hr><div>{EN_ON}</div><blockquote>Old text</blockquote>"
    assert html_new_part(html) == "New text"
