"""What an admin should do first on a new install, read from the real state: the first-run password still
in use, nobody but the admins to work with, an empty knowledge index."""

from __future__ import annotations

from typing import TYPE_CHECKING

from copilot.ui.access import require
from copilot.ui.auth import password_file
from copilot.ui.views import Step

if TYPE_CHECKING:
    from copilot.pipeline import Pipeline


def first_steps(pipeline: Pipeline, user: str | None, *, indexing: bool = False) -> tuple[Step, ...]:
    """The set-up checklist (admins only), in the order to do it; ``indexing`` while the start-up indexes."""
    require(pipeline, user, "users")
    kept = password_file(pipeline.settings).exists()  # removed once its user sets a new password
    team = [u for u in pipeline.queue.list_users() if u.role != "admin"]
    indexed = pipeline.index.count() > 0
    return (
        Step("password", "Change the first-run password", not kept,
             "Account tab: Change your password (the generated one was printed in the console)."),
        Step("users", "Add the agents and reviewers", bool(team),
             "Account tab: Users: a name, a role and a password for each."),
        Step("index", "Index the knowledge base", indexed,
             "being indexed now, as the app starts: wait for it (see the top of the page)." if indexing else
             "Knowledge tab: Re-index the knowledge base (reads the files in the knowledge folder)."),
    )
