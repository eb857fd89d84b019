"""Knowledge gaps and FAQ proposals: what we could not answer, what the team had to add, turned into entries.

Sources: the drafter's gap log (``<data_dir>/knowledge_gaps.jsonl``, questions with no grounded answer) and
approved replies in which a person added a fix the draft did not have. They are clustered by meaning;
each cluster not yet covered by the knowledge base, and not proposed before, becomes one ``faq_proposal``
queue item whose text *is* the entry file (Markdown with front matter, see ``docs/knowledge-base.md``).
The model writes the entry only from the team's own answers; a cluster nobody answered yet becomes an
entry whose answer says ``ANSWER NEEDED`` for the reviewer to write. An approved proposal is applied by
:func:`copilot.actions.Actions.approve` (the CLI's ``queue approve``, the web app, the API) at once, or later
by ``Actions.apply_proposals`` (``copilot community apply-proposals``): validated with the knowledge loader,
written under ``knowledge/<kind folder>/`` and re-indexed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import yaml
from rapidfuzz import fuzz

from copilot.community.apply import PLACEHOLDER, front_matter, validate_entry_text
from copilot.community.drafting import (
    Novelty,
    answer_fields,
    cluster,
    content_problems,
    generate_checked,
    json_format,
    keywords,
    max_tokens_for,
    model_name,
    prompts_for,
    trim_unfinished,
)
from copilot.community.inputs import load_entries, now_utc
from copilot.errors import UserError
from copilot.gaps import GapLog
from copilot.guardrails import fit_length, sentences, strip_handle
from copilot.models.embeddings import as_matrix
from copilot.pii import redact
from copilot.queue.records import ITEM_STATUSES
from copilot.types import Draft, Inbound, Triage

if TYPE_CHECKING:
    from copilot.pipeline import Pipeline

__all__ = ["PLACEHOLDER", "GapCluster", "GapQuestion", "ProposalRun", "cluster_gaps", "collect_gaps", "draft_proposals", "generate_proposals",
           "logged_gaps", "resolved_with_fix", "validate_entry_text"]

PROPOSAL_FIELDS = ("title", "question", "answer")
CLUSTER_DISTANCE = 0.5
MIN_EDIT_FOR_FIX = 25
ANSWER_MAX_CHARS = 1200
PRODUCT_WORDS = {"lumio-strip": r"strips?", "lumio-hub": r"hubs?", "lumio-bulb": r"bulbs?",
                 "lumio-app": r"app", "lumio-plus": r"lumio plus|lumio-plus|subscription"}
PROPOSAL_TRIAGE = Triage(kind="question", sentiment="neutral", sentiment_score=0.0, priority=4,
                         priority_score=5.0, confidence=1.0)
_FIX_CUE = re.compile(
    r"^\s*\d+[.)]\s|\b(?:try|turn|go to|open|tap|hold|unplug|restart|reset|set|update|disable|enable|switch|"
    r"select|change|press|remove|re-?pair|move|install|plug|put|keep|mount|place|seal|connect|check)\b|"
    r"\w\s*>\s*\w", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class GapQuestion:
    """A question we had no grounded answer for, or that a person answered with a fix the draft lacked."""

    text: str
    source: str  # gap | resolved
    ref: str
    at: datetime | None = None
    answer: str = ""
    channel: str = ""
    best_id: str | None = None  # the closest entry when the gap was logged (it did not answer then)

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "source": self.source, "ref": self.ref, "answer": self.answer,
                "channel": self.channel, "at": self.at.isoformat() if self.at else None, "best_id": self.best_id}


@dataclass(frozen=True)
class GapCluster:
    """Questions that ask the same thing."""

    questions: tuple[GapQuestion, ...]
    keywords: tuple[str, ...] = ()

    @property
    def representative(self) -> str:
        answered = [q for q in self.questions if q.answer]
        return min(answered or self.questions, key=lambda q: abs(len(q.text) - 90)).text

    @property
    def answers(self) -> list[str]:
        out: list[str] = []
        for q in self.questions:
            if q.answer and not any(fuzz.token_set_ratio(q.answer, a) >= 90 for a in out):
                out.append(q.answer)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"representative": self.representative, "size": len(self.questions), "keywords": list(self.keywords),
                "answered": len(self.answers), "questions": [q.to_dict() for q in self.questions]}


@dataclass(frozen=True)
class ProposalRun:
    """Drafted proposals, and the clusters skipped with the reason."""

    drafts: tuple[Draft, ...]
    clusters: int
    questions: int
    skipped: tuple[dict[str, str], ...] = ()
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"drafts": [d.to_dict() for d in self.drafts], "clusters": self.clusters, "questions": self.questions,
                "skipped": list(self.skipped), "warnings": list(self.warnings)}


# Collecting ---------------------------------------------------------------------------------------


def logged_gaps(log: GapLog, since: datetime | None = None,
                until: datetime | None = None) -> tuple[list[GapQuestion], list[str]]:
    """Questions from the gap log (:mod:`copilot.gaps`), with its warnings about lines it could not use."""
    records, warnings = log.read(since, until)
    return [GapQuestion(r.text, "gap", r.where, r.at, channel=r.channel, best_id=r.best_id) for r in records], warnings


def added_sentences(original: str, final: str) -> list[str]:
    """Sentences of the approved text that the draft did not have (nor nearly had)."""
    before = sentences(strip_handle(original))
    return [s for s in sentences(strip_handle(final)) if not any(fuzz.ratio(s, b) >= 80 for b in before)]


def resolved_with_fix(queue: Any, since: datetime | None = None) -> list[GapQuestion]:
    """Approved replies where a person added a fix: the draft was a knowledge gap, or heavily edited."""
    rows = queue.approved_items("reply", since=since)
    out: list[GapQuestion] = []
    for row in rows:
        draft = dict(row.draft or {})
        if (draft.get("triage") or {}).get("crisis"):
            continue
        if not (draft.get("knowledge_gap") or (row.edit_distance or 0) >= MIN_EDIT_FOR_FIX):
            continue
        fixes = [s for s in added_sentences(row.original_text, row.text) if _FIX_CUE.search(s)]
        if fixes and row.inbound_text.strip():
            out.append(GapQuestion(redact(row.inbound_text.strip()), "resolved", f"item {row.id}", row.approved_at,
                                   answer=redact(" ".join(fixes)), channel=row.channel))
    return out


def collect_gaps(pipeline: Pipeline, since: datetime | None = None) -> tuple[list[GapQuestion], list[str]]:
    """Every gap question from the log and from resolved cases, with warnings about the log."""
    logged, warnings = logged_gaps(pipeline.gaps, since)
    return logged + resolved_with_fix(pipeline.queue, since), warnings


def cluster_gaps(pipeline: Pipeline, questions: list[GapQuestion]) -> list[GapCluster]:
    """Questions grouped by meaning, answered and larger groups first."""
    if not questions:
        return []
    texts = [q.text for q in questions]
    groups = cluster(as_matrix(pipeline.embedder, texts), threshold=CLUSTER_DISTANCE)
    clusters = [GapCluster(tuple(questions[i] for i in g), tuple(keywords([texts[i] for i in g], texts)))
                for g in groups]
    return sorted(clusters, key=lambda c: (-len(c.answers), -len(c.questions)))


# Drafting -----------------------------------------------------------------------------------------


def draft_proposals(pipeline: Pipeline, *, since: datetime | None = None, limit: int = 5,
                    min_size: int = 2) -> ProposalRun:
    """Draft up to ``limit`` entries for the largest uncovered gap clusters (not queued)."""
    if limit < 1:
        raise UserError("--max must be at least 1")
    questions, warnings = collect_gaps(pipeline, since)
    clusters = cluster_gaps(pipeline, questions)
    existing = _existing_ids(pipeline)
    earlier = _earlier_proposals(pipeline.queue)
    novelty = Novelty(pipeline.embedder, [text for text, _ in earlier], cosine=0.85)
    drafts: list[Draft] = []
    skipped: list[dict[str, str]] = []
    for group in clusters:
        if len(drafts) == limit:
            break
        rep = group.representative
        if not group.answers and len(group.questions) < min_size:
            skipped.append({"question": rep, "reason": f"asked {len(group.questions)} time(s), nobody answered yet"})
            continue
        covered = _covered_by(pipeline, group)
        if covered:
            skipped.append({"question": rep, "reason": f"the knowledge base now answers it ({covered})"})
            continue
        before = novelty.duplicate_of(rep)
        if before is not None:
            skipped.append({"question": rep, "reason": f"already proposed ({_short(before)})"})
            continue
        draft = _draft_entry(pipeline, group, existing)
        existing.add(front_matter(draft.text)["id"])
        novelty.add(rep)
        drafts.append(draft)
    return ProposalRun(tuple(drafts), len(clusters), len(questions), tuple(skipped), tuple(warnings))


def generate_proposals(pipeline: Pipeline, *, by: str | None = "copilot", since: datetime | None = None,
                       limit: int = 5, min_size: int = 2) -> list[Any]:
    """Draft proposals and queue them as ``faq_proposal`` items (ReviewItems), or return Drafts if ``by`` is None."""
    run = draft_proposals(pipeline, since=since, limit=limit, min_size=min_size)
    if by is None:
        return list(run.drafts)
    return [pipeline.queue.submit(d, by=by) for d in run.drafts]


def _covered_by(pipeline: Pipeline, group: GapCluster) -> str | None:
    if not pipeline.index.count():
        return None
    retrieval = pipeline.retriever.search(group.representative)
    grounded = [p for p in pipeline.retriever.grounded_passages(retrieval) if p.kind not in ("guideline", "policy")]
    # The entry that was already closest when the gap was logged did not answer it then: only a new best
    # entry counts as covering the question now.
    seen = {q.best_id for q in group.questions if q.best_id}
    if not grounded or grounded[0].id in seen:
        return None
    answers = group.answers
    if not answers:
        return grounded[0].id
    # The team added something: covered only if an entry already says it.
    for passage in grounded:
        if all(fuzz.token_set_ratio(a, passage.text) >= 85 for a in answers):
            return passage.id
    return None


def _earlier_proposals(queue: Any) -> list[tuple[str, int]]:
    rows = queue.items_drafted(kind="faq_proposal", since=queue.clock() - timedelta(days=90))
    return [(row.inbound_text.split("\n", 1)[0], row.id) for row in rows]


def _existing_ids(pipeline: Pipeline) -> set[str]:
    kb_dir = pipeline.settings.kb_dir
    ids = {e.id for e in load_entries(kb_dir)}
    proposals = pipeline.queue.items_drafted(kind="faq_proposal",
                                             statuses=[s for s in ITEM_STATUSES if s != "rejected"])
    for item in proposals:
        front = front_matter(item.text, strict=False)
        if front.get("id"):
            ids.add(str(front["id"]))
    return ids


def _draft_entry(pipeline: Pipeline, group: GapCluster, existing: set[str]) -> Draft:
    prompts = prompts_for(pipeline)
    answers = group.answers
    questions = list(dict.fromkeys(q.text for q in group.questions))[:3]
    rep = group.representative
    flags = [f"gap: {len(group.questions)} question(s), {len(answers)} answered by the team"]
    template, template_hash, latency, outcome_ok = "", "", 0.0, True
    if answers:
        system = prompts.render("community/proposal_system.j2", brand=pipeline.settings.brand_name)
        user = prompts.render("community/proposal_user.j2", questions=questions, answers=answers[:3])
        source = " ".join(questions + answers)

        def check(raw: str) -> tuple[str, list[str]]:
            parts, cut_off = answer_fields(raw, PROPOSAL_FIELDS)
            parts["answer"] = trim_unfinished(parts.get("answer", ""), ANSWER_MAX_CHARS, cut_off=cut_off)
            problems = []
            title, question, answer = parts.get("title", ""), parts.get("question", ""), parts.get("answer", "")
            if not 5 <= len(title) <= 90:
                problems.append("TITLE must be a short title (5 to 90 characters)")
            if not question.endswith("?"):
                problems.append("QUESTION must be the customer's question, ending with '?'")
            problems += content_problems(answer, limit=ANSWER_MAX_CHARS, facts=source, system_prompt=system.text,
                                         min_chars=30)
            return json.dumps(parts), problems

        outcome = generate_checked(pipeline, prompts, system, user, check,
                                   max_tokens=max_tokens_for(pipeline, 600) + 16,
                                   response_format=json_format("entry", PROPOSAL_FIELDS))
        latency, outcome_ok = outcome.latency_ms, outcome.ok
        flags += outcome.flags()
        if outcome.ok:
            parts = json.loads(outcome.text)
            title, question, answer = parts["title"], parts["question"], parts["answer"]
            template, template_hash = user.template, user.template_hash
        else:
            title, question, answer = _title(rep), rep, "\n\n".join(answers)
    else:
        title, question, answer = _title(rep), rep, ""
        flags.append(f"answer needed: nobody has answered this yet; write the answer where it says {PLACEHOLDER}")
    rendered = prompts.render("community/proposal_entry.j2", question=question, answer=answer,
                              placeholder=PLACEHOLDER)
    if not template:
        template, template_hash = rendered.template, rendered.template_hash
    text = entry_markdown(_unique_id(title, existing), title, rendered.text, group)
    details = f"{rep}\nAsked {len(group.questions)} time(s)"
    if len(questions) > 1:
        details += "; also: " + " | ".join(q for q in questions if q != rep)
    inbound = Inbound(text=details, channel="forum")
    return Draft(text=text, channel="forum", inbound=inbound, triage=PROPOSAL_TRIAGE, cited_ids=(), retrieved_ids=(),
                 confidence=0.7 if answers and outcome_ok else 0.4, template=template, template_hash=template_hash,
                 latency_ms=latency, needs_attention=not (answers and outcome_ok), flags=tuple(flags),
                 knowledge_gap=True, kind="faq_proposal", model=model_name(pipeline) if answers else "")


def _title(question: str) -> str:
    return fit_length(" ".join(question.split()).rstrip("?").strip() or question, 80)


def _unique_id(title: str, existing: set[str]) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:50].rstrip("-") or "entry"
    base = f"kb-{slug}"
    candidate, n = base, 2
    while candidate in existing:
        candidate, n = f"{base}-{n}", n + 1
    return candidate


def entry_markdown(entry_id: str, title: str, body: str, group: GapCluster) -> str:
    """A knowledge entry file: YAML front matter and the body."""
    text = " ".join(q.text for q in group.questions) + " " + body
    steps = len(re.findall(r"^\s*\d+[.)]\s", body, re.MULTILINE)) >= 2 or len(_FIX_CUE.findall(body)) >= 2
    products = [p for p, pattern in PRODUCT_WORDS.items() if re.search(rf"\b(?:{pattern})\b", text, re.IGNORECASE)]
    tags = [re.sub(r"[^a-z0-9.]+", "-", k.lower()).strip("-") for k in group.keywords]
    front = {"id": entry_id, "title": title, "kind": "fix" if steps else "faq", "official": True,
             "tags": [t for t in dict.fromkeys(tags) if t], "products": products, "updated": now_utc().date()}
    head = yaml.safe_dump(front, sort_keys=False, allow_unicode=True, default_flow_style=None, width=1000)
    return f"---\n{head}---\n{body.strip()}\n"


def _short(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"
