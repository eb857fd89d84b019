"""The connectors configured in the settings, and the publisher that sends each approved reply back where its
conversation came from.

A connector is on when its settings are: Chatwoot and Discourse with their URL, email with its IMAP host. Each
builds itself from the settings (``from_settings``), which says what is missing when a setting is half done.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping

from copilot.config import Settings
from copilot.connectors.base import Connector
from copilot.queue.publish import OutgoingMessage, PostReceipt, Publisher, PublishError, build_publisher

# platform -> (module, class, the setting that turns it on)
CONNECTORS: dict[str, tuple[str, str, str]] = {
    "chatwoot": ("copilot.connectors.chatwoot", "ChatwootConnector", "chatwoot_url"),
    "discourse": ("copilot.connectors.discourse", "DiscourseConnector", "discourse_url"),
    "email": ("copilot.connectors.mail", "EmailConnector", "imap_host"),
}


def build_connectors(settings: Settings) -> dict[str, Connector]:
    """Every connector whose settings are given, by platform name."""
    found: dict[str, Connector] = {}
    for platform, (module, name, switch) in CONNECTORS.items():
        if getattr(settings, switch):
            cls = getattr(importlib.import_module(module), name)
            found[platform] = cls.from_settings(settings)
    return found


class RoutingPublisher:
    """Posts a reply through the connector of its conversation's platform, an approved discussion starter as a
    new forum topic when a Discourse starter category is configured, anything else through ``default``."""

    name = "routing"

    def __init__(self, default: Publisher, connectors: Mapping[str, Connector], *,
                 starters_to: str | None = None) -> None:
        self.default = default
        self.connectors = dict(connectors)
        self.starters_to = starters_to if starters_to in self.connectors else None

    def post(self, message: OutgoingMessage) -> PostReceipt:
        # The platform is the prefix of the conversation key ("chatwoot:1:42" -> chatwoot).
        platform = (message.conversation or "").partition(":")[0]
        if message.kind == "starter" and not message.conversation and self.starters_to is not None:
            platform = self.starters_to
        connector = self.connectors.get(platform)
        if connector is not None:
            return connector.post(message)
        if platform in CONNECTORS:  # kept failed, and retried once the connector is configured again
            raise PublishError(f"item {message.item_id} answers a {platform} conversation, but no {platform} "
                               f"connector is configured (see docs/connectors/{platform}.md)")
        return self.default.post(message)

    def close(self) -> None:
        self.default.close()
        for connector in self.connectors.values():
            connector.close()


def build_routing_publisher(settings: Settings) -> Publisher:
    """The configured publisher, with every configured connector answering its own conversations."""
    starters = "discourse" if settings.discourse_starter_category is not None else None
    return RoutingPublisher(build_publisher(settings), build_connectors(settings), starters_to=starters)
