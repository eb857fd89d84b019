"""Who may use which screen of the web app: the roles, the acting user's role, and the account they see.

Every handler checks the role here, on the server; the queue checks it again for every change, so a hidden
button is never the only thing between an agent and an approval.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from copilot.errors import PermissionDenied
from copilot.queue.records import EVERY_ROLE, LEAD_ROLES
from copilot.ui.auth import initial_password_pending
from copilot.ui.views import Account

if TYPE_CHECKING:
    from copilot.pipeline import Pipeline

ALL = EVERY_ROLE
LEADS = LEAD_ROLES
# The screens of the app and who may use them; the queue's own PERMISSIONS guard every change as well.
SCREENS: dict[str, frozenset[str]] = {
    "inbox": ALL,
    "reply": ALL,
    "review": LEADS,
    "community": ALL,
    "knowledge": ALL,
    "reindex": LEADS,
    "insights": ALL,
    "incidents": ALL,  # every role sees the incidents; only leads act on them
    "incident_actions": LEADS,
    "users": frozenset({"admin"}),
}


def role_of(pipeline: Pipeline, user: str | None) -> str:
    """The role of a logged-in user; PermissionDenied for nobody or an unknown name."""
    if not user:
        raise PermissionDenied("log in first")
    role = pipeline.queue.role_of(user)
    if role is None:
        raise PermissionDenied(f"unknown user {user!r}: ask an admin to add you")
    return str(role)


def require(pipeline: Pipeline, user: str | None, screen: str) -> str:
    """The user's role if it may use ``screen``, else PermissionDenied naming who may."""
    role = role_of(pipeline, user)
    if role not in SCREENS[screen]:
        allowed = " or ".join(sorted(SCREENS[screen]))
        article = "an" if role[0] in "aeiou" else "a"
        raise PermissionDenied(f"{user} is {article} {role}; {screen} is for {allowed}")
    return role


def account(pipeline: Pipeline, user: str | None) -> Account:
    """The logged-in user's name, role, the screens they may open, and whether to change their password."""
    role = role_of(pipeline, user)
    assert user is not None
    screens = tuple(name for name, roles in SCREENS.items() if role in roles)
    return Account(user, role, screens, initial_password_pending(pipeline.settings, user))
