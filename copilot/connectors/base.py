"""The one interface every platform connector implements, and what the web server and the publisher need of it.

A connector is also a ``Publisher``: an approved reply of a case that came from its platform goes back through
``post`` into the same conversation, carrying the queue's idempotency key so a retried publish never posts twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from copilot.errors import CopilotError
from copilot.queue.publish import OutgoingMessage, PostReceipt
from copilot.types import Inbound


class WebhookRejected(CopilotError):
    """A webhook request that is refused: 401 for a missing or wrong signature or a stale timestamp, 400 for a
    malformed payload, 413 for an oversized body. Nothing of it is stored."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class PlatformEvent:
    """One inbound message taken from a webhook or a mailbox.

    ``delivery_id`` identifies the delivery (the platform's delivery header, else the message's own id), so a
    redelivered event is acknowledged without a second case, draft or note. ``inbound.channel`` is the
    channel style the reply is fitted to (chat, email, forum, facebook, x...), and ``inbound.conversation``
    the thread the reply goes back to, prefixed with the connector's name.
    """

    inbound: Inbound
    delivery_id: str


@runtime_checkable
class Connector(Protocol):
    """A platform: events in, the draft as a private note, the approved reply out."""

    # The platform: "chatwoot", "discourse", "email". It is also the prefix of every conversation key the
    # connector makes ("chatwoot:<account>:<conversation>"), which is how a reply finds its way back.
    name: str

    def parse(self, headers: Mapping[str, str], body: bytes) -> list[PlatformEvent]:
        """Check the signature and read the events of one webhook request; [] for events to ignore (our own
        posts, private notes, outgoing messages). Raises ``WebhookRejected``."""
        ...

    def post_note(self, inbound: Inbound, text: str) -> None:
        """Show the draft to the team inside the platform (a private note, a staff whisper); never public."""
        ...

    def post(self, message: OutgoingMessage) -> PostReceipt:
        """Post an approved reply publicly in ``message.conversation``, at most once per idempotency key."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
