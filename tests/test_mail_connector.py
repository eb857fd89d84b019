"""The email connector against real local servers: pymap for IMAP, aiosmtpd for SMTP (see _mail_support)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from email.message import EmailMessage

import pytest
from _mail_support import ADDRESS, PASSWORD, Mailbox, SmtpRecorder, Tls, free_port, imap_port, smtp, tls

from copilot.config import load_settings
from copilot.connectors.base import Connector, WebhookRejected
from copilot.connectors.mail import EmailConnector
from copilot.errors import ConfigError
from copilot.intake import Mailbox as Polled
from copilot.queue.publish import OutgoingMessage, PublishError

__all__ = ["imap_port", "smtp", "tls"]  # fixtures

QUOTE = "\n\nOn Mon, 3 Jun 2024 at 10:02, Lumio Support <support@lumio.example> wrote:\n> Unplug it for ten seconds.\n"


def customer_mail(mid: str, text: str, *, sender: str = "Ana Souza <ana@example.com>", subject: str = "Bulb",
                  **headers: str) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"], msg["Message-ID"] = sender, ADDRESS, subject, f"<{mid}>"
    for key, value in headers.items():
        msg[key.replace("_", "-")] = value
    msg.set_content(text)
    return msg.as_bytes()


@pytest.fixture
def mailbox(imap_port: int, tls: Tls) -> Iterator[Mailbox]:
    box = Mailbox(imap_port, tls)
    box.empty()
    yield box
    box.close()


@pytest.fixture
def connector(imap_port: int, smtp: tuple[int, SmtpRecorder], tls: Tls,
              mailbox: Mailbox) -> Iterator[EmailConnector]:
    sleeps: list[float] = []
    found = EmailConnector(
        imap_host="127.0.0.1", imap_port=imap_port, imap_ssl=False, imap_user=ADDRESS, imap_password=PASSWORD,
        smtp_host="127.0.0.1", smtp_port=smtp[0], smtp_starttls=True, address=ADDRESS, display_name="Lumio",
        timeout_s=5, retries=2, backoff_s=0.5, ssl_context=tls.client(), sleep=sleeps.append,
    )
    found.sleeps = sleeps  # type: ignore[attr-defined]
    yield found
    found.close()


def reply_to(mid: str, key: str = "copilot-abc123", text: str = "Hello Ana,\n\nTry a reset.\n\nLumio",
             conversation: str = "email:a1@example.com") -> OutgoingMessage:
    return OutgoingMessage(item_id=7, idempotency_key=key, kind="reply", channel="email", text=text,
                           author="ana@example.com", in_reply_to=mid, conversation=conversation)


def test_it_is_a_connector_and_a_mailbox(connector: EmailConnector) -> None:
    polled: Polled = connector  # the intake's polling interface (checked by mypy)
    assert isinstance(connector, Connector) and callable(polled.mark_taken) and connector.name == "email"
    with pytest.raises(WebhookRejected) as refused:
        connector.parse({}, b"From: a@b.c\r\n\r\nhi")
    assert refused.value.status == 404 and "polling" in refused.value.reason


def test_a_mail_in_becomes_one_event_and_is_seen_only_once_taken(connector: EmailConnector,
                                                                   mailbox: Mailbox) -> None:
    mailbox.deliver(customer_mail("a1@example.com", "My bulb stays amber after the update." + QUOTE,
                                  subject="Help please"))
    [event] = connector.poll()
    assert event.inbound.conversation == "email:a1@example.com"
    assert event.inbound.id == event.delivery_id == "a1@example.com"
    assert event.inbound.author == "ana@example.com" and event.inbound.channel == "email"
    assert event.inbound.text == "Help please\n\nMy bulb stays amber after the update."
    assert "\\Seen" not in mailbox.flags("a1@example.com")  # not lost if the case is never stored
    assert [e.delivery_id for e in connector.poll()] == ["a1@example.com"]
    connector.mark_taken(event)
    assert "\\Seen" in mailbox.flags("a1@example.com")
    assert connector.poll() == []


def test_a_reply_in_the_thread_gets_the_same_conversation(connector: EmailConnector, mailbox: Mailbox) -> None:
    mailbox.deliver(customer_mail("a1@example.com", "My bulb stays amber."))
    [first] = connector.poll()
    connector.mark_taken(first)
    connector.post(reply_to("a1@example.com"))
    ours = connector.message_id_for("copilot-abc123")
    # One client keeps the whole thread in References; another names only our answer in In-Reply-To.
    mailbox.deliver(customer_mail("a3@example.com", "Still amber." + QUOTE, subject="Re: Bulb",
                                  In_Reply_To=f"<{ours}>", References=f"<a1@example.com> <{ours}>"))
    mailbox.deliver(customer_mail("a4@example.com", "And now it blinks.", subject="Re: Bulb",
                                  In_Reply_To=f"<{ours}>"))
    events = connector.poll()
    assert {e.inbound.id: e.inbound.conversation for e in events} == {
        "a3@example.com": "email:a1@example.com", "a4@example.com": "email:a1@example.com"}
    assert {e.inbound.text for e in events} == {"Still amber.", "And now it blinks."}


def test_own_mail_and_automatic_mail_are_passed_over_and_left_as_they_are(connector: EmailConnector,
                                                                          mailbox: Mailbox) -> None:
    mailbox.deliver(customer_mail("own@lumio.example", "A copy of our answer.", sender=f"Lumio <{ADDRESS}>"))
    mailbox.deliver(customer_mail("ooo@example.com", "I am out of office.", Auto_Submitted="auto-replied"))
    mailbox.deliver(customer_mail("bulk@example.com", "Our newsletter.", Precedence="bulk"))
    mailbox.deliver(customer_mail("bounce@mx.example.com", "Delivery failed.",
                                  sender="MAILER-DAEMON@mx.example.com"))
    mailbox.deliver(customer_mail("real@example.com", "The app will not find my bulb."))
    assert [e.inbound.id for e in connector.poll()] == ["real@example.com"]
    for mid in ("own@lumio.example", "ooo@example.com", "bulk@example.com", "bounce@mx.example.com"):
        assert "\\Seen" not in mailbox.flags(mid)


def test_an_unreadable_message_is_left_unseen_with_a_reason(connector: EmailConnector, mailbox: Mailbox,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    pdf = EmailMessage()
    pdf["From"], pdf["Message-ID"], pdf["Subject"] = "ana@example.com", "<pdf@example.com>", "Invoice"
    pdf.set_content(b"%PDF-1.4 ...", maintype="application", subtype="pdf")
    mailbox.deliver(pdf.as_bytes())
    with caplog.at_level(logging.WARNING, logger="copilot.connectors.mail"):
        assert connector.poll() == []
    assert "left unseen" in caplog.text and "no text part" in caplog.text
    assert "\\Seen" not in mailbox.flags("pdf@example.com")


def test_post_sends_one_reply_in_the_thread_and_marks_the_original_answered(
        connector: EmailConnector, mailbox: Mailbox, smtp: tuple[int, SmtpRecorder]) -> None:
    mailbox.deliver(customer_mail("a2@example.com", "Still amber.", subject="Re: Bulb stays amber",
                                  References="<a1@example.com>", In_Reply_To="<a1@example.com>",
                                  Reply_To="Ana at home <ana.home@example.com>"))
    receipt = connector.post(reply_to("a2@example.com"))
    [sent] = smtp[1].messages
    assert sent["Message-ID"] == f"<{connector.message_id_for('copilot-abc123')}>" == "<copilot-abc123@lumio.example>"
    assert sent["In-Reply-To"] == "<a2@example.com>"
    assert sent["References"] == "<a1@example.com> <a2@example.com>"
    assert sent["Subject"] == "Re: Bulb stays amber" and sent["To"] == "ana.home@example.com"
    assert sent["From"] == f"Lumio <{ADDRESS}>" and "Try a reset." in sent.get_content()
    assert smtp[1].envelopes == [(ADDRESS, ["ana.home@example.com"])]
    assert receipt.external_id == "copilot-abc123@lumio.example" and not receipt.duplicate
    assert "\\Answered" in mailbox.flags("a2@example.com")
    assert [m["Message-ID"] for m in mailbox.messages("Sent")] == ["<copilot-abc123@lumio.example>"]
    assert connector.post(reply_to("a2@example.com")).duplicate and len(smtp[1].messages) == 1
    assert customer_subject(connector, mailbox, smtp[1]) == "Re: Printer"


def customer_subject(connector: EmailConnector, mailbox: Mailbox, recorder: SmtpRecorder) -> str:
    mailbox.deliver(customer_mail("b1@example.com", "My printer is offline.", subject="Printer"))
    connector.post(reply_to("b1@example.com", key="copilot-b1", conversation="email:b1@example.com"))
    return str(recorder.messages[-1]["Subject"])


def test_a_temporary_smtp_failure_is_retried_with_backoff(connector: EmailConnector, mailbox: Mailbox,
                                                          smtp: tuple[int, SmtpRecorder]) -> None:
    mailbox.deliver(customer_mail("a1@example.com", "Still amber."))
    smtp[1].answers = ["451 4.3.0 Try again later"]
    assert not connector.post(reply_to("a1@example.com")).duplicate
    assert len(smtp[1].messages) == 1 and connector.sleeps == [0.5]  # type: ignore[attr-defined]


def test_a_lost_answer_to_a_taken_message_is_not_sent_twice(connector: EmailConnector, mailbox: Mailbox,
                                                            smtp: tuple[int, SmtpRecorder],
                                                            caplog: pytest.LogCaptureFixture) -> None:
    mailbox.deliver(customer_mail("a1@example.com", "Still amber."))
    smtp[1].lose = 1
    with caplog.at_level(logging.WARNING, logger="copilot.connectors.mail"):
        first = connector.post(reply_to("a1@example.com"))
    assert "answer to the message was lost" in caplog.text
    # The queue retries the key (say the process died before it stored the receipt): found in Sent, not resent.
    again = connector.post(reply_to("a1@example.com"))
    assert again.duplicate and again.external_id == first.external_id and len(smtp[1].messages) == 1
    assert connector.sleeps == []  # type: ignore[attr-defined]
    assert mailbox.flags(first.external_id or "", "Sent") == {"\\Seen", "\\Flagged"}  # for a person to check
    assert "\\Answered" in mailbox.flags("a1@example.com")


def test_a_second_connector_finds_the_reply_in_sent(connector: EmailConnector, mailbox: Mailbox,
                                                     smtp: tuple[int, SmtpRecorder], imap_port: int,
                                                     tls: Tls) -> None:
    mailbox.deliver(customer_mail("a1@example.com", "Still amber."))
    connector.post(reply_to("a1@example.com"))
    other = EmailConnector(imap_host="127.0.0.1", imap_port=imap_port, imap_ssl=False, imap_user=ADDRESS,
                           imap_password=PASSWORD, smtp_host="127.0.0.1", smtp_port=smtp[0], address=ADDRESS,
                           ssl_context=tls.client(), sleep=lambda s: None)
    try:
        assert other.post(reply_to("a1@example.com")).duplicate and len(smtp[1].messages) == 1
    finally:
        other.close()


def test_a_permanent_refusal_raises_publish_error_at_once(connector: EmailConnector, mailbox: Mailbox,
                                                          smtp: tuple[int, SmtpRecorder]) -> None:
    mailbox.deliver(customer_mail("a1@example.com", "Still amber."))
    smtp[1].answers = ["554 5.7.1 Message rejected"]
    with pytest.raises(PublishError, match="554"):
        connector.post(reply_to("a1@example.com"))
    assert smtp[1].messages == [] and connector.sleeps == []  # type: ignore[attr-defined]
    assert "\\Answered" not in mailbox.flags("a1@example.com") and mailbox.messages("Sent") == []


def test_an_smtp_server_that_is_down_fails_after_the_retries(connector: EmailConnector, mailbox: Mailbox) -> None:
    mailbox.deliver(customer_mail("a1@example.com", "Still amber."))
    connector.smtp_port = free_port()  # nothing listens there
    with pytest.raises(PublishError, match="after 3 attempts"):
        connector.post(reply_to("a1@example.com"))
    assert connector.sleeps == [0.5, 1.0]  # type: ignore[attr-defined]


def test_a_wrong_password_is_a_permanent_failure(connector: EmailConnector, mailbox: Mailbox) -> None:
    mailbox.deliver(customer_mail("a1@example.com", "Still amber."))
    connector._smtp_login = (ADDRESS, "wrong")
    with pytest.raises(PublishError, match="535"):
        connector.post(reply_to("a1@example.com"))


def test_settings_build_it_and_name_what_is_missing() -> None:
    with pytest.raises(ConfigError, match="COPILOT_IMAP_PASSWORD.*COPILOT_EMAIL_ADDRESS"):
        EmailConnector.from_settings(load_settings(imap_host="imap.example.com", imap_user="u",
                                                   smtp_host="smtp.example.com"))
    built = EmailConnector.from_settings(load_settings(
        imap_host="imap.example.com", imap_user="u", imap_password="p", smtp_host="smtp.example.com",
        email_address="Support@Lumio.example", imap_folder="Support"))
    assert (built.address, built.folder, built.smtp_port, built.imap_ssl) == ("support@lumio.example", "Support",
                                                                            587, True)


def test_a_reply_to_a_message_moved_out_of_the_folder_still_reaches_the_author(
        connector: EmailConnector, smtp: tuple[int, SmtpRecorder]) -> None:
    connector.post(reply_to("gone@example.com"))
    [sent] = smtp[1].messages
    assert (sent["To"], sent["Subject"]) == ("ana@example.com", "Re: your message")
    assert sent["References"] == "<a1@example.com> <gone@example.com>" and sent["In-Reply-To"] == "<gone@example.com>"
