"""Promoters: detect them in the conversation history, keep the registry current, draft personal outreach.

A promoter (knowledge entry ``kb-promoter-outreach``) has posted positively three or more times, helped
other members, or recommended us. Outreach is a relationship, not a campaign: it is personal, goes by
private message, never offers products for posts, and is never drafted for anyone who opted out.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from copilot.community.drafting import (
    answer_fields,
    content_problems,
    generate_checked,
    json_format,
    max_tokens_for,
    model_name,
    prompts_for,
    trim_unfinished,
    words_to_avoid,
)
from copilot.community.events import load_events, upcoming
from copilot.community.inputs import load_entries, now_utc
from copilot.community.registry import Promoter, Registry, Signals, normalise_handle
from copilot.errors import PermissionDenied, UserError
from copilot.guardrails import fit_length
from copilot.knowledge_book import KnowledgeBook
from copilot.pii import redact
from copilot.types import Draft, Inbound, Triage

if TYPE_CHECKING:
    from copilot.pipeline import Pipeline

OUTREACH_KINDS: tuple[str, ...] = ("thanks", "beta", "guest_post", "ama", "advocate")
PROGRAMME_ENTRY = "kb-promoter-outreach"
POSITIVE_MIN = 3
RECOMMENDATIONS_MIN = 2
PROMOTER_SCORE_MIN = 2  # positive + 2 x helpful + 2 x recommendations - complaints
OUTREACH_MAX_CHARS = 500
OUTREACH_COOLDOWN_DAYS = 30
AMA_WINDOW_DAYS = 60
OUTREACH_TRIAGE = Triage(kind="praise", sentiment="positive", sentiment_score=0.6, priority=4,
                         priority_score=15.0, confidence=1.0)
_HELP = re.compile(
    r"\b(?:try|tried|worked for me|what worked|i fixed|fixed it by|you can|you need to|make sure|go to|head to|"
    r"hold the|unplug|restart|reset|turn (?:it )?off|settings|here's how|the trick is|had the same)\b", re.IGNORECASE)
_RECOMMEND = re.compile(
    r"\b(?:recommend(?:ed|ing|s)?|get (?:yourself )?(?:a |some )?lumio|switch(?:ed)? to lumio|"
    r"best (?:smart )?(?:bulbs?|lights?|strips?|lighting)|told (?:my|all my) \w+ (?:to|about)|go for lumio|"
    r"must[- ]have)\b", re.IGNORECASE)
_NOT_RECOMMEND = re.compile(r"\b(?:not|n't|never|no longer)\s+(?:\w+\s+)?recommend", re.IGNORECASE)
_MENTION = re.compile(r"(?<![\w.])@(\w{2,})")
_ASKS = re.compile(r"\b(?:leave (?:us )?a review|write (?:us )?a review|rate us|retweet|follow us|like our|"
                   r"share (?:this|our) post|valued customer|finds you well|to whom it may concern)\b", re.IGNORECASE)
GENERIC_TAGS = frozenset({"community", "official", "release", "update", "status", "events", "praise", "promoters",
                          "outreach", "moderation", "forum", "brand-voice", "channel-etiquette"})


@dataclass(frozen=True)
class Message:
    """One message of the conversation history."""

    author: str
    text: str
    channel: str
    at: datetime | None = None
    kind: str | None = None
    sentiment: str | None = None
    ref: str = ""


class _HistoryRow(BaseModel):
    model_config = ConfigDict(extra="ignore")

    author: str = Field(min_length=1)
    text: str = Field(min_length=1)
    channel: str = "forum"
    time: datetime | None = None
    id: str | int | None = None
    kind: str | None = None
    sentiment: str | None = None


def history_from_queue(queue: Any, since: datetime | None = None) -> list[Message]:
    """Every inbound message with an author in the queue's cases (the conversation history)."""
    out = []
    for case in queue.cases_received(since=since, authored=True):
        out.append(Message(author=case.author or "", text=case.text, channel=case.channel, at=case.received_at,
                           kind=case.triage.get("kind"), sentiment=case.triage.get("sentiment"),
                           ref=f"case {case.id}"))
    return out


def history_from_file(pipeline: Pipeline, path: Path) -> list[Message]:
    """Messages from a JSONL export (``{author, text, channel?, time?, id?, kind?, sentiment?}``), triaged
    where a row has no labels."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"history file {path} not found")
    rows: list[tuple[int, _HistoryRow]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append((number, _HistoryRow.model_validate(json.loads(line))))
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}:{number}: invalid JSON: {exc.msg}") from exc
        except ValidationError as exc:
            err = exc.errors()[0]
            raise UserError(f"{path}:{number}: {'.'.join(map(str, err['loc']))}: {err['msg']}") from exc
    unlabelled = [(n, r) for n, r in rows if r.kind is None or r.sentiment is None]
    labels: dict[int, Triage] = {}
    if unlabelled:
        triages = pipeline.triager.triage_batch([Inbound(text=r.text, channel=r.channel, author=r.author)
                                                 for _, r in unlabelled])
        labels = {n: t for (n, _), t in zip(unlabelled, triages, strict=True)}
    out = []
    for number, row in rows:
        label = labels.get(number)
        at = row.time if row.time is None or row.time.tzinfo else row.time.replace(tzinfo=dt.UTC)
        out.append(Message(author=row.author, text=row.text, channel=row.channel, at=at,
                           kind=row.kind or (label.kind if label else None),
                           sentiment=row.sentiment or (label.sentiment if label else None),
                           ref=f"{path.name}:{number}"))
    return out


def interest_vocabulary(kb_dir: Path) -> list[str]:
    """Topics people can be interested in: the knowledge base's specific tags and product ids."""
    words: set[str] = set()
    for entry in load_entries(kb_dir):
        words.update(t for t in entry.tags if len(t) >= 4 and t not in GENERIC_TAGS)
        words.update(entry.products)
    return sorted(words)


def _patterns(vocabulary: list[str]) -> list[tuple[str, re.Pattern[str]]]:
    out = []
    for word in vocabulary:
        body = re.escape(word).replace(r"\-", r"[-\s]?")
        if word.startswith("lumio-"):  # "lumio-strip" is also just "strip" or "strips"
            body = rf"(?:lumio[-\s]?)?{re.escape(word[6:])}s?"
        out.append((word, re.compile(rf"\b{body}\b", re.IGNORECASE)))
    return out


def score_history(messages: list[Message], vocabulary: list[str], brand: str) -> list[Signals]:
    """Per-author signals: positive posts, helpful answers to others, recommendations, complaints."""
    patterns = _patterns(vocabulary)
    brand_key = brand.lower()
    by_author: dict[str, list[Message]] = {}
    for message in messages:
        try:
            key = normalise_handle(message.author)
        except UserError:
            continue  # an author that is not a handle (a full name with spaces) cannot be contacted
        if key.startswith(brand_key):
            continue  # our own accounts
        by_author.setdefault(key, []).append(message)
    out: list[Signals] = []
    for key, items in by_author.items():
        positive = helpful = recommendations = negative = 0
        channels: Counter[str] = Counter()
        interests: Counter[str] = Counter()
        evidence: list[dict[str, Any]] = []
        for m in items:
            channels[m.channel] += 1
            is_negative = m.sentiment == "negative" or m.kind in ("complaint", "crisis")
            signals: list[str] = []
            if m.kind == "praise" or (m.sentiment == "positive" and not is_negative):
                positive += 1
                signals.append("positive")
            mentions = [h for h in _MENTION.findall(m.text) if h.lower() != key and not h.lower().startswith(brand_key)]
            if mentions and _HELP.search(m.text) and not is_negative:
                helpful += 1
                signals.append("helpful")
            if _RECOMMEND.search(m.text) and not _NOT_RECOMMEND.search(m.text) and not is_negative:
                recommendations += 1
                signals.append("recommendation")
            if is_negative:
                negative += 1
            if signals and m.kind != "crisis":
                for word, pattern in patterns:
                    if pattern.search(m.text):
                        interests[word] += 1
                evidence.append({"ref": m.ref, "signals": signals, "channel": m.channel,
                                 "at": m.at.isoformat() if m.at else None, "quote": _quote(m.text)})
        score = positive + 2 * helpful + 2 * recommendations - negative
        # The guideline's signals, and on balance a fan: complaints weigh against the praise.
        is_promoter = (positive >= POSITIVE_MIN or helpful >= 1 or recommendations >= RECOMMENDATIONS_MIN) \
            and score >= PROMOTER_SCORE_MIN
        times = [m.at for m in items if m.at is not None]
        display = items[-1].author.strip()
        out.append(Signals(
            handle=key, display=display if display.startswith("@") else f"@{display}",
            channels=tuple(c for c, _ in channels.most_common()), interests=tuple(w for w, _ in interests.most_common(5)),
            messages=len(items), positive=positive, helpful=helpful, recommendations=recommendations,
            negative=negative, score=float(score), is_promoter=is_promoter,
            evidence=tuple(sorted(evidence, key=lambda e: -len(e["signals"]))[:5]),
            first_seen=min(times) if times else None, last_seen=max(times) if times else None))
    return sorted(out, key=lambda s: (-s.score, s.handle))


def _quote(text: str, limit: int = 160) -> str:
    return fit_length(" ".join(redact(text).split()), limit)


@dataclass(frozen=True)
class ScanReport:
    """What a promoter scan found."""

    messages: int
    authors: int
    new: tuple[str, ...]
    updated: tuple[str, ...]
    promoters: tuple[Promoter, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"messages": self.messages, "authors": self.authors, "new": list(self.new),
                "updated": list(self.updated), "promoters": [p.to_dict() for p in self.promoters]}


def scan_promoters(pipeline: Pipeline, *, by: str = "copilot", messages: list[Message] | None = None) -> ScanReport:
    """Detect promoters from the history (the queue's cases unless ``messages`` is given) into the registry."""
    messages = history_from_queue(pipeline.queue) if messages is None else messages
    signals = score_history(messages, interest_vocabulary(pipeline.settings.kb_dir), pipeline.settings.brand_name)
    registry = Registry(pipeline.queue)
    new, updated = registry.record(signals, by=by)
    return ScanReport(len(messages), len(signals), tuple(new), tuple(updated), tuple(registry.list()))


@dataclass(frozen=True)
class OptOutResult:
    """An opt-out, and what happened to outreach already drafted for that member."""

    promoter: Promoter
    withdrawn: tuple[int, ...]  # pending outreach items rejected
    needs_reviewer: tuple[int, ...]  # pending items the actor may not reject
    approved: tuple[int, ...]  # approved, not yet posted: a reviewer must stop them

    def to_dict(self) -> dict[str, Any]:
        return {"promoter": self.promoter.to_dict(), "withdrawn": list(self.withdrawn),
                "needs_reviewer": list(self.needs_reviewer), "approved": list(self.approved)}


def opt_out(pipeline: Pipeline, handle: str, *, by: str, reason: str | None = None) -> OptOutResult:
    """Record an opt-out and withdraw every outreach to them still waiting in the queue."""
    registry = Registry(pipeline.queue)
    promoter = registry.set_opt_out(handle, opted_out=True, by=by, reason=reason)
    withdrawn: list[int] = []
    blocked: list[int] = []
    approved: list[int] = []
    for item in _outreach_items(pipeline.queue, promoter.handle):
        if item.status in ("pending", "escalated"):
            try:
                pipeline.queue.reject(item.id, by=by, version=item.version,
                                      reason=f"@{promoter.handle} opted out of outreach")
                withdrawn.append(item.id)
            except PermissionDenied:
                blocked.append(item.id)
        elif item.status in ("approved", "failed"):
            approved.append(item.id)
    return OptOutResult(promoter, tuple(withdrawn), tuple(blocked), tuple(approved))


def _outreach_items(queue: Any, key: str) -> list[Any]:
    return queue.items_by_author("outreach", [f"@{key}", key])


def choose_outreach(promoter: Promoter, *, ama_available: bool) -> str:
    """The invitation that fits what the member has done, without repeating a recent one."""
    sent = {h["detail"].get("outreach") for h in promoter.history if h["action"] == "outreach"}
    preferences = []
    if promoter.helpful >= 2 or promoter.positive >= 5:
        preferences.append("advocate")
    if promoter.recommendations >= 1:
        preferences.append("guest_post")
    if ama_available:
        preferences.append("ama")
    if {"firmware", "matter", "calibration"} & set(promoter.interests):
        preferences.append("beta")
    preferences.append("thanks")
    return next((kind for kind in preferences if kind not in sent), "thanks")


def draft_outreach(pipeline: Pipeline, handle: str, *, kind: str | None = None, by: str | None = "copilot",
                   force: bool = False, today: dt.date | None = None) -> Any:
    """A personal outreach draft for one promoter, queued (ReviewItem) unless ``by`` is None (Draft).

    Refuses with a clear UserError when the member opted out or declined, is unknown, already has an
    outreach waiting, or was contacted in the last 30 days (unless ``force``).
    """
    if kind is not None and kind not in OUTREACH_KINDS:
        raise UserError(f"unknown outreach {kind!r}; choose one of {', '.join(OUTREACH_KINDS)}")
    registry = Registry(pipeline.queue)
    promoter = registry.get(handle)
    _refuse_if_not_contactable(promoter)
    _refuse_if_recent(pipeline.queue, promoter, force=force)
    today = today or now_utc().date()
    amas = upcoming(load_events(pipeline.settings.kb_dir), today, days=AMA_WINDOW_DAYS, kinds=("ama",))
    kind = kind or choose_outreach(promoter, ama_available=bool(amas))
    draft = _compose(pipeline, promoter, kind, amas[0].facts() if amas else "")
    if by is None:
        return draft
    current = registry.get(promoter.handle, history=False)  # drafting took a while: they may have opted out
    _refuse_if_not_contactable(current)
    item = pipeline.queue.submit(draft, by=by)
    registry.record_outreach(promoter.handle, item_id=item.id, outreach=kind, by=by)
    return item


def _refuse_if_not_contactable(promoter: Promoter) -> None:
    if promoter.opted_out:
        when = f" on {promoter.opted_out_at:%Y-%m-%d}" if promoter.opted_out_at else ""
        raise UserError(f"@{promoter.handle} opted out of outreach{when}; nothing was drafted and they must not "
                        "be contacted")
    if promoter.consent == "declined":
        raise UserError(f"@{promoter.handle} declined to be contacted; nothing was drafted")


def _refuse_if_recent(queue: Any, promoter: Promoter, *, force: bool) -> None:
    for item in _outreach_items(queue, promoter.handle):
        if item.status in ("pending", "escalated"):
            raise UserError(f"an outreach to @{promoter.handle} is already waiting for review (item {item.id})")
        recent = item.drafted_at and item.drafted_at >= queue.clock() - timedelta(days=OUTREACH_COOLDOWN_DAYS)
        if not force and recent and item.status != "rejected":
            raise UserError(f"@{promoter.handle} was contacted on {item.drafted_at:%Y-%m-%d} (item {item.id}); "
                            f"wait {OUTREACH_COOLDOWN_DAYS} days between outreach or pass --force")


def _programme(pipeline: Pipeline) -> str:
    """The advocate programme's description, from the knowledge base's outreach guideline."""
    entry = KnowledgeBook(pipeline.settings.kb_dir).entry(PROGRAMME_ENTRY)
    if entry is None:
        return ""
    match = re.search(r"([A-Z][\w ]*?program(?:me)?)\s*:\s*([^.\n]+)", entry.body)
    return f"The {match.group(1)}: {match.group(2).strip()}." if match else ""


def _compose(pipeline: Pipeline, promoter: Promoter, kind: str, ama_facts: str) -> Draft:
    settings = pipeline.settings
    channel = promoter.main_channel if promoter.main_channel in settings.channels else "forum"
    profile = settings.channel(channel)
    limit = min(OUTREACH_MAX_CHARS, max(profile.max_chars, 400))
    programme = _programme(pipeline)
    if kind in ("beta", "advocate") and not programme:
        raise UserError(f"a {kind} invitation needs the programme described in the knowledge base entry "
                        f"{PROGRAMME_ENTRY}; it is missing")
    if kind == "ama" and not ama_facts:
        raise UserError(f"no AMA in the events calendar in the next {AMA_WINDOW_DAYS} days to invite them to")
    facts = {"beta": programme, "advocate": programme, "ama": ama_facts}.get(kind, "")
    quote = next((e["quote"] for e in promoter.evidence if e.get("quote")), "")
    contributions = _contributions(promoter)
    name = promoter.display.lstrip("@")
    prompts = prompts_for(pipeline)
    book = KnowledgeBook(settings.kb_dir)
    voice = book.section("kb-brand-voice", "In short") or prompts.render("draft/default_voice.j2").text
    avoid = words_to_avoid(book)
    system = prompts.render("community/outreach_system.j2", brand=settings.brand_name, voice=voice)
    variables = {"name": name, "channel": channel, "private_channel": profile.private_channel, "max_chars": limit,
                 "contributions": contributions, "quote": quote, "interests": list(promoter.interests[:3]),
                 "kind": kind, "facts": facts, "brand": settings.brand_name}
    user = prompts.render("community/outreach_user.j2", **variables)
    source = " ".join([facts, quote, " ".join(promoter.interests), name, contributions])

    def check(raw: str) -> tuple[str, list[str]]:
        fields, cut_off = answer_fields(raw, ("message",))
        text = trim_unfinished(fields.get("message", ""), limit, cut_off=cut_off)
        problems = content_problems(text, limit=limit, facts=source, system_prompt=system.text,
                                    allow_handles=[promoter.handle], avoid=avoid)
        asks = _ASKS.findall(text)
        if asks:
            problems.append(f"it asks for {asks[0]}; outreach never asks for reviews, follows or shares")
        personal = [name.lower(), *(i.replace("lumio-", "") for i in promoter.interests)]
        if not any(p and p.replace("-", " ") in text.lower().replace("-", " ") for p in personal):
            problems.append(f"make it personal: use their name ({name}) or what they care about")
        return text, problems

    outcome = generate_checked(pipeline, prompts, system, user, check, max_tokens=max_tokens_for(pipeline, limit) + 8,
                               response_format=json_format("message", ("message",)))
    text, template, template_hash = outcome.text, user.template, user.template_hash
    if not outcome.ok:
        fallback = prompts.render("community/outreach_fallback.j2", **variables,
                                  interest=promoter.interests[0].replace("lumio-", "") if promoter.interests else "")
        text, template, template_hash = fit_length(fallback.text, limit), fallback.template, fallback.template_hash
    cited = (PROGRAMME_ENTRY,) if kind in ("beta", "advocate") else ()
    inbound = Inbound(text=f"Outreach ({kind}) to @{promoter.handle}: {contributions}."
                      + (f' They said: "{quote}"' if quote else ""), channel=channel, author=f"@{promoter.handle}")
    flags = [f"outreach: {kind}", f"send privately: {profile.private_channel}", *outcome.flags()]
    return Draft(text=text, channel=channel, inbound=inbound, triage=OUTREACH_TRIAGE, cited_ids=cited,
                 retrieved_ids=cited, confidence=0.8 if outcome.ok else 0.4, template=template,
                 template_hash=template_hash, latency_ms=outcome.latency_ms, needs_attention=not outcome.ok,
                 flags=tuple(flags), kind="outreach", model=model_name(pipeline))


def _contributions(promoter: Promoter) -> str:
    parts = []
    if promoter.positive:
        parts.append(f"{promoter.positive} positive post{'s' if promoter.positive != 1 else ''}")
    if promoter.helpful:
        parts.append(f"{promoter.helpful} helpful answer{'s' if promoter.helpful != 1 else ''} to other members")
    if promoter.recommendations:
        parts.append(f"{promoter.recommendations} recommendation{'s' if promoter.recommendations != 1 else ''}")
    return ", ".join(parts) or "kind words about us"
