"""Draft every support case through the pipeline (``pipeline.drafter.draft``, as the CLI does) and score it.

Nothing is submitted to the review queue. A case whose drafting raises is a recorded result (its
``error`` set, every check failed), never a dropped row.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from copilot.evaluation.dataset import SupportCase
from copilot.evaluation.grounding import Grounder
from copilot.evaluation.scorers import (
    Markers,
    Score,
    abstention,
    approvable,
    citation_correct,
    citation_valid,
    empathy,
    escalation,
    length_ok,
    load_markers,
    must_include,
    must_not_include,
    next_step,
    no_forbidden,
    no_pii_echo,
    no_reply,
    offer_help,
    policy,
    private_invite,
    retrieval_scores,
    reviewer_check,
    same_language,
    verdict,
)
from copilot.types import Draft, Entry, Inbound

if TYPE_CHECKING:
    from copilot.evaluation.judge import Judge
    from copilot.pipeline import Pipeline

# The checks a case must pass; triage labels and retrieval ranks are reported, not gated per case.
HEADLINE = (
    "must_include",
    "must_not_include",
    "citation_valid",
    "citation_correct",
    "abstention",
    "escalation",
    "no_reply",
    "policy",
    "empathy",
    "groundedness",
    "reviewer",
)
POLICY = (
    "length",
    "no_pii_echo",
    "next_step",
    "offer_help",
    "no_forbidden",
    "private_invite",
    "same_language",
)
SOURCE_CHARS = 700
Progress = Callable[[int, int], None]


def inbound_of(case: SupportCase) -> Inbound:
    """The inbound message of a case, as the CLI would build it."""
    return Inbound(text=case.message, channel=case.channel, author=case.author, id=case.id)


def _phrase_texts() -> list[str]:
    from copilot.compose import load_phrase_book

    return [text for rows in load_phrase_book().phrases.values() for key, text in rows.items() if key != "crisis"]


def triage_scores(case: SupportCase, draft: Draft) -> list[Score]:
    """Whether the pipeline's triage labels match the case's."""
    t, e = draft.triage, case.expected
    return [
        verdict("triage_kind", t.kind == e.kind, f"{t.kind} (expected {e.kind})"),
        verdict("triage_sentiment", t.sentiment == e.sentiment, f"{t.sentiment} (expected {e.sentiment})"),
        verdict("triage_crisis", t.crisis == e.crisis, f"{t.crisis} (expected {e.crisis})"),
        verdict(
            "triage_private_info",
            t.private_info == e.private_info,
            f"{t.private_info} (expected {e.private_info})",
        ),
    ]


class SupportScorer:
    """Scores drafts against support cases with one set of markers, channel profiles and embedder."""

    def __init__(
        self, pipeline: Pipeline, entries: Sequence[Entry], *, markers: Markers | None = None
    ) -> None:
        settings = pipeline.settings
        self.settings = settings
        self.markers = markers or load_markers()
        self.entries = {entry.id: entry for entry in entries}
        self.grounder = Grounder(
            pipeline.embedder,
            markers=self.markers,
            # The phrase book's fixed sentences ("We're here if you need anything else") are no claims.
            extra_filler=(settings.brand_name, settings.agent_signature, *_phrase_texts()),
        )
        self.k = settings.top_k

    def sources(self, ids: Sequence[str]) -> dict[str, str]:
        """Cited id -> the text of its knowledge entry (ids the knowledge base lacks are left out)."""
        return {i: self.entries[i].text for i in ids if i in self.entries}

    def score(self, case: SupportCase, draft: Draft) -> tuple[list[Score], list[dict[str, Any]]]:
        """Every score of one draft, and the per-sentence grounding detail."""
        profile = self.settings.channel(case.channel)
        text, kind = draft.text, case.expected.kind
        escalated = draft.status == "escalated"
        scores = [
            must_include(text, case.must_include),
            must_not_include(text, case.must_not_include),
            # A possible crisis is held with the crisis policy's holding message, as an escalation is.
            citation_valid(draft.cited_ids, draft.retrieved_ids,
                           escalated=escalated or draft.triage.crisis_level == "possible"),
            citation_correct(draft.cited_ids, case.expected_ids, kind),
            abstention(case.expected_ids, kind, draft),
            escalation(case.expected.crisis, draft.status),
            no_reply(case.reference, draft.status),
        ]
        scores += (
            retrieval_scores(list(draft.retrieved_ids), case.expected_ids, self.k) if not escalated else []
        )
        detail: list[dict[str, Any]] = []
        if draft.status == "skipped" or not text.strip():
            scores.append(Score("groundedness", None, None, "no reply text"))
        else:
            # The customer's own words and name are no claims of ours.
            said = f"{case.author or ''} {case.message}"
            grounded, sentences = self.grounder.score(draft.grounding_text or text, self.sources(draft.cited_ids),
                                                      said)
            # A question answered with a fact from a cited passage has its next step: the answer itself.
            answered = any(s.claim and s.supported for s in sentences)
            checks = [
                length_ok(text, profile),
                no_pii_echo(text, case.message, profile),
                next_step(text, kind, self.markers, answered=answered),
                offer_help(text, kind, self.markers),
                no_forbidden(text, self.markers),
                private_invite(text, case.expected.private_info, profile),
                same_language(text, case.message),
            ]
            scores += [*checks, policy(checks)]
            if not escalated:  # a crisis gets the policy's holding message, not our tone
                scores.append(empathy(text, kind, case.expected.sentiment, self.markers))
            if not draft.cited_ids and kind not in ("complaint", "question"):
                grounded = Score("groundedness", None, None, "no citation needed")
            scores.append(grounded)
            detail = [s.to_dict() for s in sentences]
            if not escalated:  # the crisis policy's holding text is the team's own
                scores.append(reviewer_check(text, case.message, self.sources(draft.cited_ids).values(),
                                             signature=self.settings.agent_signature))
        scores += triage_scores(case, draft)
        return scores, detail


def _case_verdict(scores: dict[str, dict[str, Any]]) -> tuple[bool, float, list[str]]:
    applicable = [
        (name, scores[name]) for name in HEADLINE if name in scores and scores[name]["passed"] is not None
    ]
    failed = [name for name, s in applicable if not s["passed"]]
    values = [s["value"] for _, s in applicable if s["value"] is not None]
    return not failed, round(sum(values) / len(values), 4) if values else 1.0, failed


def case_header(case: SupportCase) -> dict[str, Any]:
    """The parts of a case every result row repeats."""
    return {
        "id": case.id,
        "message": case.message,
        "channel": case.channel,
        "author": case.author,
        "tags": case.tags,
        "expected": case.expected.model_dump(),
        "expected_ids": case.expected_ids,
        "reference": case.reference,
        "must_include": case.must_include,
        "must_not_include": case.must_not_include,
    }


def evaluate_case(
    pipeline: Pipeline, scorer: SupportScorer, case: SupportCase, *, judge: Judge | None = None
) -> dict[str, Any]:
    """Draft one case through the pipeline and score it; an exception becomes the row's ``error``."""
    row: dict[str, Any] = {
        **case_header(case),
        "error": None,
        "draft": None,
        "triage": None,
        "scores": {},
        "grounding": [],
        "judge": None,
        "sources": [],
    }
    started = time.perf_counter()
    try:
        draft = pipeline.drafter.draft(inbound_of(case))
    except Exception as exc:  # noqa: BLE001 - a failing case is a recorded result, never a dropped row
        row.update(
            error=f"{type(exc).__name__}: {exc}",
            trace=traceback.format_exc(limit=4),
            passed=False,
            score=0.0,
            failed=["error"],
            first_token_ms=None,
            latency_ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return row
    scores, detail = scorer.score(case, draft)
    row["scores"] = {
        s.name: {
            "value": None if s.value is None else round(s.value, 4),
            "passed": s.passed,
            "detail": s.detail,
        }
        for s in scores
    }
    row["grounding"] = detail
    row["draft"] = {key: value for key, value in draft.to_dict().items() if key not in ("inbound", "triage")}
    row["triage"] = draft.triage.to_dict()
    row["sources"] = [
        {"id": i, "title": scorer.entries[i].title, "text": scorer.entries[i].text[:SOURCE_CHARS]}
        for i in draft.cited_ids
        if i in scorer.entries
    ]
    if judge is not None and draft.text.strip():
        row["judge"] = judge.judge(case, draft, scorer.sources(draft.cited_ids))
    verdict_ = approvable(scores, row["judge"])
    row["scores"]["approvable"] = {"value": verdict_.value, "passed": verdict_.passed, "detail": verdict_.detail}
    passed, value, failed = _case_verdict(row["scores"])
    row.update(
        passed=passed,
        score=value,
        failed=failed,
        latency_ms=draft.latency_ms,
        first_token_ms=draft.first_token_ms,
    )
    return row


def evaluate_support(
    pipeline: Pipeline,
    cases: Sequence[SupportCase],
    entries: Sequence[Entry],
    *,
    judge: Judge | None = None,
    progress: Progress | None = None,
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """One result row per case, in case order."""
    scorer = SupportScorer(pipeline, entries)
    rows = []
    for number, case in enumerate(cases, start=1):
        row = evaluate_case(pipeline, scorer, case, judge=judge)
        rows.append(row)
        if on_row is not None:
            on_row(row)
        if progress is not None:
            progress(number, len(cases))
    return rows
