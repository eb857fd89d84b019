"""The earlier turns of a conversation, in the bounded form a draft uses.

A follow-up ("I unplugged it like you said, still amber") is drafted with what came before it:
- retrieval reads the customer's earlier messages too, so "still amber" finds the article about the amber light;
- the facts leave out what we already told them (like the steps the customer says they tried), so the
  follow-up gets the next step and never the same first step again;
- a full reply written by a larger model (``draft_mode = "full"``) sees a short summary of the thread; the
  small model's opening does not (shown the thread, it wrote about its instructions instead of to the customer).
Everything is bounded: the last few turns, each cut at a sentence boundary, whatever the thread's length.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from copilot.guardrails import whole_sentences
from copilot.pii import redact
from copilot.types import Turn

MAX_TURNS = 6  # the last turns the summary shows
TURN_CHARS = 220  # each turn in the summary, cut at a sentence boundary
QUERY_CHARS = 600  # the earlier customer text added to the retrieval query


@dataclass(frozen=True)
class Thread:
    """The turns before the message being drafted, oldest first (redacted as they enter)."""

    turns: tuple[Turn, ...] = ()

    @classmethod
    def of(cls, history: Sequence[Turn], current_id: str | None = None, current_text: str = "") -> Thread:
        """The earlier turns of ``history``, without the message being drafted when it is stored already
        (by its id, or as the newest customer turn with the same text: a case opened again in the web app)."""
        def same(turn: Turn) -> bool:
            return turn.direction == "in" and (not current_text.strip() or (
                " ".join(turn.text.split()) == " ".join(current_text.split())))

        earlier = [t for t in history if not (current_id and t.platform_id == current_id and same(t))]
        if earlier and current_text.strip() and same(earlier[-1]):
            earlier.pop()
        return cls(tuple(Turn(t.direction, redact(t.text), t.author, t.at, t.platform_id)
                         for t in earlier if t.text.strip()))

    def __bool__(self) -> bool:
        return bool(self.turns)

    @property
    def told(self) -> str:
        """Everything we already posted in this conversation."""
        return "\n".join(t.text for t in self.turns if t.direction == "out")

    def customer_context(self) -> str:
        """The customer's earlier messages, newest last, bounded: added to the retrieval query."""
        said = [t.text for t in self.turns if t.direction == "in"]
        text = " ".join(" ".join(s.split()) for s in said)
        return text[-QUERY_CHARS:].partition(" ")[2] if len(text) > QUERY_CHARS else text

    def summary(self) -> str:
        """The last turns as "Customer: ..." and "We replied: ..." lines, each cut at a sentence boundary."""
        lines = []
        for turn in self.turns[-MAX_TURNS:]:
            who = "Customer" if turn.direction == "in" else "We replied"
            text = " ".join(turn.text.split())
            short = whole_sentences(text, TURN_CHARS) or text[:TURN_CHARS].rsplit(" ", 1)[0] + " ..."
            lines.append(f"{who}: {short}")
        return "\n".join(lines)
