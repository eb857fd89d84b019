"""The review queue: drafts wait here for a person to approve, edit or reject them; every action is audited.

Optimistic locking: every change names the version it was based on; a stale version is a
:class:`ConflictError` and changes nothing. Roles and the four-eyes rule are enforced here, not in the
callers, so the CLI and the UI behave the same. The queue owns its tables (``tables``): the reads are in
``reads`` (inherited), each transaction's steps in ``rows``, the users in ``users``; nothing else runs SQL on them.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Self

from rapidfuzz.distance import Levenshtein
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from copilot.config import Settings
from copilot.errors import ConflictError, PermissionDenied, UserError
from copilot.queue import delivery, users
from copilot.queue.db import IMPORT_LOCK, build_engine, exclusive, migrate, reading, writing
from copilot.queue.publish import OutgoingMessage, PostReceipt, Publisher
from copilot.queue.reads import QueueReads
from copilot.queue.records import ApiToken, Case, PublishReport, ReviewItem, TakenIn, User, crisis_level_of
from copilot.queue.rows import (
    IMPORT_ACTOR,
    PLATFORM_ACTOR,
    add_message,
    apply_action,
    case_from_row,
    case_without_draft,
    checked,
    delivered,
    insert_draft,
    item_from_row,
    load_case,
    load_row,
    message_from_row,
    next_to_publish,
    record_delivery,
    record_event,
    record_import,
    set_owner,
    was_imported,
)
from copilot.types import Draft

Clock = Callable[[], datetime]
Row = Mapping[Any, Any]  # a draft as a mapping (``Draft.to_dict()``)
_RECORD_TRIES = 5


def _utcnow() -> datetime:
    return datetime.now(UTC)


def requires_individual_decision(item: ReviewItem) -> bool:
    """Whether a person must decide this item on its own: a crisis or a possible crisis (by its triage), or
    anything escalated. Any path that approves or rejects more than one item at a time must leave these out."""
    return item.status == "escalated" or crisis_level_of(item.triage) is not None


def open_queue(settings: Settings, *, clock: Clock | None = None) -> ReviewQueue:
    """Open (and create or migrate) the queue named by the settings."""
    engine = build_engine(settings)
    migrate(engine)
    return ReviewQueue(engine, settings, clock=clock)


class ReviewQueue(QueueReads):
    """Cases and queue items in a database, with the actions people take on them."""

    def __init__(self, engine: Engine, settings: Settings, *, clock: Clock | None = None) -> None:
        self.engine = engine
        self.settings = settings
        self.clock = clock or _utcnow

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # Users ---------------------------------------------------------------------------------------

    def add_user(self, name: str, role: str, *, password: str | None = None, by: str | None = None) -> User:
        """Add a user (the first must be an admin; later ones need an admin ``by``)."""
        with writing(self.engine) as conn:
            return users.add_user(conn, name, role, password=password, by=by)

    def list_users(self) -> list[User]:
        """Every user, by name."""
        with reading(self.engine) as conn:
            return users.list_users(conn)

    def role_of(self, name: str) -> str | None:
        """A user's role, or None if unknown."""
        with reading(self.engine) as conn:
            return users.role_of(conn, name)

    def verify_password(self, name: str, password: str) -> str | None:
        """The user's role if the password is right, else None."""
        with reading(self.engine) as conn:
            return users.verify_password(conn, name, password)

    def set_password(self, name: str, password: str, *, by: str) -> None:
        """Set a login password (your own, or anyone's as an admin)."""
        with writing(self.engine) as conn:
            users.set_password(conn, name, password, by=by)

    def count_users(self) -> int:
        """How many users exist (0: single-user mode, where anyone may do anything)."""
        with reading(self.engine) as conn:
            return users.count_users(conn)

    def require(self, by: str, action: str) -> str | None:
        """Check that ``by`` may do ``action`` (PermissionDenied if not); their role, None in single-user mode."""
        with reading(self.engine) as conn:
            return users.require(conn, by, action)

    # API tokens ----------------------------------------------------------------------------------

    def create_token(self, user: str, *, by: str | None = None, label: str | None = None) -> tuple[ApiToken, str]:
        """Make an API token for ``user`` (by themselves, or by an admin): the stored record and the token,
        which is not kept anywhere and so is shown to the caller once."""
        token = users.new_token()
        with writing(self.engine) as conn:
            found = users.add_token(conn, user, by=by or user, token=token, label=label, now=self.clock())
        return found, token

    def list_tokens(self, user: str | None = None) -> list[ApiToken]:
        """Every API token (of one user, when given), revoked ones included."""
        with reading(self.engine) as conn:
            return users.list_tokens(conn, user)

    def revoke_token(self, token_id: int, *, by: str) -> ApiToken:
        """Revoke an API token (its owner or an admin)."""
        with writing(self.engine) as conn:
            return users.revoke_token(conn, token_id, by=by, now=self.clock())

    def authenticate_token(self, token: str) -> ApiToken | None:
        """The active token with this secret (its user and their current role), or None; notes its use."""
        with reading(self.engine) as conn:
            found = users.find_token(conn, token)
        now = self.clock()
        if found is not None and users.needs_touch(found, now):
            with writing(self.engine) as conn:
                users.touch_token(conn, found, now)
        return found

    # Drafts in -----------------------------------------------------------------------------------

    def submit(self, draft: Draft, *, by: str) -> ReviewItem:
        """Put a draft in the queue (pending, or escalated for a crisis), opening its case."""
        data = draft.to_dict()
        for attempt in range(2):
            try:
                with writing(self.engine) as conn:
                    users.require(conn, by, "submit")
                    item_id = insert_draft(conn, data, by=by, now=self.clock())
                    return item_from_row(load_row(conn, item_id))
            except IntegrityError:
                # Two drafts for the same new inbound message raced to open its case: the loser retries
                # and joins the winner's case.
                if attempt:
                    raise
        raise AssertionError("unreachable: the loop returns or raises")

    def record_spam(self, draft: Draft, *, by: str) -> Case:
        """Keep a message triaged as spam visible: open (or find) its case, with no reply item.

        Without an item nothing can be approved or posted; a person who finds a real customer there writes
        a reply, which joins the case as an ordinary pending item for a reviewer.
        """
        data = draft.to_dict()
        if draft.kind != "reply" or draft.status != "skipped":
            raise UserError(f"only a reply skipped as spam is recorded without a draft, not a {draft.status} "
                            f"{draft.kind}")
        for attempt in range(2):
            try:
                with writing(self.engine) as conn:
                    users.require(conn, by, "submit")
                    case_id = case_without_draft(conn, data, by=by, now=self.clock())
                    return case_from_row(load_case(conn, case_id))
            except IntegrityError:
                if attempt:  # the same message recorded twice at once: join the other's case
                    raise
        raise AssertionError("unreachable: the loop returns or raises")

    def take_in(self, draft: Draft, *, platform: str, delivery_ids: Sequence[str]) -> TakenIn:
        """A message a connector received (a signed webhook, a mailbox): its draft, or for spam its case alone,
        with its delivery ids, in one transaction. A delivery taken in before adds nothing (``duplicate``).

        The platform's signature is the sender's authentication, so no user role is checked; the actor is
        ``platform:<name>`` and the new case has no owner.
        """
        if not delivery_ids:
            raise UserError("a message from a platform needs a delivery id")
        actor = f"{PLATFORM_ACTOR}{platform}"
        data = draft.to_dict()
        try:
            with writing(self.engine) as conn:
                if delivered(conn, platform, delivery_ids):
                    return TakenIn(duplicate=True)
                now = self.clock()
                if draft.status == "skipped":
                    case_id = case_without_draft(conn, data, by=actor, now=now)
                    record_delivery(conn, platform, delivery_ids, now=now, case_id=case_id, item_id=None)
                    return TakenIn(case=case_from_row(load_case(conn, case_id)))
                item_id = insert_draft(conn, data, by=actor, now=now, detail={"platform": platform})
                item = item_from_row(load_row(conn, item_id))
                record_delivery(conn, platform, delivery_ids, now=now, case_id=item.case_id, item_id=item_id)
                return TakenIn(item=item, case=case_from_row(load_case(conn, item.case_id))
                               if item.case_id is not None else None)
        except IntegrityError:
            with reading(self.engine) as conn:
                if delivered(conn, platform, delivery_ids):  # the same delivery, taken in at the same moment
                    return TakenIn(duplicate=True)
            raise

    def seen_delivery(self, platform: str, delivery_ids: Sequence[str]) -> bool:
        """Whether a delivery was taken in before (checked before drafting, so a redelivery costs no model call)."""
        with reading(self.engine) as conn:
            return delivered(conn, platform, delivery_ids)

    def import_drafts(self, rows: Sequence[Row], *, sha256: str, source: str) -> int:
        """Insert drafts (``Draft.to_dict()``s) in bulk once: a batch whose hash was imported before adds nothing."""
        with writing(self.engine) as conn:
            exclusive(conn, IMPORT_LOCK)  # two processes importing the same batch at once import it once
            if was_imported(conn, sha256):
                return 0
            now = self.clock()
            for row in rows:
                insert_draft(conn, dict(row), by=IMPORT_ACTOR, now=now, detail={"source": source})
            record_import(conn, sha256=sha256, source=source, count=len(rows), now=now)
        return len(rows)

    # Review actions ------------------------------------------------------------------------------

    def edit(self, item_id: int, text: str, *, by: str, version: int) -> ReviewItem:
        """Change a pending or escalated draft's text."""
        text = _clean(text)
        with writing(self.engine) as conn:
            users.require(conn, by, "edit")
            row = checked(conn, item_id, "edit", version)
            if text == row["text"]:
                raise UserError(f"the edit changes nothing in item {item_id}")
            row = apply_action(conn, row, "edit", by, self.clock(), {"text": text, "edited_by": by},
                               before_text=row["text"], after_text=text)
        return item_from_row(row)

    def approve(self, item_id: int, *, by: str, version: int, text: str | None = None) -> ReviewItem:
        """Approve a draft for posting, optionally with a final edit (recorded as an edit, then the approval)."""
        now = self.clock()
        with writing(self.engine) as conn:
            users.require(conn, by, "approve")
            row = checked(conn, item_id, "approve", version)
            new_text = row["text"] if text is None else _clean(text)
            changed = new_text != row["text"]
            if self.settings.four_eyes:
                last_hands = {row["drafted_by"], row["edited_by"]}
                if by in last_hands:
                    raise PermissionDenied(
                        f"four-eyes rule: {by} drafted or last edited item {item_id}; another reviewer must approve"
                    )
                if changed:
                    raise PermissionDenied(
                        "four-eyes rule: nobody approves their own edit; save it with `queue edit` and let "
                        "another reviewer approve"
                    )
            if not new_text:
                raise UserError(f"item {item_id} has no text to approve; edit it first")
            if changed:
                row = apply_action(conn, row, "edit", by, now, {"text": new_text, "edited_by": by},
                                   before_text=row["text"], after_text=new_text)
            distance = Levenshtein.distance(row["original_text"], new_text)
            row = apply_action(conn, row, "approve", by, now,
                               {"approved_by": by, "approved_at": now, "edit_distance": distance},
                               detail={"edit_distance": distance})
        return item_from_row(row)

    def reject(self, item_id: int, *, by: str, version: int, reason: str) -> ReviewItem:
        """Reject a draft, with the reason; only an explicit reopen brings it back."""
        reason = (reason or "").strip()
        if not reason:
            raise UserError("a rejection needs a reason")
        now = self.clock()
        with writing(self.engine) as conn:
            users.require(conn, by, "reject")
            row = checked(conn, item_id, "reject", version)
            row = apply_action(conn, row, "reject", by, now, {"reject_reason": reason, "rejected_at": now},
                               detail={"reason": reason})
        return item_from_row(row)

    def reopen(self, item_id: int, *, by: str, version: int) -> ReviewItem:
        """Bring a rejected draft back to pending."""
        with writing(self.engine) as conn:
            users.require(conn, by, "reopen")
            row = checked(conn, item_id, "reopen", version)
            row = apply_action(conn, row, "reopen", by, self.clock(), {"reject_reason": None, "rejected_at": None})
        return item_from_row(row)

    def assign(self, item_id: int, assignee: str, *, by: str) -> ReviewItem:
        """Give an item (and its case) an owner. Agents may only take items themselves."""
        assignee = (assignee or "").strip()
        if not assignee:
            raise UserError("an assignee is needed")
        with writing(self.engine) as conn:
            role = users.require(conn, by, "assign")
            if role == "agent" and assignee != by:
                raise PermissionDenied(f"{by} is an agent; agents may only assign items to themselves")
            if users.count_users(conn) and users.role_of(conn, assignee) is None:
                raise UserError(f"unknown user {assignee!r}")
            row = load_row(conn, item_id)
            now = self.clock()
            set_owner(conn, row, assignee, now)
            record_event(conn, row, "assign", by, now, row["status"], row["version"],
                         detail={"assignee": assignee, "previous": row["assignee"]})
            return item_from_row(load_row(conn, item_id))

    # Publishing ----------------------------------------------------------------------------------

    def publish_approved(
        self, publisher: Publisher, *, by: str, lease_s: float | None = None, limit: int | None = None
    ) -> PublishReport:
        """Post every approved, unposted item (and retry failed ones) exactly once; see ``delivery``."""
        lease = self.settings.publish_lease_s if lease_s is None else lease_s
        return delivery.publish_approved(self, publisher, by=by, lease_s=lease, limit=limit)

    def claim_next(self, *, by: str, lease_s: float, started: datetime) -> tuple[OutgoingMessage, str] | None:
        """Claim the next item to post, in its own committed transaction: the message and the claim's token,
        or None when nothing is left.

        Eligible: approved items; failed items whose last attempt was before ``started`` (each is retried
        once per run); ``posting`` items whose claim is older than the lease and than ``started`` (their
        publisher died). PostgreSQL locks the row with SKIP LOCKED so concurrent publishers take different
        items; SQLite's write lock serialises claims.
        """
        with writing(self.engine) as conn:
            now = self.clock()
            abandoned_before = min(started, now - timedelta(seconds=lease_s))
            found = next_to_publish(conn, started=started, abandoned_before=abandoned_before)
            if found is None:
                return None
            recovered = found["status"] == "posting"
            key = found["idempotency_key"]
            token = secrets.token_hex(8)
            attempt = found["attempts"] + 1
            row = apply_action(
                conn, found, "publish", by, now,
                {"claim_token": token, "claimed_at": now, "attempts": attempt},
                detail={"idempotency_key": key, "attempt": attempt, "recovered": recovered},
            )
        return message_from_row(row), token

    def record_posted(self, message: OutgoingMessage, receipt: PostReceipt, *, by: str) -> bool:
        """Record a delivery; False if another publisher already did (the item is posted either way)."""
        for _ in range(_RECORD_TRIES):
            try:
                with writing(self.engine) as conn:
                    row = load_row(conn, message.item_id)
                    if row["status"] != "posting" or row["idempotency_key"] != message.idempotency_key:
                        # Posted already, or failed by a later claim that took ours over: that one, or the
                        # next publish, sends the same key again and records the delivery without a repeat.
                        return False
                    now = self.clock()
                    apply_action(
                        conn, row, "post", by, now,
                        {"posted_at": now, "external_id": receipt.external_id, "last_error": None,
                         "claim_token": None},
                        detail={"idempotency_key": message.idempotency_key, "external_id": receipt.external_id,
                                "duplicate": receipt.duplicate},
                    )
                    if row["case_id"] is not None and row["kind"] == "reply":
                        add_message(conn, row["case_id"], "out", platform_id=receipt.external_id, author=None,
                                    text=row["text"], at=now, item_id=row["id"])
                    return True
            except ConflictError:
                continue  # the row moved between our read and write (a concurrent claim): look again
        return False

    def record_failure(self, message: OutgoingMessage, token: str, *, by: str, error: str) -> bool:
        """Record a failed post, unless our claim was taken over meanwhile (then the newer claim decides)."""
        try:
            with writing(self.engine) as conn:
                row = load_row(conn, message.item_id)
                if row["status"] != "posting" or row["claim_token"] != token:
                    return False
                apply_action(
                    conn, row, "failure", by, self.clock(), {"last_error": error[:2000], "claim_token": None},
                    detail={"idempotency_key": message.idempotency_key, "error": error[:2000]},
                    claim_token=token,
                )
                return True
        except ConflictError:
            return False


def _clean(text: str | None) -> str:
    text = (text or "").strip()
    if not text:
        raise UserError("the text must not be empty")
    return text
