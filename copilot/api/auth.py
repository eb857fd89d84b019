"""Who is calling: an ``Authorization: Bearer <token>`` header names an API token, whose user and current role act.

The roles are the web app's: agents triage, search, draft and submit messages (and see their own items);
reviewers and admins also review (approve, edit, reject, reopen), see every item and publish. The queue checks
the role again for every change, and an agent may only assign an item to themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from copilot.api.context import Ctx
from copilot.api.errors import ApiError
from copilot.errors import PermissionDenied
from copilot.queue.records import EVERY_ROLE as ALL
from copilot.queue.records import LEAD_ROLES as LEADS
from copilot.queue.records import ReviewItem

# What each kind of request needs, as the web app's screens do (Reply for all, Review for leads).
RULES: dict[str, frozenset[str]] = {
    "submit": ALL,
    "triage": ALL,
    "search": ALL,
    "draft": ALL,
    "items": ALL,  # an agent sees only the items they drafted or were assigned
    "assign": ALL,
    "review": LEADS,
    "publish": LEADS,
}

bearer = HTTPBearer(auto_error=False, scheme_name="token",
                    description="An API token from `copilot users token NAME`, as `Authorization: Bearer <token>`.")

Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


@dataclass(frozen=True)
class Caller:
    """The user a request acts as, with their role."""

    name: str
    role: str
    token_id: int

    @property
    def lead(self) -> bool:
        return self.role in LEADS


def client_key(request: Request) -> str:
    """The rate-limit key of a request without a valid token: its client address."""
    return f"addr:{request.client.host if request.client else 'unknown'}"


def caller(request: Request, credentials: Credentials,
           ctx: Ctx) -> Caller:
    """The calling user (a FastAPI dependency): 401 without a known, unrevoked token; 429 over the rate limit."""
    if credentials is None or not credentials.credentials:
        ctx.limiter.hit(client_key(request))
        raise ApiError(401, "an API token is needed: send 'Authorization: Bearer <token>' (make one with "
                            "`copilot users token NAME`)", headers={"WWW-Authenticate": "Bearer"})
    found = ctx.pipeline.queue.authenticate_token(credentials.credentials)
    if found is None:
        ctx.limiter.hit(client_key(request))
        raise ApiError(401, "unknown or revoked API token", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    ctx.limiter.hit(f"token:{found.id}")
    return Caller(found.user, found.role, found.id)


def anonymous(request: Request, ctx: Ctx) -> None:
    """Rate-limit a request that needs no token (a FastAPI dependency), by its client address."""
    ctx.limiter.hit(client_key(request))


def require(who: Caller, rule: str) -> None:
    """PermissionDenied (403) unless the caller's role allows ``rule``, naming who may."""
    if who.role not in RULES[rule]:
        allowed = " or ".join(sorted(RULES[rule]))
        article = "an" if who.role[0] in "aeiou" else "a"
        raise PermissionDenied(f"{who.name} is {article} {who.role}; this needs {allowed}")


def may_see(who: Caller, item: ReviewItem) -> bool:
    """Whether the caller may read an item: a lead any, an agent those they drafted or were assigned."""
    return who.lead or who.name in (item.drafted_by, item.assignee)


Who = Annotated[Caller, Depends(caller)]
