"""Support reply drafting: triage, retrieve, prompt, generate, validate, retry once, then fall back.

The :class:`Drafter` gets the parts it uses (chat model, retriever, triager, prompts, knowledge book,
phrase book, gap log, tone examples); :mod:`copilot.pipeline` builds them. A message is redacted once,
where it enters :meth:`Drafter.draft`; everything after it sees the redacted view in :class:`Job`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage

from copilot.compose import (
    LANGUAGE_NAMES,
    Facts,
    PhraseBook,
    after_greeting,
    clean_opener,
    opener_problems,
    select_facts,
)
from copilot.config import ChannelProfile, Settings
from copilot.errors import UserError
from copilot.gaps import GapLog
from copilot.generation import TokenCallback, generate, model_name
from copilot.guardrails import (
    check_reply,
    drop_echo,
    fit_length,
    parse_reply,
    strip_handle,
    trim_cut_off,
)
from copilot.holding import holding_message
from copilot.knowledge_book import KnowledgeBook
from copilot.passages import answer_part, fix_summary, focus
from copilot.pii import redact
from copilot.prompts import Prompts, Rendered
from copilot.retrieve import Filters, Retriever
from copilot.rewrite import Rewriter, reply_max_tokens, retry_sampling
from copilot.signature import signature_for
from copilot.thread import Thread
from copilot.translate import Translator
from copilot.types import Draft, Inbound, Passage, Retrieval, Triage, TriageStage, Turn

PASSAGES_IN_PROMPT = 2
FACTS_MAX_CHARS = 650
NEVER_ANSWER = ("kb-crisis-policy", "kb-brand-voice")
SAMPLE_BRAND = "Lumio"

NO_CITATION_KINDS = ("praise", "conversation", "feedback")


class ToneExampleSource(Protocol):
    def example_for(self, inbound: Inbound, triage: Triage) -> str | None: ...


@dataclass(frozen=True)
class Job:
    """One message being drafted: the message, its redacted text, its labels and the channel's limits."""

    inbound: Inbound
    message: str  # the customer's text, redacted once where it entered
    triage: Triage
    profile: ChannelProfile
    handle: str
    limit: int
    start: float
    on_token: TokenCallback | None
    model: str
    thread: Thread = field(default_factory=Thread)  # the conversation's earlier turns (none: a first message)

    def draft(self, **fields: Any) -> Draft:
        """A draft of this job, with the fields every path shares."""
        fields.setdefault("triage", self.triage)
        return Draft(channel=self.inbound.channel, inbound=self.inbound, kind="reply", model=self.model,
                     latency_ms=_ms(self.start), **fields)


class Drafter:
    """Drafts support replies from the parts it is given; :mod:`copilot.pipeline` wires them."""

    def __init__(self, settings: Settings, *, chat: BaseChatModel, retriever: Retriever, triager: TriageStage,
                 prompts: Prompts, book: KnowledgeBook, phrases: PhraseBook, gaps: GapLog,
                 tone_examples: ToneExampleSource | None = None) -> None:
        self.settings = settings
        self.chat = chat
        self.retriever = retriever
        self.triager = triager
        self.prompts = prompts
        self.book = book
        self.phrases = phrases
        self.gaps = gaps
        self.tone_examples = tone_examples  # approved replies as tone examples, when the team has some
        self.translator = Translator(chat, prompts)
        self.rewriter = Rewriter(settings, chat, prompts)

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
        """The sign-off (see :func:`signature_for`)."""
        return signature_for(self.settings, self.book, self.phrases, language)

    def _reply_vars(self, job: Job) -> dict[str, Any]:
        inbound, triage, profile = job.inbound, job.triage, job.profile
        # Where the reply opens with the @handle, the greeting does not repeat the name.
        name = None if job.handle else (inbound.author or "").lstrip("@") or None
        return {
            "kind": triage.kind, "sentiment": triage.sentiment, "brand": self.settings.brand_name,
            "greeting": profile.greeting, "name": name if profile.greeting else None, "sign_off": profile.sign_off,
            "signature": self.signature(triage.language), "private": triage.private_info,
            "private_channel": profile.private_channel, "short": profile.max_chars <= 300,
        }

    # -- public API --------------------------------------------------------------------------
    def draft(self, inbound: Inbound, *, on_token: TokenCallback | None = None,
              triage: Triage | None = None, history: Sequence[Turn] = ()) -> Draft:
        """A draft for one inbound message (status ``pending``, or ``escalated`` for a crisis).

        ``history`` is the conversation so far (``ReviewQueue.thread_for``): a follow-up is retrieved with the
        earlier messages and never repeats what we already told them. The small model's opening is written
        from the message alone: shown the thread it wrote about its own instructions ("I didn't provide any
        opening"); a full reply (``draft_mode = "full"``, a larger model) gets a summary of the thread.

        A possible crisis stays ``pending`` but is never answered with a fix: it gets the holding message,
        ``needs_attention`` and a flag naming the reason and the customer's words, so a person decides.
        """
        start = time.perf_counter()
        if not inbound.text.strip():
            raise UserError("the message is empty")
        profile = self.settings.channel(inbound.channel)
        triage = triage or self.triager.triage(inbound)
        handle = self._handle(inbound, profile)
        job = Job(inbound=inbound, message=redact(inbound.text), triage=triage, profile=profile, handle=handle,
                  limit=profile.max_chars - (len(handle) + 1 if handle else 0), start=start, on_token=on_token,
                  model=self.model_name(), thread=Thread.of(history, inbound.id, inbound.text))
        if triage.crisis or triage.crisis_level == "crisis":
            return self._crisis(job)
        if triage.possible_crisis:
            return self._possible_crisis(job)
        draft = self._ordinary(job)
        if triage.crisis_note:  # screened and cleared: the reviewer sees why
            draft = replace(draft, flags=(*draft.flags, f"crisis screen cleared: {triage.crisis_note}"))
        if job.thread:  # the reviewer knows the draft read the conversation
            note = f"follow-up: drafted with the {len(job.thread.turns)} earlier message(s) of the conversation"
            draft = replace(draft, flags=(*draft.flags, note))
        return draft

    def _ordinary(self, job: Job) -> Draft:
        triage = job.triage
        if triage.kind == "spam":
            return job.draft(text="", cited_ids=(), retrieved_ids=(), confidence=0.0, template="",
                             template_hash="", status="skipped", flags=("spam: no reply recommended",))
        query = f"{job.thread.customer_context()} {job.message}".strip()
        if self.settings.draft_mode == "compose" and triage.language != self.settings.kb_language:
            query = self.translator.query(query, self.settings.kb_language)
        retrieval = self.retriever.search(query, filters=Filters(exclude_kinds=("guideline",)))
        # The crisis policy and the brand voice are instructions for the team, never an answer to a customer.
        grounded = [p for p in self.retriever.grounded_passages(retrieval) if p.id not in NEVER_ANSWER]
        use = grounded[:PASSAGES_IN_PROMPT]
        compose = self.settings.draft_mode == "compose"
        if not use and triage.kind not in NO_CITATION_KINDS:
            self._record_gap(job, retrieval)
            if compose:
                return self._compose(job, retrieval, [], gap=True)
            return self._no_answer(job, retrieval)
        if compose:
            return self._compose(job, retrieval, use)
        return self._generate(job, retrieval, use)

    def rewrite(self, text: str, action: str, *, channel: str, language: str | None = None,
                on_token: TokenCallback | None = None) -> str:
        """An existing draft made shorter, warmer, more formal, or translated (:mod:`copilot.rewrite`)."""
        return self.rewriter.rewrite(text, action, channel=channel, language=language, on_token=on_token)

    # -- paths -------------------------------------------------------------------------------
    def _crisis(self, job: Job) -> Draft:
        text, rendered, cited = self._holding(job)
        triage = replace(job.triage, priority=1, priority_score=100.0)
        return job.draft(text=text, cited_ids=cited, retrieved_ids=(), confidence=1.0, template=rendered.template,
                         template_hash=rendered.template_hash, status="escalated", needs_attention=True,
                         flags=(f"crisis: {triage.crisis_reason or 'unspecified'}",), triage=triage)

    def _possible_crisis(self, job: Job) -> Draft:
        """A possible crisis stays pending for a person to decide: the careful holding message, never a fix."""
        text, rendered, cited = self._holding(job)
        triage = job.triage
        span = " ".join((triage.crisis_span or "").split()) or "no span recorded"
        flags = [f"possible crisis: {triage.crisis_reason or 'unspecified'} — a person decides ({span})"]
        if triage.crisis_note:
            flags.append(f"why only possible: {triage.crisis_note}")
        return job.draft(text=text, cited_ids=cited, retrieved_ids=(), confidence=0.5, template=rendered.template,
                         template_hash=rendered.template_hash, status="pending", needs_attention=True,
                         flags=tuple(flags))

    def _holding(self, job: Job) -> tuple[str, Rendered, tuple[str, ...]]:
        text, rendered, cited = holding_message(job.triage, job.limit, book=self.book, phrases=self.phrases,
                                                prompts=self.prompts)
        return self._with_handle(text, job.handle), rendered, cited

    def _no_answer(self, job: Job, retrieval: Retrieval) -> Draft:
        rendered = self.prompts.render("replies/no_answer.j2", **self._reply_vars(job))
        text = self._with_handle(fit_length(rendered.text, job.limit), job.handle)
        return job.draft(text=text, cited_ids=(), retrieved_ids=tuple(retrieval.ids), confidence=0.2,
                         template=rendered.template, template_hash=rendered.template_hash, knowledge_gap=True,
                         needs_attention=True, flags=("no grounded answer: knowledge gap",))

    def _generate(self, job: Job, retrieval: Retrieval, use: list[Passage]) -> Draft:
        inbound, triage, profile, limit = job.inbound, job.triage, job.profile, job.limit
        system = self.system_prompt()
        shown = [replace(p, text=focus(p)) for p in use]
        user = self.prompts.render(
            "draft/user.j2", channel=inbound.channel, style=profile.style, max_chars=limit,
            author=inbound.author if profile.use_handle else None, kind=triage.kind, sentiment=triage.sentiment,
            private=triage.private_info and profile.public, private_channel=profile.private_channel,
            passages=shown, any_unofficial=any(not p.official for p in shown), message=job.message,
            thread=job.thread.summary() or None,
            example=self.tone_examples.example_for(inbound, triage) if self.tone_examples else None)
        needs_citation = bool(use) and triage.kind not in NO_CITATION_KINDS
        private_public = triage.private_info and profile.public
        cite_allowed = bool(use)

        def checked(text: str, cited: tuple[str, ...]) -> list[str]:
            return check_reply(text, cited=cited, retrieved=use, message=inbound.text, max_chars=limit,
                               system_prompt=system.text, needs_citation=needs_citation,
                               private_public=private_public)

        def check_answer(raw: str) -> tuple[tuple[str, tuple[str, ...]], list[str]]:
            parsed = parse_reply(raw)
            text = drop_echo(trim_cut_off(strip_handle(parsed.text), limit, cut_off=parsed.cut_off), inbound.text)
            if profile.max_chars <= 600:  # social comments are one block of text
                text = " ".join(text.split())
            cited = tuple(parsed.cited) if cite_allowed else ()
            problems = checked(text, cited)
            if problems and all("the channel allows" in p for p in problems):
                # Only too long: cutting at a sentence boundary keeps it grounded; check the cut version.
                cut = fit_length(text, limit)
                if not checked(cut, cited):
                    text, problems = cut, []
            return (text, cited), problems

        result = generate(
            self.chat, [SystemMessage(system.text), HumanMessage(user.text)], check_answer,
            lambda problems: self.prompts.render("draft/retry.j2", error="; ".join(problems)).text,
            max_tokens=reply_max_tokens(self.settings, limit), response_format=self._reply_schema([p.id for p in use], limit),
            on_token=job.on_token, retry_sampling=retry_sampling(self.settings))
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
            text, cited, rendered = self._fallback(job, use)
            template, thash = rendered.template, rendered.template_hash
            confidence = top * 0.6
            flags.append("fallback: " + "; ".join(final.problems))
            needs_attention = True
        return job.draft(text=self._with_handle(text, job.handle), cited_ids=tuple(cited),
                         retrieved_ids=tuple(retrieval.ids), confidence=round(confidence, 3), template=template,
                         template_hash=thash, needs_attention=needs_attention, flags=tuple(flags),
                         first_token_ms=result.first_token_ms)

    # -- the narrow job: facts chosen here, the model writes the opening ---------------------------
    def _phrase_table(self, language: str, profile: ChannelProfile) -> dict[str, str]:
        values = {"channel": profile.private_channel, "brand": self.brand()}
        return {key: self.phrases.get(language, key, **values) for key in self.phrases.phrases["en"]}

    def _opener(self, job: Job, language: str, fallback: str) -> tuple[str, list[str], float | None]:
        """One or two opening sentences by the model, checked; one retry with the reason; else ``fallback``."""
        system = self.prompts.render("draft/opener_system.j2", brand=self.brand())
        name = LANGUAGE_NAMES.get(language, "the customer's language")
        example = self.tone_examples.example_for(job.inbound, job.triage) if self.tone_examples else None
        user = self.prompts.render("draft/opener.j2", kind=job.triage.kind, sentiment=job.triage.sentiment,
                                   language=name, message=job.message[:1200], example=example)
        # What the model must not hand back: its instructions, the examples and the retry's own wording.
        instructions = system.text + "\n" + self.prompts.render("draft/opener_retry.j2", error="",
                                                                 language=name).text

        def check(raw: str) -> tuple[str, list[str]]:
            text = clean_opener(raw)
            return text, opener_problems(text, message=job.inbound.text, language=language, prompt=instructions,
                                         ack_words=self.phrases.get(language, "ack_words"))

        result = generate(
            self.chat, [SystemMessage(system.text), HumanMessage(user.text)], check,
            lambda problems: self.prompts.render("draft/opener_retry.j2", error="; ".join(problems),
                                                 language=name).text,
            max_tokens=64, on_token=job.on_token, retry_sampling=retry_sampling(self.settings),
            stop=["Message:", "\nOpening"])
        if result.ok:
            return result.final.value, [], result.first_token_ms
        return fallback, list(result.final.problems), result.first_token_ms

    def _compose(self, job: Job, retrieval: Retrieval, use: list[Passage], *, gap: bool = False) -> Draft:
        """The reply as the model's opening around facts chosen from the top passage, in the customer's language."""
        inbound, triage, profile, limit = job.inbound, job.triage, job.profile, job.limit
        language = self.phrases.language(triage.language)
        t = self._phrase_table(language, profile)
        passage = use[0] if use and triage.kind not in ("praise", "feedback") else None
        ack = {"complaint": "ack_complaint", "question": "ack_question", "feedback": "ack_feedback",
               "praise": "ack_praise"}.get(triage.kind, "ack_other")
        if triage.sentiment == "negative" and triage.kind in ("question", "conversation"):
            ack = "ack_complaint"
        opener, opener_issues, first = self._opener(job, language, t[ack])
        block = profile.max_chars > 600
        variables = {**self._reply_vars(job), "t": t, "sep": "\n\n" if block else " ",
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
        if whole is not None and job.thread.told:
            told = select_facts(whole, answer, inbound.text, FACTS_MAX_CHARS, told=job.thread.told)
            if not told.units:  # we gave every step of the guide already: no step again, a person takes over
                facts, whole, lead, offers = told, None, "", [f"{t['no_answer']} {t['offer']}", t["no_answer"]]
        for offer in offers:
            frame = self.prompts.render("replies/composed.j2", **variables, offer=offer, lead=lead,
                                        facts="~" if passage else "")
            # Long channels get the answer, not the whole article.
            budget = min(limit - len(frame.text) + 1, FACTS_MAX_CHARS)
            for _ in range(3):  # numbering and joins cost a little more than the units' own length
                text_facts = ""
                if whole is not None:
                    facts = select_facts(whole, answer, inbound.text, budget, told=job.thread.told)
                    text_facts = facts.render(inline=not block)
                fitted = self.prompts.render("replies/composed.j2", **variables, offer=offer, lead=lead,
                                             facts=text_facts)
                over = len(" ".join(fitted.text.split()) if not block else fitted.text.strip()) - limit
                if over <= 0 or whole is None:
                    break
                budget -= over + 4
            rendered = fitted
            if len(fitted.text.strip()) <= limit:
                break
        assert rendered is not None
        flags: list[str] = []
        grounding_text = ""
        if self.settings.translate_facts and source_language != language and facts is not None and text_facts:
            local = self.translator.facts(text_facts, language, source_language)
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
        cited = (passage.id,) if passage is not None and whole is not None else ()
        needs_attention = gap
        if gap:
            flags.append("no grounded answer: knowledge gap")
        if opener_issues:
            flags.append("opening from the template: " + "; ".join(opener_issues))
        if facts is not None and facts.skipped_tried:
            flags.append("left out what the customer already tried: " + " | ".join(facts.skipped_tried)[:200])
        if facts is not None and facts.skipped_told:
            flags.append("left out what we already told them: " + " | ".join(facts.skipped_told)[:200])
            if not facts.units:
                flags.append("the knowledge base has no step we have not already given: a person takes over")
                needs_attention = True
        problems = check_reply(text, cited=cited, retrieved=[whole] if whole else use, message=inbound.text,
                               max_chars=limit,
                               system_prompt="", needs_citation=False,
                               private_public=triage.private_info and profile.public)
        if problems:
            flags.append("check: " + "; ".join(problems))
            needs_attention = True
        top = max((p.score for p in use), default=0.5)
        confidence = 0.2 if gap else top * (0.85 if opener_issues else 1.0)
        return job.draft(text=self._with_handle(text, job.handle), cited_ids=cited,
                         retrieved_ids=tuple(retrieval.ids), confidence=round(confidence, 3),
                         template=rendered.template, template_hash=rendered.template_hash,
                         needs_attention=needs_attention, knowledge_gap=gap, flags=tuple(flags),
                         first_token_ms=first,
                         grounding_text=self._with_handle(grounding_text, job.handle) if grounding_text else "")

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

    def _fallback(self, job: Job, use: list[Passage]) -> tuple[str, tuple[str, ...], Rendered]:
        """The deterministic grounded reply: the knowledge base's fix inside a reply template."""
        variables = self._reply_vars(job)
        limit = job.limit
        if not use or job.triage.kind in NO_CITATION_KINDS:
            name = "replies/praise.j2" if job.triage.kind == "praise" else "replies/feedback.j2"
            rendered = self.prompts.render(name, **variables)
            return fit_length(rendered.text, limit), (), rendered
        passage = use[0]
        fix = fix_summary(passage)
        variables.update(unofficial=not passage.official, url=passage.url if job.profile.max_chars > 300 else None,
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

    @staticmethod
    def _handle(inbound: Inbound, profile: ChannelProfile) -> str:
        if not (profile.use_handle and inbound.author):
            return ""
        return "@" + inbound.author.lstrip("@").split()[0]

    @staticmethod
    def _with_handle(text: str, handle: str) -> str:
        return f"{handle} {text}" if handle else text

    def model_name(self) -> str:
        """The chat model's name, as drafts record it."""
        return model_name(self.chat)

    def _record_gap(self, job: Job, retrieval: Retrieval) -> None:
        """Log the unanswered question (redacted) for the Knowledge screen and the FAQ proposals."""
        best = retrieval.passages[0] if retrieval.passages else None
        self.gaps.record(job.message, channel=job.inbound.channel, kind=job.triage.kind,
                         best_id=best.id if best else None, best_score=best.score if best else None)


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 1)
