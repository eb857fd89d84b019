"""A knowledge passage's text as a reply uses it: plain text, its answer without the restated problem, a
compact fix, and the focused excerpt the model is shown."""

from __future__ import annotations

import re

from copilot.guardrails import fit_length, sentences
from copilot.types import Passage

PASSAGE_CHARS = 480


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
