"""The holding message for a crisis or a possible crisis: the crisis policy's own text, never a fix.

The policy (``kb-crisis-policy``) may hold a general "Holding message", a "Safety holding message" for danger,
one for a kind of danger ("Safety holding message (gas)") and each in a language ("Holding message (es)").
A message in another language without the policy's text gets the phrase book's; else the shipped default.
"""

from __future__ import annotations

from copilot.compose import PhraseBook
from copilot.guardrails import fit_length
from copilot.knowledge_book import KnowledgeBook
from copilot.passages import plain
from copilot.prompts import Prompts, Rendered
from copilot.types import Triage


def holding_message(triage: Triage, limit: int, *, book: KnowledgeBook, phrases: PhraseBook, prompts: Prompts
                    ) -> tuple[str, Rendered, tuple[str, ...]]:
    """The holding text (fitted to ``limit``), the rendered template, and what it cites."""
    reason = (triage.crisis_reason or "").lower()
    safety = reason.startswith(("danger", "safety"))
    detail = reason.partition(":")[2].strip()
    headings = [f"Safety holding message ({detail})"] if safety and detail else []
    headings += ["Safety holding message"] if safety else []
    headings.append("Holding message")
    language = phrases.language(triage.language)
    # The policy's own text in the customer's language first, then its general text for an English message,
    # else the phrase book's text in the customer's language.
    wanted = [f"{h} ({language})" for h in headings] + (headings if language == "en" else [])
    holding = next((text for h in wanted if (text := book.section("kb-crisis-policy", h))), None)
    holding = holding or (phrases.get(language, "crisis") if language != "en" else None)
    holding = holding or prompts.render("replies/crisis_default.j2").text
    rendered = prompts.render("replies/crisis.j2", holding=plain(holding))
    cited = ("kb-crisis-policy",) if book.entry("kb-crisis-policy") else ()
    return fit_length(rendered.text, limit), rendered, cited
