"""The request bodies of the API, validated at the boundary (unknown fields are refused with 422)."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field, field_validator

from copilot.config import Channel
from copilot.types import Inbound

MAX_TEXT = 20_000  # characters of a message or a reply; the body size limit bounds the request as a whole


class Strict(BaseModel):
    """A request body: unknown fields are an error, so a typo is not silently ignored."""

    model_config = ConfigDict(extra="forbid")


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


class MessageIn(Strict):
    """An inbound message from a customer or community member."""

    text: str = Field(min_length=1, max_length=MAX_TEXT, description="what the customer wrote")
    channel: Channel = Field(description="the channel, which sets the reply's length and style")
    author: str | None = Field(default=None, max_length=200, description="the author's handle or name")
    id: str | None = Field(default=None, max_length=200,
                           description="the message's id on your side (default: a new one); the same id "
                                       "joins the same case")
    conversation: str | None = Field(default=None, max_length=300,
                                     description="the thread it belongs to: a message in the same conversation "
                                                 "joins its open case, and its draft sees the earlier turns")
    followers: int | None = Field(default=None, ge=0, description="the author's reach, if known")
    waiting_minutes: float = Field(default=0.0, ge=0, description="how long the customer has waited")

    _text = field_validator("text")(_not_blank)

    def inbound(self) -> Inbound:
        """The message as the pipeline takes it."""
        return Inbound(text=self.text.strip(), channel=self.channel, author=(self.author or "").strip() or None,
                       id=self.id or f"api-{uuid.uuid4().hex[:12]}", author_followers=self.followers,
                       waiting_minutes=self.waiting_minutes, conversation=self.conversation or None)


class TriageIn(Strict):
    """A message to label (kind, sentiment, priority, crisis screen, language)."""

    text: str = Field(min_length=1, max_length=MAX_TEXT)
    channel: Channel = "chat"
    author: str | None = Field(default=None, max_length=200)

    _text = field_validator("text")(_not_blank)

    def inbound(self) -> Inbound:
        return Inbound(text=self.text.strip(), channel=self.channel, author=self.author)


class ApproveIn(Strict):
    """Approve the version you reviewed, optionally with a final edit."""

    version: int = Field(ge=1, description="the item's version you reviewed (409 if it changed since)")
    text: str | None = Field(default=None, max_length=MAX_TEXT, description="the final text, if you changed it")


class EditIn(Strict):
    """Save a new text without approving it."""

    version: int = Field(ge=1)
    text: str = Field(min_length=1, max_length=MAX_TEXT)


class RejectIn(Strict):
    """Reject with a reason; the agent who drafted it sees the reason."""

    version: int = Field(ge=1)
    reason: str = Field(min_length=1, max_length=2000)

    _reason = field_validator("reason")(_not_blank)


class ReopenIn(Strict):
    """Bring a rejected item back to pending."""

    version: int = Field(ge=1)


class AssignIn(Strict):
    """Give an item and its case an owner (an agent may only take it themselves)."""

    assignee: str = Field(min_length=1, max_length=100)


def _texts(value: dict[str, str]) -> dict[str, str]:
    for language, text in value.items():
        if not 2 <= len(language) <= 8 or not language.replace("-", "").isalpha():
            raise ValueError(f"{language!r} is not a language code (en, es, pt-BR...)")
        if len(text) > MAX_TEXT:
            raise ValueError(f"the {language} text is longer than {MAX_TEXT} characters")
    return value


class IncidentTextsIn(Strict):
    """An incident's reply (or follow-up) per language, as a reviewer wrote it."""

    texts: dict[str, str] = Field(min_length=1, description="language code -> text, e.g. {\"en\": \"We know...\"}")

    _check = field_validator("texts")(_texts)


class IncidentApproveIn(Strict):
    """Approve the texts (the ones given here, else the ones saved)."""

    texts: dict[str, str] | None = Field(default=None, description="language code -> text to approve")

    @field_validator("texts")
    @classmethod
    def _valid(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        return None if value is None else _texts(value)


class IncidentResolveIn(Strict):
    announcement: str | None = Field(default=None, max_length=200,
                                     description="the knowledge-base entry that announces the fix")


class IncidentMergeIn(Strict):
    source: int = Field(ge=1, description="the incident that is the same problem; its cases move over")
