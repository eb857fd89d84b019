"""Discussion starters: pick varied topics, draft on-voice posts that fit the channel, check them, queue them.

Topics come from the request, the events calendar, clusters of recent inbound conversations and the
knowledge base's themes. A post is checked (format, length, facts, personal data, sensitive topics) and
compared with the batch and with recent starters; a failed post is retried once with the problems. The
model's posts come first: further topics and angles are tried before any template, and only when they run
out does a failed plan's template (its wording varied by the angle) fill the batch; a template that repeats
an earlier post is dropped. ``StarterRun.shortfall`` says how many fewer than asked could be drafted.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from rapidfuzz import fuzz

from copilot.community.drafting import (
    Novelty,
    Outcome,
    answer_fields,
    cluster,
    content_problems,
    generate_checked,
    json_format,
    keywords,
    max_tokens_for,
    model_name,
    prompts_for,
    sensitive_reason,
    trim_unfinished,
    words_to_avoid,
)
from copilot.community.events import Event, load_events, upcoming
from copilot.community.inputs import load_entries, now_utc, recent_texts
from copilot.errors import UserError
from copilot.guardrails import fit_length, sentences
from copilot.knowledge_book import KnowledgeBook
from copilot.models.embeddings import as_matrix
from copilot.passages import plain
from copilot.pii import redact
from copilot.prompts import Rendered
from copilot.types import Draft, Entry, Inbound, Triage

if TYPE_CHECKING:
    from copilot.pipeline import Pipeline

FORMATS: tuple[str, ...] = ("question", "poll", "challenge", "event", "ama")
OPEN_FORMATS = ("question", "poll", "challenge")  # formats that need no calendar event
STARTER_MAX_CHARS = 500
STARTER_MIN_CHARS = 40
STARTER_TARGET_CHARS = 280  # what the prompt asks for; up to STARTER_MAX_CHARS is accepted
MAX_STARTERS = 20
EVENT_WINDOW_DAYS = 60
CONVERSATION_DAYS = 14
RECENT_POST_DAYS = 90
MIN_CONVERSATION_CLUSTER = 3
CLUSTER_DISTANCE = 0.55
THEME_KINDS = ("faq", "workaround", "announcement")
# Customer-service matters, not community conversation.
TRANSACTIONAL_TAGS = frozenset({
    "orders", "shipping", "delivery", "tracking", "billing", "refunds", "returns", "pricing", "price-match",
    "discounts", "promotions", "checkout", "payments", "gift-cards", "students", "international", "countries",
    "account", "login", "password", "2fa", "security", "privacy", "gdpr", "deletion", "warranty", "outage",
    "incident", "support-hours", "cancellation", "personal-data",
})
STARTER_TRIAGE = Triage(kind="conversation", sentiment="neutral", sentiment_score=0.0, priority=4,
                        priority_score=10.0, confidence=1.0)
_OPTION = re.compile(r"^\s*(?:[-•*]|\d+[.)]|[A-Da-d][.)])\s+\S", re.MULTILINE)
_ECHO = re.compile(r"</?facts>|^\s*(?:topic|channel|angle|format)\s*:|\bwrite an? \w+ post\b", re.IGNORECASE | re.MULTILINE)
_INLINE_OPTION = re.compile(r"\s+[-•]\s+(?=\S)")
_JOIN = re.compile(r"\b(?:join|register|sign up|save the date|see you|come along|who's coming)\b", re.IGNORECASE)
_STOP = frozenset({"the", "and", "for", "with", "our", "your", "from", "without"})
_INVITE = re.compile(r"\b(?:share|post|show|try|join|submit|snap|send|tell|drop)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Topic:
    """What one starter is about, where the idea came from, and the facts it may state."""

    title: str
    source: str  # request | calendar | conversations | knowledge
    facts: str = ""
    entry_id: str | None = None
    event: Event | None = None

    @property
    def formats(self) -> tuple[str, ...]:
        if self.event is None:
            return OPEN_FORMATS
        if self.event.kind == "ama":
            return ("ama", "event", "question")
        if self.event.kind == "challenge":
            return ("challenge", "event", "question")
        return ("event", "question")


@dataclass(frozen=True)
class StarterRun:
    """The drafted starters, and the near-duplicates that were dropped on the way."""

    requested: int
    drafts: tuple[Draft, ...]
    rejected: tuple[dict[str, str], ...] = ()
    topics_considered: int = 0

    @property
    def shortfall(self) -> int:
        """How many fewer starters than requested could be drafted (topics ran out)."""
        return max(0, self.requested - len(self.drafts))

    def to_dict(self) -> dict[str, Any]:
        return {"requested": self.requested, "drafts": [d.to_dict() for d in self.drafts],
                "rejected": list(self.rejected), "topics_considered": self.topics_considered,
                "shortfall": self.shortfall}


@dataclass
class _Plan:
    topic: Topic
    fmt: str
    angle: int
    tried: list[str] = field(default_factory=list)


def generate_starters(pipeline: Pipeline, topic: str | None = None, n: int = 5, fmt: str | None = None,
                      channel: str = "forum", by: str | None = "copilot",
                      today: dt.date | None = None) -> list[Any]:
    """Draft ``n`` varied starters; queued as ``starter`` items (ReviewItems) unless ``by`` is None (Drafts)."""
    run = draft_starters(pipeline, topic=topic, n=n, fmt=fmt, channel=channel, today=today)
    if by is None:
        return list(run.drafts)
    return [pipeline.queue.submit(draft, by=by) for draft in run.drafts]


def draft_starters(pipeline: Pipeline, *, topic: str | None = None, n: int = 5, fmt: str | None = None,
                   channel: str = "forum", today: dt.date | None = None) -> StarterRun:
    """Draft up to ``n`` starters without queueing them (see the module docstring for the checks)."""
    if not 1 <= n <= MAX_STARTERS:
        raise UserError(f"--n must be between 1 and {MAX_STARTERS}, not {n}")
    if fmt is not None and fmt not in FORMATS:
        raise UserError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    profile = pipeline.settings.channel(channel)
    now = now_utc()
    today = today or now.date()
    topics = gather_topics(pipeline, topic=topic, fmt=fmt, channel=channel, today=today)
    plans = _plan(topics, fmt, n)
    if not plans:
        raise UserError(_nothing_to_say(fmt, channel))
    writer = _Writer(pipeline, channel, min(profile.max_chars, STARTER_MAX_CHARS), profile.style)
    novelty = Novelty(pipeline.embedder, recent_texts(pipeline.queue, "starter", now - timedelta(RECENT_POST_DAYS)))
    drafts: list[Draft] = []
    rejected: list[dict[str, str]] = []
    failed: list[tuple[_Plan, Outcome]] = []
    considered = 0
    # The model's own posts first; a plan whose post failed its checks waits, and its template fills a gap
    # only when the plans run out, so the batch is as many written posts as the model could give.
    for plan in plans:
        if len(drafts) == n:
            break
        considered += 1
        outcome = writer.attempt(plan, novelty)
        if not outcome.ok:
            failed.append((plan, outcome))
            continue
        draft = writer.draft(plan, outcome)
        novelty.add(draft.text)
        drafts.append(draft)
    for plan, outcome in failed:
        if len(drafts) == n:
            break
        filled, duplicate_of = writer.fallback(plan, outcome, novelty)
        if filled is None:
            rejected.append({"topic": plan.topic.title, "format": plan.fmt, "duplicate_of": duplicate_of or ""})
            continue
        novelty.add(filled.text)
        drafts.append(filled)
    return StarterRun(n, tuple(drafts), tuple(rejected), considered)


def _nothing_to_say(fmt: str | None, channel: str) -> str:
    if fmt in ("event", "ama"):
        return (f"no upcoming {fmt} for {channel} in the next {EVENT_WINDOW_DAYS} days in the events calendar "
                "(knowledge/events.yaml); pick another format or add the event")
    return ("nothing to start a discussion about: give --topic, add events to knowledge/events.yaml, or add "
            "FAQ entries to the knowledge base")


# Topics ------------------------------------------------------------------------------------------


def gather_topics(pipeline: Pipeline, *, topic: str | None = None, fmt: str | None = None,
                  channel: str = "forum", today: dt.date | None = None) -> list[Topic]:
    """Candidate topics, most relevant first: the request, then events, conversations and themes interleaved."""
    today = today or now_utc().date()
    events = upcoming(load_events(pipeline.settings.kb_dir), today, days=EVENT_WINDOW_DAYS, channel=channel)
    if topic is not None:
        return _requested(pipeline, topic, events, fmt)
    used = _recently_used(pipeline, now_utc() - timedelta(RECENT_POST_DAYS))
    # Topics with a recent starter go to the back (stable sort keeps date and relevance order otherwise).
    calendar = sorted((Topic(e.title, "calendar", facts=e.facts(), event=e) for e in events),
                      key=lambda t: used.get(t.title, 0))
    if fmt in ("event", "ama"):
        return calendar
    entries = _knowledge(pipeline)
    conversations = sorted(conversation_topics(pipeline, entries=entries), key=lambda t: used.get(t.title, 0))
    lists = [calendar, conversations, knowledge_topics(entries, used, today)]
    merged: list[Topic] = []
    for index in range(max(len(x) for x in lists)):
        merged.extend(x[index] for x in lists if index < len(x))
    return merged


def _requested(pipeline: Pipeline, topic: str, events: list[Event], fmt: str | None) -> list[Topic]:
    title = " ".join(topic.split())
    if not title:
        raise UserError("--topic is empty")
    reason = sensitive_reason(title)
    if reason:
        raise UserError(f"the topic touches a sensitive area ({reason}): discussion starters never do; "
                        "crises and complaints go to the support queue")
    if find_pii_in(title):
        raise UserError("the topic contains personal data; describe the subject, not a person's case")
    matching = [e for e in events if fuzz.partial_ratio(title.lower(), f"{e.title} {e.description}".lower()) >= 80]
    if fmt in ("event", "ama"):
        wanted = [e for e in matching if fmt == "event" or e.kind == "ama"]
        if not wanted:
            raise UserError(f"no upcoming {fmt} about {title!r} in the events calendar (knowledge/events.yaml)")
        return [Topic(e.title, "request", facts=e.facts(), event=e) for e in wanted]
    if matching:
        return [Topic(matching[0].title, "request", facts=matching[0].facts(), event=matching[0])]
    facts, entry_id = "", None
    if pipeline.index.count():
        retrieval = pipeline.retriever.search(title)
        grounded = [p for p in pipeline.retriever.grounded_passages(retrieval)
                    if p.kind in (*THEME_KINDS, "fix") and not sensitive_reason(p.title)]
        if grounded:
            facts, entry_id = summary(grounded[0].text), grounded[0].id
    return [Topic(title, "request", facts=facts, entry_id=entry_id)]


def find_pii_in(text: str) -> bool:
    return redact(text) != text


def _knowledge(pipeline: Pipeline) -> list[Entry]:
    return load_entries(pipeline.settings.kb_dir)


def theme_title(entry: Entry) -> str:
    """An entry's title as a conversation topic (without the 'Community workaround:' label)."""
    return re.sub(r"^community workaround:\s*", "", entry.title, flags=re.IGNORECASE).strip().strip('"')


def summary(text: str, limit: int = 300) -> str:
    """The answer part of an entry or passage, as plain text of at most ``limit`` characters."""
    lines = text.strip().splitlines()
    body = plain("\n".join(lines[1:])) if len(lines) > 1 else plain(text)
    parts = sentences(body)
    if len(parts) > 1 and parts[0].endswith("?"):
        parts = parts[1:]
    return fit_length(" ".join(parts), limit)


def knowledge_topics(entries: list[Entry], used: dict[str, int], today: dt.date) -> list[Topic]:
    """Themes from FAQ, workaround and announcement entries; not transactional, not sensitive, unused first."""
    themes: list[tuple[int, str, Topic]] = []
    for entry in entries:
        if entry.kind not in THEME_KINDS or TRANSACTIONAL_TAGS & set(entry.tags):
            continue
        if sensitive_reason(f"{entry.title} {' '.join(entry.tags)}"):
            continue
        # A stable, date-dependent order: the same day gives the same themes, another day others.
        spin = hashlib.sha1(f"{entry.id}|{today.isoformat()}".encode()).hexdigest()
        themes.append((used.get(entry.id, 0), spin, Topic(theme_title(entry), "knowledge",
                                                         facts=summary(entry.text), entry_id=entry.id)))
    return [t for _, _, t in sorted(themes, key=lambda x: (x[0], x[1]))]


def conversation_topics(pipeline: Pipeline, *, entries: list[Entry] | None = None, days: int = CONVERSATION_DAYS,
                        now: dt.datetime | None = None) -> list[Topic]:
    """Themes shared by at least three recent, non-sensitive inbound messages (never one person's case)."""
    since = (now or now_utc()) - timedelta(days=days)
    rows = pipeline.queue.cases_received(since=since, newest_first=True, limit=400)
    texts: list[str] = []
    negative: list[bool] = []
    for row in rows:
        triage = dict(row.triage or {})
        if triage.get("crisis") or triage.get("private_info") or triage.get("kind") in ("crisis", "spam"):
            continue
        text = redact(row.text or "").strip()
        if len(text) < 12 or sensitive_reason(text):
            continue
        texts.append(text)
        negative.append(triage.get("sentiment") == "negative" or triage.get("kind") == "complaint")
    if len(texts) < MIN_CONVERSATION_CLUSTER:
        return []
    vectors = as_matrix(pipeline.embedder, texts)
    titles = {e.id: e for e in entries or []}
    topics: list[Topic] = []
    for group in cluster(vectors, threshold=CLUSTER_DISTANCE):
        if len(group) < MIN_CONVERSATION_CLUSTER or sum(negative[i] for i in group) * 2 > len(group):
            continue  # a pile of complaints is support work, not a conversation to amplify
        words = keywords([texts[i] for i in group], texts)
        if not words or sensitive_reason(" ".join(words)):
            continue
        title, facts, entry_id = ", ".join(words), "", None
        if pipeline.index.count():
            retrieval = pipeline.retriever.search(" ".join(words))
            grounded = [p for p in pipeline.retriever.grounded_passages(retrieval)
                        if p.kind in (*THEME_KINDS, "fix") and not sensitive_reason(p.title)]
            if grounded:
                top = grounded[0]
                entry = titles.get(top.id)
                title = theme_title(entry) if entry else top.title
                facts, entry_id = summary(top.text), top.id
        topics.append(Topic(title, "conversations", facts=facts, entry_id=entry_id))
    return topics


def _recently_used(pipeline: Pipeline, since: dt.datetime) -> dict[str, int]:
    """How often each knowledge entry and each topic title was the subject of a starter since a time."""
    counts: dict[str, int] = {}
    for item in pipeline.queue.items_drafted(kind="starter", since=since):
        draft = item.draft or {}
        titles = [re.sub(r"\s+\(\w+\)$", "", f.removeprefix("topic: ")) for f in draft.get("flags") or ()
                  if f.startswith("topic: ")]
        for key in {*(draft.get("cited_ids") or ()), *titles}:
            counts[key] = counts.get(key, 0) + 1
    return counts


def _plan(topics: list[Topic], fmt: str | None, n: int) -> list[_Plan]:
    """Topic, format and angle triples to try, ``3n`` when the topics allow: formats rotate so a batch mixes
    them, and a topic comes back with the next angle when there are fewer topics than posts asked for."""
    plans: list[_Plan] = []
    rotation = 0
    for round_ in range(3 * n):
        added = 0
        for topic in topics:
            if fmt is not None:
                if fmt not in topic.formats and not (fmt in OPEN_FORMATS and topic.event is None):
                    continue
                chosen = fmt
            elif topic.event is not None:
                chosen = topic.formats[round_ % len(topic.formats)]
            else:
                chosen = OPEN_FORMATS[rotation % len(OPEN_FORMATS)]
                rotation += 1
            plans.append(_Plan(topic, chosen, angle=round_))
            added += 1
        if not added or len(plans) >= 3 * n or (round_ == 0 and len({t.title for t in topics}) >= n):
            break
    return plans[: 3 * n]


# Writing ------------------------------------------------------------------------------------------


class _Writer:
    """Drafts one starter for a plan: model, checks, one retry, then the template fallback."""

    def __init__(self, pipeline: Pipeline, channel: str, limit: int, style: str) -> None:
        self.pipeline = pipeline
        self.channel = channel
        self.limit = limit
        self.style = style
        self.prompts = prompts_for(pipeline)
        settings = pipeline.settings
        book = KnowledgeBook(settings.kb_dir)
        voice = book.section("kb-brand-voice", "In short") or self.prompts.render("draft/default_voice.j2").text
        self.avoid = words_to_avoid(book)
        self.system = self.prompts.render("community/starter_system.j2", brand=settings.brand_name, voice=voice)

    def attempt(self, plan: _Plan, novelty: Novelty) -> Outcome:
        """The model's post for a plan, checked, with one retry that names the problems."""
        topic, fmt = plan.topic, plan.fmt
        target = min(self.limit, STARTER_TARGET_CHARS)
        user = self._user(plan, target)
        source = f"{topic.title} {topic.facts}"

        def check(raw: str) -> tuple[str, list[str]]:
            fields, cut_off = answer_fields(raw, ("post",))
            text = trim_unfinished(fields.get("post", ""), self.limit, cut_off=cut_off)
            if topic.event and fmt in ("event", "ama") and text and not mentions_event(text, topic.event):
                text = f"{topic.event.title}, {topic.event.when}: {text}"  # name it rather than ask again
            if fmt == "poll" and len(_OPTION.findall(text)) < 2:
                text = _INLINE_OPTION.sub("\n- ", text)  # options written on one line: one per line
            problems = content_problems(text, limit=self.limit, facts=source, system_prompt=self.system.text,
                                        min_chars=STARTER_MIN_CHARS, avoid=self.avoid)
            if _ECHO.search(text):
                problems.append("it repeats the instructions (Topic, Channel, facts); write only the post")
            problems += format_problems(text, fmt, topic.event)
            duplicate = novelty.problem(text)
            if duplicate:
                problems.append(duplicate)
            return text, problems

        return generate_checked(self.pipeline, self.prompts, self.system, user, check,
                                max_tokens=max_tokens_for(self.pipeline, target) + 8,
                                response_format=json_format("post", ("post",)))

    def _user(self, plan: _Plan, target: int) -> Rendered:
        return self.prompts.render(
            "community/starter_user.j2", fmt=plan.fmt, channel=self.channel, style=self.style, max_chars=target,
            topic=plan.topic.title, facts=plan.topic.facts, angle=plan.angle,
            hashtags=self.channel in ("twitter", "instagram"))

    def draft(self, plan: _Plan, outcome: Outcome) -> Draft:
        """The model's checked post as a draft."""
        user = self._user(plan, min(self.limit, STARTER_TARGET_CHARS))
        return self._as_draft(plan, outcome, outcome.text, user)

    def fallback(self, plan: _Plan, outcome: Outcome, novelty: Novelty) -> tuple[Draft | None, str | None]:
        """The template post for a plan whose model post failed, or None and the earlier post it would repeat."""
        topic = plan.topic
        rendered = self.prompts.render(
            "community/starter_fallback.j2", fmt=plan.fmt, topic=topic.title, event=topic.event,
            question=topic.title.rstrip().endswith("?"), short=self.limit <= 300, angle=plan.angle)
        text = fit_length(rendered.text, self.limit)
        earlier = novelty.duplicate_of(text)
        if earlier is not None:
            return None, earlier
        return self._as_draft(plan, outcome, text, rendered), None

    def _as_draft(self, plan: _Plan, outcome: Outcome, text: str, rendered: Rendered) -> Draft:
        topic, fmt = plan.topic, plan.fmt
        flags = [f"format: {fmt}", f"topic: {topic.title} ({topic.source})", *outcome.flags()]
        inbound = Inbound(text=_brief(topic, fmt, self.channel), channel=self.channel)
        cited = (topic.entry_id,) if topic.entry_id else ()
        return Draft(
            text=text, channel=self.channel, inbound=inbound, triage=STARTER_TRIAGE, cited_ids=cited,
            retrieved_ids=cited, confidence=0.8 if outcome.ok and outcome.attempts == 1 else
            (0.65 if outcome.ok else 0.4), template=rendered.template, template_hash=rendered.template_hash,
            latency_ms=outcome.latency_ms, needs_attention=not outcome.ok, flags=tuple(flags), kind="starter",
            model=model_name(self.pipeline))


def format_problems(text: str, fmt: str, event: Event | None) -> list[str]:
    """Whether the post has the shape its format needs."""
    problems: list[str] = []
    if fmt == "question" and "?" not in text:
        problems.append("a question post must ask one open question (with a question mark)")
    elif fmt == "poll":
        options = len(_OPTION.findall(text))
        if options < 2 or options > 5 or "?" not in text:
            problems.append('a poll needs one question and 2 to 4 options, each on its own line starting with "- "')
    elif fmt == "challenge" and not _INVITE.search(text):
        problems.append("a challenge must invite members to share, post or try something")
    elif fmt in ("event", "ama"):
        if event is None:
            problems.append(f"a {fmt} post needs an event from the calendar")
        elif not mentions_event(text, event):
            problems.append(f'say the event\'s title "{event.title}" and its date ({event.when})')
        elif fmt == "ama" and not re.search(r"\bAMA\b|ask me anything|\bask\b|questions?", text, re.IGNORECASE):
            problems.append("an AMA post must invite questions")
        elif fmt == "event" and "?" not in text and not _JOIN.search(text):
            problems.append("invite members to join, or end with a question")
    return problems


def mentions_event(text: str, event: Event) -> bool:
    """Whether a post names the event (its title, fuzzily) and its date."""
    lower = text.lower()
    words = {w for w in re.findall(r"[a-z0-9]{3,}", event.title.lower()) if w not in _STOP}
    found = {w for w in words if re.search(rf"\b{re.escape(w)}", lower)}
    titled = fuzz.partial_ratio(event.title.lower(), lower) >= 75 or len(found) >= 0.6 * len(words)
    month = event.date.strftime("%B").lower()
    dated = bool(re.search(rf"\b{event.date.day}(?:st|nd|rd|th)?\s+(?:of\s+)?{month[:3]}", lower)
                 or re.search(rf"\b{month[:3]}\w*\.?\s+{event.date.day}(?:st|nd|rd|th)?\b", lower)
                 or event.date.isoformat() in text)
    return titled and dated


def _brief(topic: Topic, fmt: str, channel: str) -> str:
    where = f" [{topic.event.kind} {topic.event.date.isoformat()}]" if topic.event else ""
    return f"Discussion starter ({fmt}) for {channel} about: {topic.title}{where}; idea from {topic.source}"
