"""End to end through the email connector and real local servers: a mail becomes a case, an approved reply
leaves by SMTP once, and the customer's answer in the thread joins the same case."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from _mail_support import Mailbox, SmtpRecorder, imap_port, smtp, tls
from test_compose import make
from test_draft import labels
from test_mail_connector import connector, customer_mail, mailbox

from copilot.connectors.mail import EmailConnector
from copilot.connectors.registry import RoutingPublisher
from copilot.intake import Intake
from copilot.queue.publish import OutboxPublisher

__all__ = ["connector", "imap_port", "mailbox", "smtp", "tls"]  # fixtures

OPENING = "Thanks for writing in, we will get your bulb working again."


def test_a_mail_becomes_a_case_and_its_approved_reply_is_sent_once(
        tmp_path: Path, connector: EmailConnector, mailbox: Mailbox, smtp: tuple[int, SmtpRecorder]) -> None:
    pipe = make(tmp_path, [OPENING, OPENING], labels())
    intake = Intake(pipe.queue, pipe.drafter, {"email": connector})
    mailbox.deliver(customer_mail("a1@example.com", "My bulb will not connect to the wifi during setup.",
                                  subject="Setup fails"))
    [item_id] = intake.poll(connector).items
    assert "\\Seen" in mailbox.flags("a1@example.com") and intake.poll(connector).items == ()
    pipe.actions.approve(item_id, by="rita", version=pipe.queue.get(item_id).version)
    actions = replace(pipe.actions, publisher=lambda s: RoutingPublisher(OutboxPublisher(s.outbox_path),
                                                                         {"email": connector}))
    assert len(actions.publish(by="rita").posted) == 1 and actions.publish(by="rita").posted == ()
    [sent] = smtp[1].messages
    assert sent["In-Reply-To"] == "<a1@example.com>" and sent["Subject"] == "Re: Setup fails"
    assert "\\Answered" in mailbox.flags("a1@example.com")
    mailbox.deliver(customer_mail("a3@example.com", "I did that, it still fails.", subject="Re: Setup fails",
                                  In_Reply_To=sent["Message-ID"], References=f"<a1@example.com> {sent['Message-ID']}"))
    [follow_up] = intake.poll(connector).items
    assert pipe.queue.get(follow_up).case_id == pipe.queue.get(item_id).case_id
