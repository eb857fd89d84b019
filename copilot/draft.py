"""Support reply drafting: triage, retrieve, prompt, generate, validate, retry once, then fall back."""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from copilot.compose import (
    LANGUAGE_NAMES,
    Facts,
    PhraseBook,
    after_greeting,
    clean_opener,
    load_phrase_book,
    opener_problems,
    select_facts,
    translation_problems,
)
from copilot.config import ChannelProfile
from copilot.errors import ProviderError, UserError
from copilot.generation import TokenCallback, call, generate
from copilot.guardrails import (
    check_reply,
    drop_echo,
    fit_length,
    parse_reply,
    sentences,
    strip_handle,
    trim_cut_off,
)
from copilot.knowledge import load_knowledge, section
from copilot.pii import redact
from copilot.prompts import Prompts, Rendered, load_prompts
from copilot.retrieve import Filters
from copilot.types import Draft, Entry, Inbound, Passage, Retrieval, Triage

if TYPE_CHECKING:
    from copilot.pipeline import Pipeline

PASSAGES_IN_PROMPT = 2
REFRESH_S = 2.0  # how often the special entries are re-read from disk at most
PASSAGE_CHARS = 480
FACTS_MAX_CHARS = 650
NEVER_ANSWER = ("kb-crisis-policy", "kb-brand-voice")
SAMPLE_BRAND = "Lumio"
SAMPLE_SIGNATURE = "The Lumio Support Team"
NEUTRAL_SIGNATURE = "The support team"
NO_CITATION_KINDS = ("praise", "conversation", "feedback")
REWRITES = {
    "shorter": "Make it noticeably shorter (about half), keeping the next step.",
    "warmer": "Make it warmer and more empathetic, without adding facts.",
    "formal": "Make it more formal and polished.",
    "translate": "Translate it into {language}.",
}


class KnowledgeBook:
    """The knowledge base's special entries (brand voice, crisis policy), reloaded when files change."""

    def __init__(self, kb_dir: Path) -> None:
        self.kb_dir = Path(kb_dir)
        self._stamp: float | None = None
        self._checked: float | None = None
        self._entries: dict[str, Entry] = {}
        self._lock = threading.Lock()

    def _refresh(self) -> None:
        # Checking every file's mtime on each draft is wasted work on a large knowledge base.
        now = time.monotonic()
        if self._checked is not None and now - self._checked < REFRESH_S:
            return
        self._checked = now
        if not self.kb_dir.exists():
            self._entries = {}
            return
        files = [self.kb_dir] if self.kb_dir.is_file() else list(self.kb_dir.rglob("*"))
        stamp = max((f.stat().st_mtime for f in files if f.is_file()), default=0.0)
        if stamp != self._stamp:
            try:
                self._entries = {e.id: e for e in load_knowledge(self.kb_dir)}
            except UserError:
                self._entries = {}
            self._stamp = stamp

    def entry(self, entry_id: str) -> Entry | None:
        with self._lock:
            self._refresh()
            return self._entries.get(entry_id)

    def section(self, entry_id: str, heading: str) -> str | None:
        entry = self.entry(entry_id)
        return section(entry, heading) if entry else None


def plain(text: str) -> str:
    """Markdown to one line of plain text."""
    text = re.sub(r"\[([^\]]+)\]\([^)]+\)", r"\1", text)
    text = re.sub(r"[*_`#>]+", "", text)
    return " ".join(text.split())


def fix_summary(passage: Passage) -> str:
    """The fix or answer of a passage as one compact line: its steps or its first sentences."""
    _, answer = answer_part(passage)
    lines = answer.splitlines()
    steps = [re.sub(r"^\s*(?:\d+[.)]|[-*])\s*", "", ln).strip() for ln in lines if re.match(r"^\s*(?:\d+[.)]|[-*])\s", ln)]
    if len(steps) > 1:
        return " ".join(f"{n}) {plain(step).rstrip('.')}." for n, step in enumerate(steps, 1))
    parts = sentences(plain(" ".join(lines)))
    if len(parts) > 1 and parts[0].endswith("?"):
        parts = parts[1:]
    return " ".join(parts[:3])


def answer_part(passage: Passage) -> tuple[str, str]:
    """A passage split into its head (title or question) and its answer, without the restated problem."""
    head, _, body = passage.text.partition("\n")
    if head.strip() != passage.title.strip():
        head, body = passage.title, passage.text
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", body.strip()) if p.strip()]
    if len(paragraphs) > 1:
        paragraphs = paragraphs[1:]
    return head, "\n".join(paragraphs)


def focus(passage: Passage, limit: int = PASSAGE_CHARS) -> str:
    """The passage as the model sees it: its head and the start of its answer, cut at a line or sentence.

    Prompt tokens are the local model's main cost, and steps must stay whole and in order.
    """
    if len(passage.text) <= limit:
        return passage.text
    head, answer = answer_part(passage)
    budget = limit - len(head) - 1
    kept: list[str] = []
    for line in answer.splitlines():
        if len(line) + 1 <= budget:
            kept.append(line)
            budget -= len(line) + 1
            continue
        if not kept or len(line) > 200:
            cut = fit_length(line, budget)
            if len(cut) > 40:
                kept.append(cut.rstrip("…"))
        break
    return head + "\n" + "\n".join(kept)


class Drafter:
    """Drafts replies through one pipeline (retriever, triager, chat model, prompts, queue)."""

    def __init__(self, pipeline: Pipeline, prompts: Prompts | None = None, tone_examples: Any = None) -> None:
        self.pipeline = pipeline
        self.settings = pipeline.settings
        self.prompts = prompts or load_prompts(str(self.settings.prompts_dir) if self.settings.prompts_dir else None)
        self.book = KnowledgeBook(self.settings.kb_dir)
        self.phrases: PhraseBook = load_phrase_book(
            str(self.settings.reply_phrases) if self.settings.reply_phrases else None)
        # Optional: anything with ``example_for(inbound, triage) -> str | None`` (approved replies as tone examples).
        self.tone_examples = tone_examples

    # -- prompt pieces -----------------------------------------------------------------------
    def system_prompt(self) -> Rendered:
        """The fixed system prompt (identical across drafts, so its model state is reused)."""
        voice = self.book.section("kb-brand-voice", "In short") or self.prompts.render("draft/default_voice.j2").text
        return self.prompts.render("draft/system.j2", brand=self.settings.brand_name, voice=voice)

    def brand(self) -> str:
        """The brand the replies speak for: the setting, unless it is still the sample's and this knowledge
        base is not the sample's (no brand-voice entry), where a neutral "our" is right."""
        if self.settings.brand_name == SAMPLE_BRAND and self.book.entry("kb-brand-voice") is None:
            return "our"
        return self.settings.brand_name

    def signature(self, language: str = "en") -> str:
        """The sign-off: the knowledge base's voice entry's "Sign-off" section, else the setting (neutral, in
        the customer's language, when the setting is still the sample company's and the knowledge base is
        another one)."""
        own = self.book.section("kb-brand-voice", "Sign-off")
        if own:
            return plain(own)
        if self.settings.agent_signature == SAMPLE_SIGNATURE and self.book.entry("kb-brand-voice") is None:
            own_language = self.phrases.phrases.get(self.phrases.language(language), {})
            return own_language.get("signature") or NEUTRAL_SIGNATURE
        return self.settings.agent_signature

    def _reply_vars(self, inbound: Inbound, triage: Triage, profile: ChannelProfile) -> dict[str, Any]:
        # Where the reply opens with the @handle, the greeting does not repeat the name.
        name = None if self._handle(inbound, profile) else (inbound.author or "").lstrip("@") or None
        return {
            "kind": triage.kind, "sentiment": triage.sentiment, "brand": self.settings.brand_name,
            "greeting": profile.greeting, "name": name if profile.greeting else None, "sign_off": profile.sign_off,
            "signature": self.signature(triage.language), "private": triage.private_info,
            "private_channel": profile.private_channel, "short": profile.max_chars <= 300,
        }

    # -- public API --------------------------------------------------------------------------
    def draft(self, inbound: Inbound, *, on_token: TokenCallback | None = None,
              triage: Triage | None = None) -> Draft:
        """A draft for one inbound message (status ``pending``, or ``escalated`` for a crisis).

        A possible crisis stays ``pending`` but is never answered with a fix: it gets the holding message,
        ``needs_attention`` and a flag naming the reason and the customer's words, so a person decides.
        """
        start = time.perf_counter()
        if not inbound.text.strip():
            raise UserError("the message is empty")
        profile = self.settings.channel(inbound.channel)
        triage = triage or self.pipeline.triager.triage(inbound)
        handle = self._handle(inbound, profile)
        limit = profile.max_chars - (len(handle) + 1 if handle else 0)
        base = {"channel": inbound.channel, "inbound": inbound, "triage": triage, "kind": "reply",
                "model": self._model_name()}
        if triage.crisis or triage.crisis_level == "crisis":
            return self._crisis(inbound, triage, handle, limit, base, start)
        if triage.possible_crisis:
            return self._possible_crisis(inbound, triage, handle, limit, base, start)
        draft = self._ordinary(inbound, triage, profile, handle, limit, base, start, on_token)
        if triage.crisis_note:  # screened and cleared: the reviewer sees why
            draft = replace(draft, flags=(*draft.flags, f"crisis screen cleared: {triage.crisis_note}"))
        return draft

    def _ordinary(self, inbound: Inbound, triage: Triage, profile: ChannelProfile, handle: str, limit: int,
                  base: dict[str, Any], start: float, on_token: TokenCallback | None) -> Draft:
        if triage.kind == "spam":
            return Draft(text="", cited_ids=(), retrieved_ids=(), confidence=0.0, template="", template_hash="",
                         latency_ms=_ms(start), status="skipped", flags=("spam: no reply recommended",), **base)
        query = redact(inbound.text)
        if self.settings.draft_mode == "compose" and triage.language != self.settings.kb_language:
            query = self._translate_query(query, triage.language)
        retrieval = self.pipeline.retriever.search(query, filters=Filters(exclude_kinds=("guideline",)))
        # The crisis policy and the brand voice are instructions for the team, never an answer to a customer.
        grounded = [p for p in self.pipeline.retriever.grounded_passages(retrieval) if p.id not in NEVER_ANSWER]
        use = grounded[:PASSAGES_IN_PROMPT]
        compose = self.settings.draft_mode == "compose"
        if not use and triage.kind not in NO_CITATION_KINDS:
            if compose:
                self._record_gap(inbound, triage, retrieval)
                return self._compose(inbound, triage, retrieval, [], profile, handle, limit, base, start, on_token,
                                     gap=True)
            return self._no_answer(inbound, triage, retrieval, profile, handle, limit, base, start)
        if compose:
            return self._compose(inbound, triage, retrieval, use, profile, handle, limit, base, start, on_token)
        return self._generate(inbound, triage, retrieval, use, profile, handle, limit, base, start, on_token)

    def rewrite(self, text: str, action: str, *, channel: str, language: str | None = None,
                on_token: TokenCallback | None = None) -> str:
        """An existing draft made shorter, warmer, more formal, or translated; facts kept."""
        if action not in REWRITES:
            raise UserError(f"unknown rewrite {action!r}; choose one of {', '.join(REWRITES)}")
        if action == "translate" and not (language and language.strip()):
            raise UserError("translate needs a target language")
        if not text.strip():
            raise UserError("there is no draft text to rewrite")
        profile = self.settings.channel(channel)
        handle_match = re.match(r"^(@\w+)\s+", text)
        handle = handle_match.group(1) if handle_match else ""
        body = text[handle_match.end():] if handle_match else text
        limit = profile.max_chars - (len(handle) + 1 if handle else 0)
        rendered = self.prompts.render(
            "rewrite.j2", brand=self.settings.brand_name, channel=channel, max_chars=limit,
            instruction=REWRITES[action].format(language=language or ""), text=body)
        # The draft being rewritten is the only source: its facts, numbers and offers may stay, nothing new.
        source = Passage(id="draft", chunk_id="draft", title="", text=body, kind="draft", official=True, score=1.0)
        code = next((c for c, n in LANGUAGE_NAMES.items() if n.lower() == (language or "").strip().lower()), None)

        def check(raw: str) -> tuple[str, list[str]]:
            new = strip_handle(parse_reply(raw).text)
            if action == "shorter" and len(new) >= len(body):
                new = fit_length(body, max(len(body) // 2, 40))
            problems = check_reply(new, cited=("draft",), retrieved=[source], message="", max_chars=limit,
                                   system_prompt=rendered.text, needs_citation=False, private_public=False)
            if action == "translate" and new and code:
                from copilot.triage.language import detect_language

                if detect_language(new, default="en") != code:
                    problems.append(f"it is not in {language}")
            if not new:
                problems.append("it is empty")
            return new, [p for p in problems if "SOURCES must list" not in p]

        result = generate(
            self.pipeline.chat, [HumanMessage(rendered.text)], check,
            lambda problems: self.prompts.render("rewrite_retry.j2", error="; ".join(problems)).text,
            max_tokens=self._max_tokens(limit), on_token=on_token, retry_sampling=self._retry_sampling())
        if not result.ok:
            raise ProviderError(f"The {action} rewrite could not be used, so the draft is unchanged: "
                                f"{agent_words(list(result.final.problems))}. Edit the draft by hand or try "
                                "another rewrite.")
        new = result.final.value
        return f"{handle} {new}".strip() if handle else new

    def submit(self, draft: Draft, *, by: str) -> Any:
        """Hold the draft in the review queue; nothing is posted without approval."""
        return self.pipeline.queue.submit(draft, by=by)

    # -- paths -------------------------------------------------------------------------------
    def _crisis(self, inbound: Inbound, triage: Triage, handle: str, limit: int, base: dict[str, Any],
                start: float) -> Draft:
        text, rendered, cited = self._holding(triage, handle, limit)
        triage = replace(triage, priority=1, priority_score=100.0)
        return Draft(text=text, cited_ids=cited, retrieved_ids=(), confidence=1.0, template=rendered.template,
                     template_hash=rendered.template_hash, latency_ms=_ms(start), status="escalated",
                     needs_attention=True, flags=(f"crisis: {triage.crisis_reason or 'unspecified'}",),
                     **{**base, "triage": triage})

    def _possible_crisis(self, inbound: Inbound, triage: Triage, handle: str, limit: int, base: dict[str, Any],
                         start: float) -> Draft:
        """A possible crisis stays pending for a person to decide: the careful holding message, never a fix."""
        text, rendered, cited = self._holding(triage, handle, limit)
        span = " ".join((triage.crisis_span or "").split()) or "no span recorded"
        flags = [f"possible crisis: {triage.crisis_reason or 'unspecified'} — a person decides ({span})"]
        if triage.crisis_note:
            flags.append(f"why only possible: {triage.crisis_note}")
        return Draft(text=text, cited_ids=cited, retrieved_ids=(), confidence=0.5, template=rendered.template,
                     template_hash=rendered.template_hash, latency_ms=_ms(start), status="pending",
                     needs_attention=True, flags=tuple(flags), **base)

    def _holding(self, triage: Triage, handle: str, limit: int) -> tuple[str, Rendered, tuple[str, ...]]:
        """The crisis policy's holding message (the safety one for a danger), the text and what it cites."""
        reason = (triage.crisis_reason or "").lower()
        safety = reason.startswith(("danger", "safety"))
        # A policy may add a message for one kind of danger ("Safety holding message (gas)"); else the general one.
        detail = reason.partition(":")[2].strip()
        headings = [f"Safety holding message ({detail})"] if safety and detail else []
        headings += ["Safety holding message"] if safety else []
        headings.append("Holding message")
        language = self.phrases.language(triage.language)
        # The policy's own text in the customer's language ("Holding message (es)") first, then its general
        # text for an English message, else the phrase book's text in the customer's language.
        wanted = [f"{h} ({language})" for h in headings] + (headings if language == "en" else [])
        holding = next((text for h in wanted if (text := self.book.section("kb-crisis-policy", h))), None)
        holding = holding or (self.phrases.get(language, "crisis") if language != "en" else None)
        holding = holding or self.prompts.render("replies/crisis_default.j2").text
        rendered = self.prompts.render("replies/crisis.j2", holding=plain(holding))
        text = self._with_handle(fit_length(rendered.text, limit), handle)
        cited = ("kb-crisis-policy",) if self.book.entry("kb-crisis-policy") else ()
        return text, rendered, cited

    def _no_answer(self, inbound: Inbound, triage: Triage, retrieval: Retrieval, profile: ChannelProfile,
                   handle: str, limit: int, base: dict[str, Any], start: float) -> Draft:
        self._record_gap(inbound, triage, retrieval)
        rendered = self.prompts.render("replies/no_answer.j2", **self._reply_vars(inbound, triage, profile))
        text = self._with_handle(fit_length(rendered.text, limit), handle)
        return Draft(text=text, cited_ids=(), retrieved_ids=tuple(retrieval.ids), confidence=0.2,
                     template=rendered.template, template_hash=rendered.template_hash, latency_ms=_ms(start),
                     knowledge_gap=True, needs_attention=True, flags=("no grounded answer: knowledge gap",),
                     **base)

    def _generate(self, inbound: Inbound, triage: Triage, retrieval: Retrieval, use: list[Passage],
                  profile: ChannelProfile, handle: str, limit: int, base: dict[str, Any], start: float,
                  on_token: TokenCallback | None) -> Draft:
        system = self.system_prompt()
        message = redact(inbound.text)
        shown = [replace(p, text=focus(p)) for p in use]
        user = self.prompts.render(
            "draft/user.j2", channel=inbound.channel, style=profile.style, max_chars=limit,
            author=inbound.author if profile.use_handle else None, kind=triage.kind, sentiment=triage.sentiment,
            private=triage.private_info and profile.public, private_channel=profile.private_channel,
            passages=shown, any_unofficial=any(not p.official for p in shown), message=message,
            example=self.tone_examples.example_for(inbound, triage) if self.tone_examples else None)
        needs_citation = bool(use) and triage.kind not in NO_CITATION_KINDS
        check = {"retrieved": use, "message": inbound.text, "max_chars": limit, "system_prompt": system.text,
                 "needs_citation": needs_citation, "private_public": triage.private_info and profile.public}
        cite_allowed = bool(use)

        def check_answer(raw: str) -> tuple[tuple[str, tuple[str, ...]], list[str]]:
            parsed = parse_reply(raw)
            text = drop_echo(trim_cut_off(strip_handle(parsed.text), limit, cut_off=parsed.cut_off), inbound.text)
            if profile.max_chars <= 600:  # social comments are one block of text
                text = " ".join(text.split())
            cited = parsed.cited if cite_allowed else ()
            problems = check_reply(text, cited=cited, **check)
            if problems and all("the channel allows" in p for p in problems):
                # Only too long: cutting at a sentence boundary keeps it grounded; check the cut version.
                cut = fit_length(text, limit)
                if not check_reply(cut, cited=cited, **check):
                    text, problems = cut, []
            return (text, tuple(cited)), problems

        result = generate(
            self.pipeline.chat, [SystemMessage(system.text), HumanMessage(user.text)], check_answer,
            lambda problems: self.prompts.render("draft/retry.j2", error="; ".join(problems)).text,
            max_tokens=self._max_tokens(limit), response_format=self._reply_schema([p.id for p in use], limit),
            on_token=on_token, retry_sampling=self._retry_sampling())
        final = result.final
        top = max((p.score for p in use), default=0.5)
        flags: list[str] = []
        if result.ok:
            (text, cited), template, thash = final.value, user.template, user.template_hash
            confidence = top if len(result.attempts) == 1 else top * 0.85
            if len(result.attempts) > 1:
                flags.append("retried: " + "; ".join(result.first_problems))
            needs_attention = False
        else:
            text, cited, rendered = self._fallback(inbound, triage, use, profile, limit)
            template, thash = rendered.template, rendered.template_hash
            confidence = top * 0.6
            flags.append("fallback: " + "; ".join(final.problems))
            needs_attention = True
        return Draft(text=self._with_handle(text, handle), cited_ids=tuple(cited),
                     retrieved_ids=tuple(retrieval.ids), confidence=round(confidence, 3), template=template,
                     template_hash=thash, latency_ms=_ms(start), needs_attention=needs_attention,
                     flags=tuple(flags), first_token_ms=result.first_token_ms, **base)

    # -- the narrow job: facts chosen here, the model writes the opening ---------------------------
    def _phrase_table(self, language: str, profile: ChannelProfile) -> dict[str, str]:
        values = {"channel": profile.private_channel, "brand": self.brand()}
        return {key: self.phrases.get(language, key, **values) for key in self.phrases.phrases["en"]}

    def _opener(self, inbound: Inbound, triage: Triage, language: str, fallback: str,
                on_token: TokenCallback | None) -> tuple[str, list[str], float | None]:
        """One or two opening sentences by the model, checked; one retry with the reason; else ``fallback``."""
        system = self.prompts.render("draft/opener_system.j2", brand=self.brand())
        name = LANGUAGE_NAMES.get(language, "the customer's language")
        example = self.tone_examples.example_for(inbound, triage) if self.tone_examples else None
        user = self.prompts.render("draft/opener.j2", kind=triage.kind, sentiment=triage.sentiment,
                                   language=name, message=redact(inbound.text)[:1200], example=example)
        # What the model must not hand back: its instructions, the examples and the retry's own wording.
        instructions = system.text + "\n" + self.prompts.render("draft/opener_retry.j2", error="",
                                                                 language=name).text

        def check(raw: str) -> tuple[str, list[str]]:
            text = clean_opener(raw)
            return text, opener_problems(text, message=inbound.text, language=language, prompt=instructions,
                                         ack_words=self.phrases.get(language, "ack_words"))

        result = generate(
            self.pipeline.chat, [SystemMessage(system.text), HumanMessage(user.text)], check,
            lambda problems: self.prompts.render("draft/opener_retry.j2", error="; ".join(problems),
                                                 language=name).text,
            max_tokens=64, on_token=on_token, retry_sampling=self._retry_sampling(),
            stop=["Message:", "\nOpening"])
        if result.ok:
            return result.final.value, [], result.first_token_ms
        return fallback, list(result.final.problems), result.first_token_ms

    def _compose(self, inbound: Inbound, triage: Triage, retrieval: Retrieval, use: list[Passage],
                 profile: ChannelProfile, handle: str, limit: int, base: dict[str, Any], start: float,
                 on_token: TokenCallback | None, *, gap: bool = False) -> Draft:
        """The reply as the model's opening around facts chosen from the top passage, in the customer's language."""
        language = self.phrases.language(triage.language)
        t = self._phrase_table(language, profile)
        passage = use[0] if use and triage.kind not in ("praise", "feedback") else None
        ack = {"complaint": "ack_complaint", "question": "ack_question", "feedback": "ack_feedback",
               "praise": "ack_praise"}.get(triage.kind, "ack_other")
        if triage.sentiment == "negative" and triage.kind in ("question", "conversation"):
            ack = "ack_complaint"
        opener, opener_issues, first = self._opener(inbound, triage, language, t[ack], on_token)
        block = profile.max_chars > 600
        variables = {**self._reply_vars(inbound, triage, profile), "t": t, "sep": "\n\n" if block else " ",
                     "block": block, "private": triage.private_info and profile.public}
        variables["opener"] = after_greeting(opener, language, inbound.text) if variables["greeting"] else opener
        if gap:
            offers = [f"{t['no_answer']} {t['offer']}", t["no_answer"]]
        elif triage.kind == "praise":
            offers = [t["praise_close"]]
        elif triage.kind == "feedback":
            offers = [f"{t['feedback_close']} {t['offer']}", t["feedback_close"]]
        elif passage is not None and passage.kind in ("fix", "workaround"):
            offers = [t["offer_fix"], t["offer_short"]]
        else:
            offers = [t["offer"], t["offer_short"]]
        lead = plain_lead = ""
        source_language = language  # the passage's language; another than the customer's needs a note
        if passage is not None:
            lead = t["lead_workaround"] if not passage.official else t["lead"] if passage.kind in ("fix", "workaround") else ""
            plain_lead = lead
            source_language = self._passage_language(passage)
            if language != "en" and source_language != language:
                lead = f"{lead} {t['guide_language']}".strip()
        facts: Facts | None = None
        rendered = None
        whole = self._whole(passage) if passage is not None else None
        answer = answer_part(whole)[1] if whole is not None else ""
        for offer in offers:
            frame = self.prompts.render("replies/composed.j2", **variables, offer=offer, lead=lead,
                                        facts="~" if passage else "")
            # Long channels get the answer, not the whole article.
            budget = min(limit - len(frame.text) + 1, FACTS_MAX_CHARS)
            for _ in range(3):  # numbering and joins cost a little more than the units' own length
                text_facts = ""
                if whole is not None:
                    facts = select_facts(whole, answer, inbound.text, budget)
                    text_facts = facts.render(inline=not block)
                rendered = self.prompts.render("replies/composed.j2", **variables, offer=offer, lead=lead,
                                               facts=text_facts)
                over = len(" ".join(rendered.text.split()) if not block else rendered.text.strip()) - limit
                if over <= 0 or whole is None:
                    break
                budget -= over + 4
            if len(rendered.text.strip()) <= limit:
                break
        assert rendered is not None
        flags: list[str] = []
        grounding_text = ""
        if self.settings.translate_facts and source_language != language and facts is not None and text_facts:
            local = self._translate_facts(text_facts, language, source_language)
            if isinstance(local, str):
                again = self.prompts.render("replies/composed.j2", **variables, offer=offer, lead=plain_lead,
                                            facts=local)
                grounding_text = " ".join(rendered.text.split()) if not block else rendered.text.strip()
                rendered = again
                flags.append("the facts were translated from the knowledge base by the model: check them against "
                             "the source")
            else:
                flags.append(f"the facts stay in the knowledge base's language: the translation {local[0]}")
        text = rendered.text.strip()
        if not block:
            text = " ".join(text.split())
        if len(text) > limit:
            text = fit_length(text, limit)
        cited = (passage.id,) if passage is not None else ()
        needs_attention = gap
        if gap:
            flags.append("no grounded answer: knowledge gap")
        if opener_issues:
            flags.append("opening from the template: " + "; ".join(opener_issues))
        if facts is not None and facts.skipped_tried:
            flags.append("left out what the customer already tried: " + " | ".join(facts.skipped_tried)[:200])
        problems = check_reply(text, cited=cited, retrieved=[whole] if whole else use, message=inbound.text,
                               max_chars=limit,
                               system_prompt="", needs_citation=False,
                               private_public=triage.private_info and profile.public)
        if problems:
            flags.append("check: " + "; ".join(problems))
            needs_attention = True
        top = max((p.score for p in use), default=0.5)
        confidence = 0.2 if gap else top * (0.85 if opener_issues else 1.0)
        return Draft(text=self._with_handle(text, handle), cited_ids=cited, retrieved_ids=tuple(retrieval.ids),
                     confidence=round(confidence, 3), template=rendered.template,
                     template_hash=rendered.template_hash, latency_ms=_ms(start), needs_attention=needs_attention,
                     knowledge_gap=gap, flags=tuple(flags), first_token_ms=first,
                     grounding_text=self._with_handle(grounding_text, handle) if grounding_text else "", **base)

    def _translate_facts(self, text: str, language: str, source: str) -> str | list[str]:
        """The chosen facts in the customer's language, or why the model's translation cannot be used.

        One call, checked (numbers, lines, whole sentences, language); a failed translation keeps the
        original facts with a note, never a half-translated step.
        """
        name = LANGUAGE_NAMES.get(language, language)
        rendered = self.prompts.render("draft/translate_facts.j2", language=name,
                                       source=LANGUAGE_NAMES.get(source, source), text=text)
        try:
            raw, _ = self._call([HumanMessage(rendered.text)], None, min(480, len(text) // 2 + 60),
                                stop=["</text>", "\n\n\n"])
        except ProviderError as exc:
            return [f"failed ({exc})"]
        out = "\n".join(" ".join(line.split()) for line in raw.strip().strip('"').splitlines() if line.strip())
        problems = translation_problems(text, out, language)
        return problems if problems else out

    def _translate_query(self, text: str, language: str) -> str:
        """The message in the knowledge base's language, for retrieval only (the embedder is English-only).

        The original words are kept beside the translation, so names and codes still match lexically.
        """
        target = LANGUAGE_NAMES.get(self.settings.kb_language, self.settings.kb_language)
        rendered = self.prompts.render("draft/translate_query.j2", language=target, message=text[:1200])
        try:
            raw, _ = self._call([HumanMessage(rendered.text)], None, max(48, min(len(text) // 2, 200)),
                                stop=["\n\n", "</message>"])
        except ProviderError:
            return text
        translated = " ".join(raw.strip().strip('"').split())
        if len(translated) < 8 or translated.lower() == text.lower():
            return text
        return f"{translated}\n{text}"

    def _whole(self, passage: Passage) -> Passage:
        """The passage with its entry's whole text: a chunk may hold only part of the steps."""
        entry = self.book.entry(passage.id)
        if entry is None or not entry.body.strip():
            return passage
        return replace(passage, text=f"{entry.title}\n{entry.body}")

    @staticmethod
    def _passage_language(passage: Passage) -> str:
        from copilot.triage.language import detect_language

        return detect_language(passage.text[:600])

    def _fallback(self, inbound: Inbound, triage: Triage, use: list[Passage], profile: ChannelProfile,
                  limit: int) -> tuple[str, tuple[str, ...], Rendered]:
        """The deterministic grounded reply: the knowledge base's fix inside a reply template."""
        variables = self._reply_vars(inbound, triage, profile)
        if not use or triage.kind in NO_CITATION_KINDS:
            name = "replies/praise.j2" if triage.kind == "praise" else "replies/feedback.j2"
            rendered = self.prompts.render(name, **variables)
            return fit_length(rendered.text, limit), (), rendered
        passage = use[0]
        fix = fix_summary(passage)
        variables.update(unofficial=not passage.official, url=passage.url if profile.max_chars > 300 else None,
                         answer_kind=passage.kind)
        rendered = self.prompts.render("replies/fallback.j2", fix=fix, **variables)
        over = len(rendered.text) - limit
        if over > 0:
            fix = fit_length(fix, max(len(fix) - over - 1, 30))
            rendered = self.prompts.render("replies/fallback.j2", fix=fix, **variables)
        return fit_length(rendered.text, limit), (passage.id,), rendered

    # -- helpers -----------------------------------------------------------------------------
    def _reply_schema(self, ids: list[str], limit: int) -> dict[str, Any] | None:
        """A JSON schema for the answer: sources limited to the shown passages, reply to the channel length."""
        if not self.settings.structured_output:
            return None
        # "cite" sorts before "reply", so grammar-constrained output names its sources first and a reply cut
        # off by the token limit still carries them.
        cite: dict[str, Any] = {"type": "array", "items": {"type": "string", "enum": ids}, "maxItems": 2}
        if not ids:
            cite = {"type": "array", "maxItems": 0}
        schema = {"type": "object", "properties": {"cite": cite, "reply": {"type": "string"}},
                  "required": ["cite", "reply"], "additionalProperties": False}
        return {"type": "json_schema", "json_schema": {"name": "reply", "schema": schema}}

    def _call(self, messages: list[BaseMessage], on_token: TokenCallback | None,
              max_tokens: int, **sampling: Any) -> tuple[str, float | None]:
        answer = call(self.pipeline.chat, messages, max_tokens=max_tokens, on_token=on_token, **sampling)
        return answer.text, answer.first_token_ms

    def _retry_sampling(self) -> dict[str, Any]:
        """The retry samples warmer and with another seed: a small model given the same prompt at a low
        temperature tends to repeat its mistake word for word."""
        return {"temperature": 0.8, "seed": self.settings.seed + 1}

    def _max_tokens(self, limit: int) -> int:
        return max(64, min(self.settings.max_tokens, limit // 3 + 48))

    def _handle(self, inbound: Inbound, profile: ChannelProfile) -> str:
        if not (profile.use_handle and inbound.author):
            return ""
        return "@" + inbound.author.lstrip("@").split()[0]

    @staticmethod
    def _with_handle(text: str, handle: str) -> str:
        return f"{handle} {text}" if handle else text

    def _model_name(self) -> str:
        chat = self.pipeline._chat or self.pipeline.__dict__.get("chat")
        if chat is None:
            return self.settings.chat_backend
        return str(getattr(chat, "model_name", None) or getattr(chat, "model", None) or type(chat).__name__)

    def _record_gap(self, inbound: Inbound, triage: Triage, retrieval: Retrieval) -> None:
        """Append an unanswered question to the knowledge-gap log (redacted)."""
        best = retrieval.passages[0] if retrieval.passages else None
        record = {"time": dt.datetime.now(dt.UTC).isoformat(), "text": redact(inbound.text),
                  "channel": inbound.channel, "kind": triage.kind,
                  "best_id": best.id if best else None, "best_score": best.score if best else None}
        path = self.settings.data_dir / "knowledge_gaps.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")


_AGENT_WORDS = (
    ("repeats the instructions", "the model wrote its instructions instead of the reply"),
    ("characters; the channel allows", "it came out too long for this channel"),
    ("personal data", "it would repeat the customer's personal data"),
    ("which no cited passage", "it added a fact or a number the draft does not have"),
    ("copies the customer", "it repeated the customer's message"),
    ("refuses", "the model refused"),
    ("empty or too short", "the model returned nothing usable"),
    ("is not in", "it did not come out in the language asked for"),
)


def agent_words(problems: list[str]) -> str:
    """Validation problems said for the agent, not for the model."""
    said = [next((words for key, words in _AGENT_WORDS if key in p), p) for p in problems]
    return "; ".join(dict.fromkeys(said)) or "the model returned nothing usable"


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 1)
