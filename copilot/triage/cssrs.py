"""The Reddit C-SSRS suicide-risk set (Gaur et al. 2019, CC BY 4.0): users, their posts and their grade.

The grade belongs to the user, not to each post. Users are split by a stable hash: 60% may train the
shipped crisis stage (``scripts/build_crisis_seed.py``), the other 40% are held out for evaluation.
"""

from __future__ import annotations

import ast
import csv
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from copilot.errors import UserError

SEVERITIES: tuple[str, ...] = ("Supportive", "Indicator", "Ideation", "Behavior", "Attempt")
AT_RISK: frozenset[str] = frozenset({"Ideation", "Behavior", "Attempt"})


@dataclass(frozen=True)
class User:
    """One Reddit user: their posts and their grade on the Columbia scale."""

    name: str
    posts: tuple[str, ...]
    severity: str


def user_split(name: str) -> str:
    """``train`` for a stable 60% of users, ``test`` for the rest."""
    return "train" if int(hashlib.sha256(name.encode()).hexdigest(), 16) % 10 < 6 else "test"


def posts_of(cell: str) -> list[str]:
    """The posts in one cell (a Python-list literal, sometimes cut short in the export)."""
    try:
        value = ast.literal_eval(cell)
        return [str(p) for p in value] if isinstance(value, list) else [str(value)]
    except (ValueError, SyntaxError):
        parts = re.split(r"',\s*'|\",\s*\"|',\s*\"|\",\s*'", cell)
        return [p.strip(" '\"[]") for p in parts if p.strip(" '\"[]")]


def load_users(path: str | Path, split: str | None = None) -> list[User]:
    """The users of a C-SSRS CSV (columns User, Post, Label), optionally only one split."""
    path = Path(path)
    try:
        with path.open(encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = {"User", "Post", "Label"} - set(reader.fieldnames or [])
            if missing:
                raise UserError(f"{path}: not a C-SSRS file (missing columns {', '.join(sorted(missing))})")
            users = [User(r["User"], tuple(posts_of(r["Post"])), r["Label"]) for r in reader]
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except csv.Error as exc:
        raise UserError(f"{path}: unreadable CSV ({exc})") from None
    unknown = {u.severity for u in users} - set(SEVERITIES)
    if unknown:
        raise UserError(f"{path}: unknown grades {', '.join(sorted(unknown))}; expected {', '.join(SEVERITIES)}")
    return [u for u in users if split is None or user_split(u.name) == split]
