"""A stateful fake Discourse: topics and posts, ``POST /posts.json``, the topic reads, and signed webhooks.

Built from Discourse's source: ``PostsController#create_params`` (``whisper`` cast as a boolean and refused
with 403 when the user may not whisper; ``legacy_whisper=True`` behaves like releases that compared it with
the string ``"true"`` and otherwise made a public post), ``TopicsController#show`` with ``include_raw``
(a post number past the end gives the last posts), ``topics#show_by_external_id``,
``WebHookPostSerializer`` for the payload and ``Jobs::EmitWebHookEvent`` for the headers:
``X-Discourse-Event``, ``X-Discourse-Event-Type``, ``X-Discourse-Event-Id`` (a new id on every send) and
``X-Discourse-Event-Signature: sha256=HMAC-SHA256(secret, body)``.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
from dataclasses import dataclass, field
from typing import Any

import httpx

from .server import Answer, FakeServer, Request

REGULAR, WHISPER = 1, 4
_TOPIC_AT = re.compile(r"^/t/(\d+)/(\d+)\.json$")
_EXTERNAL = re.compile(r"^/t/external_id/([\w-]+)\.json$")
_POST = re.compile(r"^/posts/(\d+)\.json$")
NOT_FOUND = {"errors": ["The requested URL or resource could not be found."], "error_type": "not_found"}
_TRUE = {True, "true", "1", "t", "on"}


@dataclass
class Topic:
    id: int
    title: str
    category_id: int
    external_id: str | None = None
    posts: list[dict[str, Any]] = field(default_factory=list)


class FakeDiscourse(FakeServer):
    """Answers the posts and topics API like Discourse and sends its webhooks."""

    def __init__(self, *, api_key: str = "dc-key", api_username: str = "copilot",
                 webhook_secret: str = "dc-secret", staff: bool = True, legacy_whisper: bool = False) -> None:
        super().__init__()
        self.api_key = api_key
        self.api_username = api_username
        self.webhook_secret = webhook_secret
        self.staff = staff
        self.legacy_whisper = legacy_whisper
        self.topics: dict[int, Topic] = {}
        self._post_ids = itertools.count(9001)
        self._topic_ids = itertools.count(301)
        self._event_ids = itertools.count(1)

    # State

    def open_topic(self, title: str = "Bulb blinks amber", *, category_id: int = 5, author: str = "sam",
                   raw: str = "My bulb blinks amber after the update.") -> dict[str, Any]:
        """A member's new topic; returns its first post."""
        with self.lock:
            topic = Topic(next(self._topic_ids), title, category_id)
            self.topics[topic.id] = topic
            return self._store(topic, raw, author, REGULAR, None)

    def member_posts(self, topic_id: int, raw: str, *, author: str = "sam", post_type: int = REGULAR,
                     user_id: int = 12) -> dict[str, Any]:
        with self.lock:
            return self._store(self.topics[topic_id], raw, author, post_type, None, user_id=user_id)

    def posts(self, topic_id: int) -> list[dict[str, Any]]:
        with self.lock:
            return [p for p in self.topics[topic_id].posts if not p.get("deleted")]

    def whispers(self, topic_id: int) -> list[dict[str, Any]]:
        return [p for p in self.posts(topic_id) if p["post_type"] == WHISPER]

    def replies(self, topic_id: int) -> list[dict[str, Any]]:
        """Our public posts in a topic."""
        return [p for p in self.posts(topic_id)
                if p["post_type"] == REGULAR and p["username"] == self.api_username]

    def _store(self, topic: Topic, raw: str, username: str, post_type: int, reply_to: int | None, *,
               user_id: int = 12) -> dict[str, Any]:
        post = {
            "id": next(self._post_ids), "username": username, "name": username.title(), "user_id": user_id,
            "raw": raw, "cooked": f"<p>{re.sub(r'<!--.*?-->', '', raw).strip()}</p>",
            "post_number": len(topic.posts) + 1, "post_type": post_type, "topic_id": topic.id,
            "topic_title": topic.title, "topic_slug": topic.title.lower().replace(" ", "-"),
            "category_id": topic.category_id, "reply_to_post_number": reply_to,
            "created_at": "2026-01-05T10:00:00.000Z", "topic_archetype": "regular",
        }
        topic.posts.append(post)
        return post

    # The API

    def handle(self, request: Request) -> Answer:
        if request.headers.get("api-key") != self.api_key or request.headers.get("api-username") != self.api_username:
            return 403, {"errors": ["You are not permitted to view the requested resource."],
                         "error_type": "invalid_access"}
        if request.method == "POST" and request.path == "/posts.json":
            return self._create(request.json() or {})
        if request.method == "GET" and (match := _TOPIC_AT.match(request.path)):
            topic = self.topics.get(int(match.group(1)))
            if topic is None:
                return 404, NOT_FOUND
            return 200, self._topic_view(topic, int(match.group(2)), bool(request.query.get("include_raw")))
        if request.method == "GET" and (match := _EXTERNAL.match(request.path)):
            found = next((t for t in self.topics.values() if t.external_id == match.group(1)), None)
            return (404, NOT_FOUND) if found is None else (200, self._topic_view(found, 1, False))
        if request.method == "DELETE" and (match := _POST.match(request.path)):
            for topic in self.topics.values():
                for post in topic.posts:
                    if post["id"] == int(match.group(1)):
                        post["deleted"] = True
                        return 200, {}
            return 404, NOT_FOUND
        return 404, NOT_FOUND

    def _create(self, params: dict[str, Any]) -> Answer:
        raw = params.get("raw")
        if not isinstance(raw, str) or not raw:
            return 400, {"errors": ["param is missing or the value is empty: raw"]}
        whisper = params.get("whisper") == "true" if self.legacy_whisper else params.get("whisper") in _TRUE
        if whisper and not self.legacy_whisper and not self.staff:
            return 403, {"errors": ["invalid_whisper_access"], "error_type": "invalid_access"}
        post_type = WHISPER if whisper and self.staff else REGULAR
        if "topic_id" in params:
            topic = self.topics.get(int(params["topic_id"]))
            if topic is None:
                return 404, NOT_FOUND
            post = self._store(topic, raw, self.api_username, post_type, params.get("reply_to_post_number"))
            return 200, dict(post)
        external_id = params.get("external_id")
        if external_id and any(t.external_id == external_id for t in self.topics.values()):
            return 422, {"errors": ["External ID has already been taken"], "error_type": "invalid_parameters"}
        topic = Topic(next(self._topic_ids), str(params.get("title") or ""), int(params.get("category") or 1),
                      external_id)
        self.topics[topic.id] = topic
        return 200, dict(self._store(topic, raw, self.api_username, REGULAR, None))

    def _topic_view(self, topic: Topic, post_number: int, include_raw: bool) -> dict[str, Any]:
        visible = [p for p in topic.posts if not p.get("deleted") and (self.staff or p["post_type"] != WHISPER)]
        near = [p for p in visible if p["post_number"] >= post_number] or visible[-20:]
        page = near[:20]
        return {
            "id": topic.id, "title": topic.title, "category_id": topic.category_id,
            "external_id": topic.external_id, "highest_post_number": len(topic.posts),
            "post_stream": {"posts": [{k: v for k, v in p.items() if include_raw or k != "raw"} for p in page]},
        }

    # Webhooks

    def webhook_body(self, post: dict[str, Any]) -> bytes:
        """The ``post_created`` body for a stored post (``WebHookPostSerializer`` under ``"post"``)."""
        with self.lock:
            posts = self.topics[post["topic_id"]].posts
            payload = {**post, "topic_posts_count": len(posts),
                       "topic_filtered_posts_count": sum(p["post_type"] == REGULAR for p in posts)}
        return json.dumps({"post": payload}).encode()

    def signed(self, body: bytes, *, event: str = "post_created", secret: str | None = None) -> dict[str, str]:
        """The headers Discourse sends; every send is a new event id, as in ``EmitWebHookEvent``."""
        mac = hmac.new((secret or self.webhook_secret).encode(), body, hashlib.sha256)
        return {"Content-Type": "application/json", "X-Discourse-Instance": self.url,
                "X-Discourse-Event-Id": str(next(self._event_ids)),
                "X-Discourse-Event-Type": "ping" if event == "ping" else "post",
                "X-Discourse-Event": event, "X-Discourse-Event-Signature": "sha256=" + mac.hexdigest()}

    def deliver(self, url: str, post: dict[str, Any], *, secret: str | None = None) -> httpx.Response:
        """POST ``post_created`` for ``post`` to ``url`` (again: a redelivery, with a new event id)."""
        body = self.webhook_body(post)
        return httpx.post(url, content=body, headers=self.signed(body, secret=secret), timeout=5.0)

    def ping(self, url: str) -> httpx.Response:
        body = json.dumps({"ping": "OK"}).encode()
        return httpx.post(url, content=body, headers=self.signed(body, event="ping"), timeout=5.0)
