"""Discourse: the ``post_created`` webhook in, the draft as a staff whisper, the approved reply as a post.

Checked against Discourse's own source (discourse/discourse):

- Webhook (app/jobs/regular/emit_web_hook_event.rb): headers ``X-Discourse-Event`` (the event name,
  ``post_created``, ``ping``), ``X-Discourse-Event-Type`` (``post``), ``X-Discourse-Event-Id`` (the id of
  the ``WebHookEvent`` row; a retried delivery is a new row, so the post id is the dependable key for a
  redelivery) and ``X-Discourse-Event-Signature: sha256=<hex HMAC-SHA256 of the raw body>`` keyed with the
  webhook's secret. No timestamp is signed, so there is no age to check; a replay is a redelivery and is
  recognised by the post id. The body is ``{"<event type>": payload}``, a ping ``{"ping": "OK"}``.
- Payload (app/serializers/web_hook_post_serializer.rb, a ``PostSerializer``): ``id``, ``username``,
  ``user_id``, ``raw``, ``cooked``, ``post_number``, ``post_type`` (1 regular, 2 moderator action, 3 small
  action, 4 whisper), ``topic_id``, ``topic_title``, ``reply_to_post_number``, ``topic_archetype``...
- Creating posts (app/controllers/posts_controller.rb, ``create_params``): ``POST /posts.json`` with the
  ``Api-Key`` and ``Api-Username`` headers, ``topic_id`` and ``raw`` for a reply (``reply_to_post_number``
  optional), ``title``, ``raw`` and ``category`` for a new topic, and, over the API, ``external_id``.
  A whisper is ``whisper``: current Discourse casts it as a boolean and refuses it unless the user may
  whisper (403 ``invalid_whisper_access``); older releases compared it with the string ``"true"`` and made a
  *public* post otherwise. So the connector sends ``"whisper": "true"`` (right for both) and checks that the
  post made is a whisper (``post_type`` 4), deleting it at once if it is not.
- Reading back: ``GET /t/{topic}/{post_number}.json?include_raw=true`` (``TopicsController#show``; a post
  number past the end loads the last page, ``TopicView#filter_posts_near``) lists the latest posts with their
  ``raw``; ``GET /t/external_id/{id}.json`` (``topics#show_by_external_id``) finds a topic by its external id.

Exactly once: a reply's raw ends with an HTML comment holding the queue's key (a comment is never displayed,
so readers do not see it); before posting, and after an attempt whose outcome is unknown, the topic's latest posts are
searched for it. A discussion starter is a topic whose ``external_id`` is derived from the key.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from copilot.config import Settings
from copilot.connectors.base import PlatformEvent, WebhookRejected
from copilot.connectors.http import PlatformClient, json_object, lower_keys
from copilot.errors import ConfigError
from copilot.queue.publish import OutgoingMessage, PostReceipt, PublishError
from copilot.types import Inbound

SIGNATURE_HEADER = "x-discourse-event-signature"
EVENT_HEADER = "x-discourse-event"
EVENT_ID_HEADER = "x-discourse-event-id"
REGULAR, WHISPER = 1, 4  # Post.types
LAST_PAGE = 99_999_999  # a post number past the end of any topic: TopicView loads the last posts


def sign(secret: str, body: bytes) -> str:
    """The ``X-Discourse-Event-Signature`` value for a body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def safe_key(key: str) -> str:
    """The key as Discourse takes it in an external id and an HTML comment: word characters and dashes, 50 at most."""
    return key if re.fullmatch(r"[\w-]{1,50}", key) else "h-" + hashlib.sha256(key.encode()).hexdigest()[:40]


def marker(key: str) -> str:
    """The HTML comment that carries an idempotency key in a post's raw."""
    return f"<!-- copilot-key: {safe_key(key)} -->"


class DiscourseConnector:
    """One Discourse forum: its webhook, staff whispers, public replies and new topics."""

    name = "discourse"

    def __init__(
        self,
        url: str,
        api_key: str,
        api_username: str,
        webhook_secret: str,
        *,
        starter_category: int | None = None,
        timeout_s: float = 10.0,
        retries: int = 3,
        backoff_s: float = 0.5,
        client: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        missing = [name for name, value in (("COPILOT_DISCOURSE_URL", url), ("COPILOT_DISCOURSE_API_KEY", api_key),
                   ("COPILOT_DISCOURSE_API_USERNAME", api_username), ("COPILOT_DISCOURSE_WEBHOOK_SECRET",
                   webhook_secret)) if not value]
        if missing:
            raise ConfigError(f"the Discourse connector needs {', '.join(missing)} "
                              "(see docs/connectors/discourse.md)")
        self.api_username = api_username
        self.starter_category = starter_category
        self._secret = webhook_secret
        self.api = PlatformClient(
            self.name, url, {"Api-Key": api_key, "Api-Username": api_username}, timeout_s=timeout_s,
            retries=retries, backoff_s=backoff_s, client=client, sleep=sleep,
        )

    @classmethod
    def from_settings(cls, settings: Settings, *, client: httpx.Client | None = None,
                      sleep: Callable[[float], None] = time.sleep) -> DiscourseConnector:
        """The connector the ``COPILOT_DISCOURSE_*`` settings describe."""
        return cls(
            settings.discourse_url or "", settings.discourse_api_key or "", settings.discourse_api_username or "",
            settings.discourse_webhook_secret or "", starter_category=settings.discourse_starter_category,
            timeout_s=settings.connector_timeout_s, retries=settings.connector_retries,
            backoff_s=settings.connector_backoff_s, client=client, sleep=sleep,
        )

    # Webhooks in

    def parse(self, headers: Mapping[str, str], body: bytes) -> list[PlatformEvent]:
        found = lower_keys(headers)
        signature = found.get(SIGNATURE_HEADER, "")
        if not signature:
            raise WebhookRejected(401, "missing X-Discourse-Event-Signature")
        if not hmac.compare_digest(sign(self._secret, body).encode(), signature.encode()):
            raise WebhookRejected(401, "wrong X-Discourse-Event-Signature")
        data = json_object(body)
        if found.get(EVENT_HEADER) != "post_created" or "ping" in data:
            return []
        post = data.get("post")
        if not isinstance(post, dict) or not isinstance(post.get("id"), int) \
                or not isinstance(post.get("topic_id"), int) or not isinstance(post.get("username"), str):
            raise WebhookRejected(400, "post_created without post.id, post.topic_id or post.username")
        if post["username"].lower() == self.api_username.lower() or post.get("post_type", REGULAR) != REGULAR:
            return []  # our own posts, whispers, moderator and small-action posts
        user_id = post.get("user_id")
        if isinstance(user_id, int) and user_id <= 0:
            return []  # system and bots (negative ids)
        raw = post.get("raw")
        if not isinstance(raw, str) or not raw.strip():
            raise WebhookRejected(400, "post_created without post.raw")
        inbound = Inbound(text=raw, channel="forum", author=post["username"], id=str(post["id"]),
                          conversation=f"discourse:topic:{post['topic_id']}")
        return [PlatformEvent(inbound, found.get(EVENT_ID_HEADER) or str(post["id"]))]

    # Posts out

    def post_note(self, inbound: Inbound, text: str) -> None:
        """The draft as a staff whisper in the topic (only staff see it)."""
        topic = self._topic(inbound.conversation)
        data = self.api.post_json("/posts.json", {"topic_id": topic, "raw": text, "whisper": "true"})
        if isinstance(data, dict) and data.get("post_type") != WHISPER:
            if data.get("id") is not None:
                self.api.delete(f"/posts/{data['id']}.json")
            raise PublishError(f"Discourse made a post of type {data.get('post_type')} instead of a whisper, "
                               "and it was deleted: the API user must be staff and whispers must be on")

    def post(self, message: OutgoingMessage) -> PostReceipt:
        """The approved reply in its topic (a discussion starter as a new topic), once per idempotency key."""
        if message.kind == "starter" and not message.conversation:
            title, _, body = message.text.strip().partition("\n")
            return self.post_starter(title.strip("# ").strip(), body.strip() or title,
                                     idempotency_key=message.idempotency_key)
        topic = self._topic(message.conversation)
        tag = marker(message.idempotency_key)
        recent: dict[str, int] = {}  # post id -> post number, from the check before posting

        def find() -> str | None:
            posts = self._latest_posts(topic)
            recent.update({str(p["id"]): p["post_number"] for p in posts if isinstance(p.get("post_number"), int)})
            return next((str(p["id"]) for p in posts if tag in str(p.get("raw") or "")), None)

        def payload() -> dict[str, Any]:
            body: dict[str, Any] = {"topic_id": topic, "raw": f"{message.text}\n\n{tag}"}
            number = recent.get(message.in_reply_to or "")
            if isinstance(number, int) and number > 1:  # replying to the first post is replying to the topic
                body["reply_to_post_number"] = number
            return body

        found = find()
        if found is not None:
            return PostReceipt(external_id=found, duplicate=True)
        receipt, _ = self.api.post_once("/posts.json", payload(), find=find, id_of=_id_of, check_first=False)
        return receipt

    def post_starter(self, title: str, raw: str, *, idempotency_key: str) -> PostReceipt:
        """An approved discussion starter as a new topic in the starter category, once per key."""
        if self.starter_category is None:
            raise PublishError("no category for discussion starters: set COPILOT_DISCOURSE_STARTER_CATEGORY")
        external_id = safe_key(idempotency_key)

        def find() -> str | None:
            topic = self.api.get_json(f"/t/external_id/{external_id}.json", missing_ok=True)
            posts = ((topic or {}).get("post_stream") or {}).get("posts") or []
            return str(posts[0]["id"]) if posts else (str(topic["id"]) if topic else None)

        payload = {"title": title, "raw": f"{raw}\n\n{marker(idempotency_key)}",
                   "category": self.starter_category, "external_id": external_id}
        receipt, _ = self.api.post_once("/posts.json", payload, find=find, id_of=_id_of)
        return receipt

    def _latest_posts(self, topic: int) -> list[dict[str, Any]]:
        data = self.api.get_json(f"/t/{topic}/{LAST_PAGE}.json", {"include_raw": "true"})
        posts = ((data or {}).get("post_stream") or {}).get("posts") if isinstance(data, dict) else None
        return [p for p in posts or [] if isinstance(p, dict) and "id" in p]

    def _topic(self, conversation: str | None) -> int:
        platform, _, rest = (conversation or "").partition(":")
        kind, _, topic = rest.partition(":")
        if platform != self.name or kind != "topic" or not topic.isdigit():
            raise PublishError(f"{conversation!r} is not a Discourse topic (discourse:topic:<id>)")
        return int(topic)

    def close(self) -> None:
        self.api.close()


def _id_of(data: Any) -> str | None:
    value = data.get("id") if isinstance(data, dict) else None
    return None if value is None else str(value)
