"""A stateful fake Chatwoot: one account, its conversations and messages, the messages API and signed webhooks.

Built from Chatwoot's source: ``Message#webhook_data`` for the ``message_created`` payload (the conversation
part is ``Conversations::EventDataPresenter#push_data``, whose ``id`` is the display id), the
``api/v1/models/message`` partial for the API's messages (``message_type`` as its number: 0 incoming,
1 outgoing, 2 activity), ``MessageFinder`` (the latest 20, oldest first) and the webhook signature:
``X-Chatwoot-Signature: sha256=HMAC-SHA256(secret, "{X-Chatwoot-Timestamp}.{body}")`` with
``X-Chatwoot-Delivery`` kept across redeliveries.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from .server import Answer, FakeServer, Request

MESSAGE_TYPES = {"incoming": 0, "outgoing": 1, "activity": 2, "template": 3}
_MESSAGES = re.compile(r"^/api/v1/accounts/(\d+)/conversations/(\d+)/messages$")


@dataclass(frozen=True)
class Delivery:
    """One webhook delivery as sent: redelivering it keeps the body and the delivery id."""

    body: bytes
    delivery_id: str


@dataclass
class Conversation:
    id: int  # the database id
    display_id: int
    inbox_id: int
    channel: str
    contact: dict[str, Any]
    messages: list[dict[str, Any]] = field(default_factory=list)


class FakeChatwoot(FakeServer):
    """Answers the messages API like Chatwoot and sends its webhooks."""

    def __init__(self, *, account_id: int = 1, api_token: str = "cw-token", webhook_secret: str = "cw-secret",
                 agent: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.account_id = account_id
        self.api_token = api_token
        self.webhook_secret = webhook_secret
        self.agent = agent or {"id": 7, "name": "Copilot Bot", "email": "bot@example.com", "type": "user"}
        self.conversations: dict[int, Conversation] = {}
        self._ids = itertools.count(1001)
        self._conversation_ids = itertools.count(501)

    # State

    def open_conversation(self, display_id: int, *, channel: str = "Channel::WebWidget",
                          contact: dict[str, Any] | None = None) -> Conversation:
        with self.lock:
            found = Conversation(next(self._conversation_ids), display_id, 3, channel,
                                 contact or {"id": 42, "name": "Sam Lee", "email": "sam@example.com",
                                             "type": "contact"})
            self.conversations[display_id] = found
            return found

    def customer_says(self, display_id: int, content: str) -> dict[str, Any]:
        """An incoming message from the conversation's contact; returns it (as stored)."""
        with self.lock:
            conversation = self.conversations.get(display_id) or self.open_conversation(display_id)
            return self._store(conversation, content, "incoming", False, {}, conversation.contact)

    def messages(self, display_id: int) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.conversations[display_id].messages)

    def notes(self, display_id: int) -> list[dict[str, Any]]:
        """The private notes in a conversation."""
        return [m for m in self.messages(display_id) if m["private"]]

    def replies(self, display_id: int) -> list[dict[str, Any]]:
        """The public outgoing messages (what the customer sees from us)."""
        return [m for m in self.messages(display_id) if m["message_type"] == "outgoing" and not m["private"]]

    def _store(self, conversation: Conversation, content: str, message_type: str, private: bool,
               content_attributes: dict[str, Any], sender: dict[str, Any]) -> dict[str, Any]:
        message = {
            "id": next(self._ids), "content": content, "message_type": message_type, "private": private,
            "content_type": "text", "content_attributes": content_attributes, "sender": sender,
            "created_at": int(time.time()), "conversation": conversation, "source_id": None,
        }
        conversation.messages.append(message)
        return message

    # The API

    def handle(self, request: Request) -> Answer:
        match = _MESSAGES.match(request.path)
        if match is None:
            return 404, {"error": "Resource could not be found"}
        if request.headers.get("api_access_token") != self.api_token:
            return 401, {"errors": ["You need to sign in or sign up before continuing."]}
        account, display_id = int(match.group(1)), int(match.group(2))
        conversation = self.conversations.get(display_id)
        if account != self.account_id or conversation is None:
            return 404, {"error": "Resource could not be found"}
        if request.method == "GET":
            latest = conversation.messages[-20:]
            return 200, {"meta": {"labels": [], "contact": conversation.contact},
                         "payload": [self._api_message(m) for m in latest]}
        if request.method != "POST":
            return 404, {"error": "Resource could not be found"}
        params = request.json() or {}
        attributes = params.get("content_attributes") or {}
        message = self._store(conversation, str(params.get("content") or ""), params.get("message_type") or "outgoing",
                              bool(params.get("private")), attributes if isinstance(attributes, dict) else {},
                              self.agent)
        answer = self._api_message(message)
        if params.get("echo_id"):
            answer["echo_id"] = params["echo_id"]
        return 200, answer

    @staticmethod
    def _api_message(message: dict[str, Any]) -> dict[str, Any]:
        conversation: Conversation = message["conversation"]
        return {
            "id": message["id"], "content": message["content"], "inbox_id": conversation.inbox_id,
            "conversation_id": conversation.display_id, "message_type": MESSAGE_TYPES[message["message_type"]],
            "content_type": message["content_type"], "content_attributes": message["content_attributes"],
            "created_at": message["created_at"], "private": message["private"], "source_id": None,
            "sender": {k: v for k, v in message["sender"].items() if k != "email"},
        }

    # Webhooks

    def webhook_payload(self, message: dict[str, Any]) -> dict[str, Any]:
        """``message_created`` for a stored message, as ``Message#webhook_data`` builds it."""
        conversation: Conversation = message["conversation"]
        return {
            "event": "message_created",
            "account": {"id": self.account_id, "name": "Lumio"},
            "additional_attributes": {},
            "content_attributes": message["content_attributes"],
            "content_type": "text",
            "content": message["content"],
            "conversation": {
                "additional_attributes": {}, "can_reply": True, "channel": conversation.channel,
                "contact_inbox": {"source_id": "c0ffee"}, "id": conversation.display_id,
                "inbox_id": conversation.inbox_id, "labels": [], "status": "open", "unread_count": 1,
                "meta": {"sender": conversation.contact, "assignee": None}, "created_at": int(time.time()),
            },
            "created_at": "2026-01-05T10:00:00.000Z",
            "id": message["id"],
            "inbox": {"id": conversation.inbox_id, "name": "Support"},
            "message_type": message["message_type"],
            "private": message["private"],
            "sender": message["sender"],
            "source_id": None,
        }

    def signed(self, body: bytes, *, delivery_id: str | None = None, timestamp: int | None = None,
               secret: str | None = None) -> dict[str, str]:
        """The headers Chatwoot sends with ``body``."""
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        mac = hmac.new((secret or self.webhook_secret).encode(), stamp.encode() + b"." + body, hashlib.sha256)
        return {"Content-Type": "application/json", "X-Chatwoot-Timestamp": stamp,
                "X-Chatwoot-Signature": "sha256=" + mac.hexdigest(),
                "X-Chatwoot-Delivery": delivery_id or str(uuid.uuid4())}

    def deliver(self, url: str, message: dict[str, Any], *, secret: str | None = None,
                timestamp: int | None = None) -> tuple[Delivery, httpx.Response]:
        """POST ``message_created`` for ``message`` to ``url``, signed (with ``secret`` to sign wrongly)."""
        delivery = Delivery(json.dumps(self.webhook_payload(message)).encode(), str(uuid.uuid4()))
        return delivery, self.redeliver(url, delivery, secret=secret, timestamp=timestamp)

    def redeliver(self, url: str, delivery: Delivery, *, secret: str | None = None,
                  timestamp: int | None = None) -> httpx.Response:
        """Send a delivery again, as a Sidekiq retry does: same body and delivery id, signed anew."""
        headers = self.signed(delivery.body, delivery_id=delivery.delivery_id, timestamp=timestamp, secret=secret)
        return httpx.post(url, content=delivery.body, headers=headers, timeout=5.0)
