"""Chatwoot: an account webhook's ``message_created`` in, the draft as a private note, the approved reply out.

Checked against Chatwoot's own source and API schema (chatwoot/chatwoot):

- Signature: account webhooks carry ``X-Chatwoot-Timestamp`` (unix seconds), ``X-Chatwoot-Signature:
  sha256=<hex HMAC-SHA256 of "{timestamp}.{raw body}">`` keyed with the webhook's own secret, and
  ``X-Chatwoot-Delivery`` (a UUID kept across Sidekiq retries). Source: the webhook schema's ``secret``
  field in Chatwoot's swagger ("the signature is ``sha256=`` followed by the HMAC-SHA256 of
  ``{timestamp}.{raw_request_body}``"), PR #13573 "add per-webhook secret" (shipped in v4.11.2) and the
  maintainers' summary in issue #13862. Older Chatwoot sends no signature at all: this connector refuses it.
- Payload: ``Message#webhook_data`` (app/models/message.rb) merged with ``event: "message_created"``:
  ``id``, ``content``, ``message_type`` ("incoming", "outgoing", "activity", "template"), ``private``,
  ``content_attributes``, ``sender`` (``webhook_data`` of a Contact ``type: "contact"``, a User ``type: "user"``
  or an AgentBot), ``inbox {id, name}``, ``account {id, name}`` and ``conversation``, which is
  ``Conversations::EventDataPresenter#push_data``: ``id`` there is the conversation's **display_id**,
  with ``inbox_id`` and ``channel`` (the inbox's channel type, e.g. ``Channel::Email``).
- Messages API: ``POST /api/v1/accounts/{account}/conversations/{conversation}/messages`` with header
  ``api_access_token``; the conversation in the path is the **display_id**
  (``Conversations::BaseController#find_conversation``: ``find_by!(display_id: params[:conversation_id])``).
  ``Messages::MessageBuilder`` takes ``content``, ``message_type``, ``private`` and a ``content_attributes``
  hash, which is stored; ``echo_id`` is only echoed back, never stored. The create answer and
  ``GET .../messages`` (``MessageFinder``: the latest 20, oldest first, under ``payload``) show each message's
  ``id`` and ``content_attributes``.

Exactly once: the approved reply carries the queue's key in ``content_attributes.copilot_idempotency_key``;
before posting, and after an attempt whose outcome is unknown, the conversation's latest messages are read and
a reply with that key is returned as a duplicate (see ``connectors.http``).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import httpx

from copilot.config import Settings
from copilot.connectors.base import PlatformEvent, WebhookRejected
from copilot.connectors.http import PlatformClient, json_object, lower_keys
from copilot.errors import ConfigError
from copilot.queue.publish import OutgoingMessage, PostReceipt, PublishError
from copilot.types import Inbound

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "x-chatwoot-signature"
TIMESTAMP_HEADER = "x-chatwoot-timestamp"
DELIVERY_HEADER = "x-chatwoot-delivery"
KEY_ATTRIBUTE = "copilot_idempotency_key"  # in content_attributes of the replies we post
# The inbox's channel type -> the channel style a reply is fitted to; anything else is a chat.
CHANNELS = {
    "Channel::Email": "email",
    "Channel::FacebookPage": "facebook",
    "Channel::Instagram": "instagram",
    "Channel::TwitterProfile": "twitter",
}
STAFF_SENDERS = {"user", "agent_bot"}  # agents and bots: never a customer


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Chatwoot-Signature`` value for a body sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class ChatwootConnector:
    """One Chatwoot account: its webhook, its private notes and its public replies."""

    name = "chatwoot"

    def __init__(
        self,
        url: str,
        account_id: int,
        api_token: str,
        webhook_secret: str,
        *,
        max_age_s: float = 300.0,
        timeout_s: float = 10.0,
        retries: int = 3,
        backoff_s: float = 0.5,
        own_sender_ids: Iterable[int] = (),
        client: httpx.Client | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        missing = [name for name, value in (("COPILOT_CHATWOOT_URL", url), ("COPILOT_CHATWOOT_ACCOUNT_ID",
                   account_id), ("COPILOT_CHATWOOT_API_TOKEN", api_token), ("COPILOT_CHATWOOT_WEBHOOK_SECRET",
                   webhook_secret)) if not value]
        if missing:
            raise ConfigError(f"the Chatwoot connector needs {', '.join(missing)} (see docs/connectors/chatwoot.md)")
        self.account_id = int(account_id)
        self.max_age_s = max_age_s
        self.own_sender_ids = {int(i) for i in own_sender_ids}
        self._secret = webhook_secret
        self._clock = clock
        self._posted: set[str] = set()  # ids of the messages we made, so their webhooks are ignored
        self.api = PlatformClient(
            self.name, url, {"api_access_token": api_token}, timeout_s=timeout_s, retries=retries,
            backoff_s=backoff_s, client=client, sleep=sleep, clock=clock,
        )

    @classmethod
    def from_settings(cls, settings: Settings, *, client: httpx.Client | None = None,
                      clock: Callable[[], float] = time.time,
                      sleep: Callable[[float], None] = time.sleep) -> ChatwootConnector:
        """The connector the ``COPILOT_CHATWOOT_*`` settings describe."""
        return cls(
            settings.chatwoot_url or "", settings.chatwoot_account_id or 0, settings.chatwoot_api_token or "",
            settings.chatwoot_webhook_secret or "", max_age_s=settings.webhook_max_age_s,
            timeout_s=settings.connector_timeout_s, retries=settings.connector_retries,
            backoff_s=settings.connector_backoff_s, client=client, clock=clock, sleep=sleep,
        )

    # Webhooks in

    def parse(self, headers: Mapping[str, str], body: bytes) -> list[PlatformEvent]:
        found = lower_keys(headers)
        self._verify(found, body)
        data = json_object(body)
        if data.get("event") != "message_created":
            return []
        message = _message(data)
        if message is None or self._is_own(message["id"], message["sender"]):
            return []
        if message["account"] != self.account_id:
            log.warning("chatwoot: ignored a message of account %s (configured: %s)", message["account"],
                        self.account_id)
            return []
        inbound = Inbound(
            text=message["content"], channel=message["channel"], author=message["author"],
            id=message["id"], conversation=f"chatwoot:{message['account']}:{message['conversation']}",
        )
        return [PlatformEvent(inbound, found.get(DELIVERY_HEADER) or message["id"])]

    def _verify(self, headers: Mapping[str, str], body: bytes) -> None:
        signature = headers.get(SIGNATURE_HEADER, "")
        timestamp = headers.get(TIMESTAMP_HEADER, "")
        if not signature or not timestamp:
            raise WebhookRejected(401, "missing X-Chatwoot-Signature or X-Chatwoot-Timestamp")
        try:
            age = self._clock() - int(timestamp)
        except ValueError:
            raise WebhookRejected(401, "X-Chatwoot-Timestamp is not a unix time") from None
        if abs(age) > self.max_age_s:
            raise WebhookRejected(401, f"stale webhook: its timestamp is {age:.0f} s away from now")
        if not hmac.compare_digest(sign(self._secret, timestamp, body).encode(), signature.encode()):
            raise WebhookRejected(401, "wrong X-Chatwoot-Signature")

    def _is_own(self, message_id: str, sender: Mapping[str, Any]) -> bool:
        if message_id in self._posted or sender.get("type") in STAFF_SENDERS:
            return True
        return isinstance(sender.get("id"), int) and sender["id"] in self.own_sender_ids

    # Posts out

    def post_note(self, inbound: Inbound, text: str) -> None:
        """The draft as a private note in the conversation (only agents see it)."""
        account, conversation = self._target(inbound.conversation)
        data = self.api.post_json(_messages_path(account, conversation),
                                  {"content": text, "message_type": "outgoing", "private": True})
        self._remember(data)

    def post(self, message: OutgoingMessage) -> PostReceipt:
        """The approved reply, public in its conversation, once per idempotency key."""
        account, conversation = self._target(message.conversation)
        path = _messages_path(account, conversation)
        payload = {"content": message.text, "message_type": "outgoing", "private": False,
                   "content_attributes": {KEY_ATTRIBUTE: message.idempotency_key}}
        receipt, data = self.api.post_once(
            path, payload, find=lambda: self._find(path, message.idempotency_key), id_of=_id_of)
        self._remember(data)
        return receipt

    def _find(self, path: str, key: str) -> str | None:
        """The id of the reply already posted with ``key`` among the conversation's latest messages."""
        data = self.api.get_json(path)
        for item in (data.get("payload") or []) if isinstance(data, dict) else []:
            attributes = item.get("content_attributes") if isinstance(item, dict) else None
            if isinstance(attributes, dict) and attributes.get(KEY_ATTRIBUTE) == key:
                return str(item.get("id"))
        return None

    def _target(self, conversation: str | None) -> tuple[int, str]:
        platform, _, rest = (conversation or "").partition(":")
        account, _, number = rest.partition(":")
        if platform != self.name or not account.isdigit() or not number:
            raise PublishError(f"{conversation!r} is not a Chatwoot conversation (chatwoot:<account>:<id>)")
        if int(account) != self.account_id:
            raise PublishError(f"{conversation!r} belongs to Chatwoot account {account}, this connector "
                               f"posts to account {self.account_id}")
        return int(account), number

    def _remember(self, data: Any) -> None:
        found = _id_of(data)
        if found is not None:
            self._posted.add(found)

    def close(self) -> None:
        self.api.close()


def _messages_path(account: int, conversation: str) -> str:
    return f"/api/v1/accounts/{account}/conversations/{conversation}/messages"


def _id_of(data: Any) -> str | None:
    value = data.get("id") if isinstance(data, dict) else None
    return None if value is None else str(value)


def _message(data: Mapping[str, Any]) -> dict[str, Any] | None:
    """The fields of a customer's message, or None for one to ignore; ``WebhookRejected(400)`` if malformed."""
    conversation = data.get("conversation")
    account = data.get("account")
    sender = data.get("sender") or {}
    if data.get("id") is None or not isinstance(conversation, dict) or not isinstance(sender, dict):
        raise WebhookRejected(400, "message_created without id, conversation or sender")
    number = conversation.get("display_id", conversation.get("id"))
    account_id = account.get("id") if isinstance(account, dict) else data.get("account_id")
    if number is None or not isinstance(account_id, int):
        raise WebhookRejected(400, "message_created without the conversation's id or the account's id")
    # Only a customer's public message: never outgoing replies, notes, activity lines or our own posts.
    if data.get("message_type") not in ("incoming", 0) or data.get("private"):
        return None
    content = data.get("content")
    if not isinstance(content, str) or not content.strip():
        return None  # an attachment without text: nothing to draft from
    inbox = data["inbox"] if isinstance(data.get("inbox"), dict) else {}
    channel_type = conversation.get("channel") or inbox.get("channel_type") or ""
    author = sender.get("name") or sender.get("email") or sender.get("phone_number") or sender.get("identifier")
    return {
        "id": str(data["id"]), "content": content, "account": account_id, "conversation": str(number),
        "channel": CHANNELS.get(str(channel_type), "chat"), "author": str(author) if author else None,
        "sender": sender,
    }
