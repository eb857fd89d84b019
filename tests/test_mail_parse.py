"""Reading an email: quoted text cut in the six languages, HTML bodies, thread ids, automatic mail."""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from copilot.connectors.mail_parse import Unreadable, html_to_text, read_message, strip_quotes

OWN = "Still amber after unplugging it for ten seconds."

ATTRIBUTIONS = {
    "en": "On Mon, 3 Jun 2024 at 10:02, Lumio Support <support@lumio.example> wrote:",
    "en-wrapped": "On Mon, Jun 3, 2024 at 10:02 AM Lumio Support <\nsupport@lumio.example> wrote:",
    "en-thunderbird": "Lumio Support wrote:",
    "es": "El lun, 3 jun 2024 a las 10:02, Lumio Support (<support@lumio.example>) escribió:",
    "fr": "Le lun. 3 juin 2024 à 10:02, Lumio Support <support@lumio.example> a écrit :",
    "de": "Am Mo., 3. Juni 2024 um 10:02 Uhr schrieb Lumio Support <support@lumio.example>:",
    "pt": "Em seg., 3 de jun. de 2024 às 10:02, Lumio Support <support@lumio.example> escreveu:",
    "pt-pt": "No dia segunda, 3/06/2024, às 10:02, Lumio Support escreveu:",
    "it": "Il giorno lun 3 giu 2024 alle ore 10:02 Lumio Support <support@lumio.example> ha scritto:",
}


@pytest.mark.parametrize("language", sorted(ATTRIBUTIONS))
def test_an_attribution_and_the_quote_below_it_are_cut(language: str) -> None:
    text = f"{OWN}\n\n{ATTRIBUTIONS[language]}\n\n> Unplug the bulb for ten seconds.\n> The Lumio Team\n"
    assert strip_quotes(text) == OWN


OUTLOOK = {
    "en": ("-----Original Message-----", "From: Lumio Support", "Sent: Monday, June 3, 2024 10:02 AM",
           "To: Ana", "Subject: Your bulb"),
    "es": ("-----Mensaje original-----", "De: Lumio Support", "Enviado: lunes, 3 de junio de 2024 10:02",
           "Para: Ana", "Asunto: Su bombilla"),
    "fr": ("-----Message d'origine-----", "De : Lumio Support", "Envoyé : lundi 3 juin 2024 10:02",
           "À : Ana", "Objet : Votre ampoule"),
    "de": ("-----Ursprüngliche Nachricht-----", "Von: Lumio Support", "Gesendet: Montag, 3. Juni 2024 10:02",
           "An: Ana", "Betreff: Ihre Lampe"),
    "pt": ("-----Mensagem original-----", "De: Lumio Support", "Enviado: segunda-feira, 3 de junho de 2024",
           "Para: Ana", "Assunto: Sua lâmpada"),
    "it": ("-----Messaggio originale-----", "Da: Lumio Support", "Inviato: lunedì 3 giugno 2024 10:02",
           "A: Ana", "Oggetto: La sua lampadina"),
}


@pytest.mark.parametrize("language", sorted(OUTLOOK))
def test_an_outlook_original_message_block_is_cut(language: str) -> None:
    separator, *headers = OUTLOOK[language]
    quoted = "\n".join(headers) + "\n\nUnplug the bulb for ten seconds."
    assert strip_quotes(f"{OWN}\n\n{separator}\n{quoted}") == OWN
    # Newer Outlook writes no separator line, only a rule and the header block (often in bold).
    assert strip_quotes(f"{OWN}\n\n{'_' * 32}\n{quoted}") == OWN
    assert strip_quotes(f"{OWN}\n\n" + "\n".join(f"*{h.replace(':', ':*', 1)}" for h in headers)) == OWN


def test_a_signature_and_interleaved_quotes() -> None:
    text = ("> Did you try unplugging it?\nYes, twice.\n> Which model is it?\nThe A19 colour bulb.\n\n"
            "-- \nAna Souza\n+55 11 5555 0100")
    assert strip_quotes(text) == "Yes, twice.\nThe A19 colour bulb."


def test_customer_text_that_only_looks_like_a_header_is_kept() -> None:
    text = "From: the kitchen, the bulb flickers.\nIt started on Monday.\nTo be honest I am annoyed."
    assert strip_quotes(text) == text
    assert strip_quotes("I wrote: please help") == "I wrote: please help"


def test_html_blockquotes_become_quotes_and_are_cut() -> None:
    html = ("<html><head><style>p{color:red}</style></head><body><div dir='ltr'>Still <b>amber</b>.<br>"
            "Any idea?</div><div class='gmail_quote'><div>On Mon, 3 Jun 2024, Lumio Support wrote:</div>"
            "<blockquote>Unplug it.<br>The Lumio Team</blockquote></div></body></html>")
    assert html_to_text(html).splitlines()[:2] == ["Still amber.", "Any idea?"]
    assert strip_quotes(html_to_text(html)) == "Still amber.\nAny idea?"


def mail(**headers: str) -> bytes:
    msg = EmailMessage()
    given = {key.replace("_", "-"): value for key, value in headers.items()}
    for key, value in {"From": "Ana <ana@example.com>", "To": "support@lumio.example",
                       "Subject": "Bulb stays amber", "Message-ID": "<a1@example.com>", **given}.items():
        msg[key] = value
    msg.set_content(f"{OWN}\n\nOn Mon, 3 Jun 2024, Lumio wrote:\n> Unplug it.\n")
    return msg.as_bytes()


def test_a_message_reads_with_its_thread() -> None:
    first = read_message(mail())
    assert (first.message_id, first.sender, first.root) == ("a1@example.com", "ana@example.com", "a1@example.com")
    assert first.text == f"Bulb stays amber\n\n{OWN}"  # a new thread keeps its subject
    reply = read_message(mail(Message_ID="<a3@example.com>", In_Reply_To="<r2@lumio.example>",
                              References="<a1@example.com> <r2@lumio.example>", Subject="Re: Bulb stays amber"))
    assert reply.root == "a1@example.com" and reply.text == OWN
    assert reply.thread == ("a1@example.com", "r2@lumio.example", "a3@example.com")
    only_parent = read_message(mail(Message_ID="<a4@example.com>", In_Reply_To="<r2@lumio.example>"))
    assert only_parent.root == "r2@lumio.example"


@pytest.mark.parametrize("headers", [
    {"Auto_Submitted": "auto-replied"}, {"Precedence": "bulk"}, {"Precedence": "auto_reply"},
    {"X_Autoreply": "yes"}, {"From": "MAILER-DAEMON@mx.example.com"}, {"Return_Path": "<>"},
])
def test_automatic_mail_is_recognised(headers: dict[str, str]) -> None:
    assert read_message(mail(**headers)).automatic
    assert read_message(mail(Auto_Submitted="no")).automatic is None


def test_unreadable_messages_say_why() -> None:
    with pytest.raises(Unreadable, match="sender"):
        read_message(b"\x00\x01 this is not an email at all")
    pdf = EmailMessage()
    pdf["From"], pdf["Message-ID"] = "ana@example.com", "<p@example.com>"
    pdf.set_content(b"%PDF-1.4", maintype="application", subtype="pdf")
    with pytest.raises(Unreadable, match="no text part"):
        read_message(pdf.as_bytes())
