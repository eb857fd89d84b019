"""The promoter registry: who our promoters are, what they care about, what we did with them, and consent.

The members and their history are kept by the community store (``copilot.community.store``) in the queue's
database; the registry names members by handle and says what to do when one is missing.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

from copilot.community.store import CONSENTS, CommunityStore, Promoter, Signals
from copilot.errors import NotFoundError, UserError

__all__ = ["CONSENTS", "Promoter", "Registry", "Signals", "normalise_handle"]


def normalise_handle(handle: str | None) -> str:
    """The registry key of a handle: no ``@``, lower case; a clear error when there is none."""
    key = (handle or "").strip().lstrip("@").strip().lower()
    if not key or any(ch.isspace() for ch in key):
        raise UserError(f"invalid handle {handle!r}: give one handle such as @sam_lights")
    return key


class Registry:
    """The promoter registry of a queue's database."""

    def __init__(self, queue: Any) -> None:
        self.queue = queue
        self.store = CommunityStore.beside(queue)

    def get(self, handle: str, *, history: bool = True) -> Promoter:
        """One member, or NotFoundError naming how to add them."""
        key = normalise_handle(handle)
        promoter = self.store.promoter(key, history=history)
        if promoter is None:
            raise NotFoundError(
                f"@{key} is not in the promoter registry: run `copilot community promoters --scan` to detect "
                "promoters from the conversation history")
        return promoter

    def find(self, handle: str) -> Promoter | None:
        """One member, or None."""
        try:
            return self.get(handle, history=False)
        except NotFoundError:
            return None

    def list(self, *, promoters_only: bool = True, limit: int = 100) -> list[Promoter]:
        """Members by score, highest first (only detected promoters unless ``promoters_only`` is False)."""
        return self.store.promoters(promoters_only=promoters_only, limit=limit)

    def record(self, signals: Sequence[Signals], *, by: str) -> tuple[builtins.list[str], builtins.list[str]]:
        """Store a scan: insert new members, refresh the counts of known ones; consent is never touched.

        Returns the handles newly detected as promoters and the handles updated.
        """
        return self.store.record_scan(signals, by=by)

    def set_opt_out(self, handle: str, *, opted_out: bool, by: str, reason: str | None = None) -> Promoter:
        """Record an opt-out (creating the member if unknown, so no later scan can contact them) or an opt-in."""
        key = normalise_handle(handle)
        self.store.set_opt_out(key, display=handle, opted_out=opted_out, by=by, reason=reason)
        return self.get(key)

    def set_consent(self, handle: str, consent: str, *, by: str) -> Promoter:
        """Record what the member agreed to (``granted``, ``declined`` or back to ``unknown``)."""
        if consent not in CONSENTS:
            raise UserError(f"unknown consent {consent!r}; choose one of {', '.join(CONSENTS)}")
        key = normalise_handle(handle)
        self.store.set_consent(key, consent, by=by)
        return self.get(key)

    def add_note(self, handle: str, note: str, *, by: str) -> Promoter:
        """Append a free-text note from the community team."""
        note = (note or "").strip()
        if not note:
            raise UserError("the note is empty")
        key = normalise_handle(handle)
        self.store.add_note(key, note, by=by)
        return self.get(key)

    def record_outreach(self, handle: str, *, item_id: int, outreach: str, by: str) -> None:
        """Remember that an outreach draft was queued for this member."""
        self.store.record_outreach(normalise_handle(handle), item_id=item_id, outreach=outreach, by=by)
