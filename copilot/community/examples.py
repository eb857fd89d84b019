"""Learning from approvals: approved replies, after human edits, become tone examples for later drafts.

Each approved reply is indexed in its own Chroma collection (beside the knowledge collection, keyed by
the embedder) under the inbound message it answered, with its message kind and channel. When the drafter
writes a reply it asks for the closest approved reply of the same kind (same channel preferred) and puts
one short excerpt in the prompt, marked as a tone example, so the copilot sounds more like the team.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from langchain_core.embeddings import Embeddings

from copilot.errors import ProviderError
from copilot.guardrails import fit_length, strip_handle
from copilot.models.embeddings import as_matrix
from copilot.pii import redact
from copilot.types import Inbound, Triage

if TYPE_CHECKING:
    from copilot.index import Index
    from copilot.queue.store import ReviewQueue

COLLECTION = "tone-examples"
EXAMPLE_CHARS = 220
MIN_SIMILARITY = 0.35
CANDIDATES = 5


@dataclass(frozen=True)
class ToneExample:
    """An approved reply and how close its message is to the new one."""

    item_id: int
    text: str
    kind: str
    channel: str
    edited: bool
    similarity: float

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


class ToneExamples:
    """Approved replies as retrievable tone examples (the drafter's optional ``tone_examples`` provider)."""

    def __init__(self, index: Index, embedder: Embeddings, queue: ReviewQueue) -> None:
        self.index = index
        self.embedder = embedder
        self.queue = queue
        self._collection: Any = None
        self._state: tuple[int, Any] | None = None
        self._lock = threading.Lock()

    @property
    def collection(self) -> Any:
        if self._collection is None:
            self._collection = self.index.side_collection(COLLECTION)
        return self._collection

    def _approved_state(self) -> tuple[int, Any]:
        count, latest = self.queue.approved_summary("reply")
        return count, latest

    def sync(self) -> int:
        """Index approved replies not indexed yet; return how many were added."""
        with self._lock:
            state = self._approved_state()
            if state == self._state:
                return 0
            added = self._sync() if state[0] else 0
            self._state = state
            return added

    def _sync(self) -> int:
        rows = self.queue.approved_items("reply")
        known = set(self.collection.get(include=[])["ids"]) if self.collection.count() else set()
        todo = []
        for row in rows:
            triage = dict(row.triage or {})
            if str(row.id) in known or triage.get("crisis") or not row.inbound_text.strip():
                continue
            reply = redact(strip_handle(row.text)).strip()
            if reply:
                todo.append((row, triage, reply))
        if not todo:
            return 0
        documents = [redact(row.inbound_text) for row, _, _ in todo]
        vectors = as_matrix(self.embedder, documents)
        try:
            self.collection.upsert(
                ids=[str(row.id) for row, _, _ in todo], embeddings=vectors, documents=documents,
                metadatas=[{"kind": str(triage.get("kind") or "question"), "channel": row.channel,
                            "edited": bool(row.edit_distance), "reply": reply} for row, triage, reply in todo])
        except Exception as exc:
            raise ProviderError(f"Chroma failed to store tone examples: {exc}") from exc
        return len(todo)

    def examples_for(self, inbound: Inbound, triage: Triage, n: int = 3) -> list[ToneExample]:
        """The approved replies closest to this message among those of its kind, best first."""
        self.sync()
        if not self._state or not self._state[0] or self.collection.count() == 0:
            return []
        vector = as_matrix(self.embedder, [redact(inbound.text)])[0]
        try:
            found = self.collection.query(query_embeddings=[np.asarray(vector).tolist()],
                                          n_results=min(CANDIDATES, self.collection.count()),
                                          where={"kind": triage.kind}, include=["metadatas", "distances"])
        except Exception as exc:
            raise ProviderError(f"Chroma query of tone examples failed: {exc}") from exc
        out = []
        for item_id, meta, distance in zip(found["ids"][0], found["metadatas"][0], found["distances"][0],
                                           strict=False):
            similarity = 1.0 - float(distance)
            if similarity < MIN_SIMILARITY:
                continue
            out.append(ToneExample(int(item_id), str(meta["reply"]), str(meta["kind"]), str(meta["channel"]),
                                   bool(meta.get("edited")), round(similarity, 3)))
        # The same channel matters for tone (length, greeting); an edited reply shows the team's own words.
        out.sort(key=lambda e: -(e.similarity + 0.1 * (e.channel == inbound.channel) + 0.05 * e.edited))
        return out[:n]

    def example_for(self, inbound: Inbound, triage: Triage) -> str | None:
        """One short excerpt of the best example, for the draft prompt; None if there is none."""
        examples = self.examples_for(inbound, triage, n=1)
        return fit_length(examples[0].text, EXAMPLE_CHARS) if examples else None
