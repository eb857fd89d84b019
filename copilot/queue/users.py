"""Users of the queue and their roles (agent, reviewer, admin), with scrypt-hashed passwords for logins.

The rule, enforced here and so for the CLI and the UI alike: while no user exists, the queue runs in
single-user mode and anyone may do anything (the first user added must be an admin). Once a user
exists, every actor must be a known user whose role allows the action.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from datetime import UTC, datetime

from sqlalchemy import Connection, func, insert, select, update

from copilot.errors import PermissionDenied, UserError
from copilot.queue import tables
from copilot.queue.records import PERMISSIONS, ROLES, User

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")
# scrypt cost: 16 MiB of memory and about 50 ms per hash; stored with the hash so it can be raised later.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1
MIN_PASSWORD = 8  # for passwords set or changed later; the first user's may come from a script


def hash_password(password: str) -> str:
    """A salted scrypt hash in the form ``scrypt$n$r$p$salt$hash`` (base64)."""
    if not password:
        raise UserError("a password must not be empty")
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32)
    return "$".join(
        ["scrypt", str(_SCRYPT_N), str(_SCRYPT_R), str(_SCRYPT_P), _b64(salt), _b64(digest)]
    )


def check_password(password: str, stored: str | None) -> bool:
    """Whether ``password`` matches a hash made by :func:`hash_password` (constant-time)."""
    if not stored or not password:
        return False
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected)
        )
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _now() -> datetime:
    return datetime.now(UTC)


def count_users(conn: Connection) -> int:
    """How many users exist (0 means single-user mode)."""
    return int(conn.execute(select(func.count()).select_from(tables.users)).scalar_one())


def role_of(conn: Connection, name: str) -> str | None:
    """The role of a user, or None for an unknown name."""
    return conn.execute(select(tables.users.c.role).where(tables.users.c.name == name)).scalar_one_or_none()


def add_user(conn: Connection, name: str, role: str, *, password: str | None = None, by: str | None = None) -> User:
    """Add a user. The first user must be an admin; after that only an admin may add users."""
    if not _NAME.match(name):
        raise UserError(f"invalid user name {name!r}: use letters, digits and . _ @ - (at most 100)")
    if role not in ROLES:
        raise UserError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    existing = count_users(conn)
    if existing == 0:
        if role != "admin":
            raise UserError("the first user must be an admin (add one with --role admin)")
    else:
        if by is None:
            raise PermissionDenied("adding a user needs an admin: pass --by ADMIN")
        require(conn, by, "users")
    if role_of(conn, name) is not None:
        raise UserError(f"user {name!r} already exists")
    now = _now()
    conn.execute(
        insert(tables.users).values(
            name=name, role=role, password_hash=hash_password(password) if password else None,
            created_at=now, created_by=by,
        )
    )
    return User(name=name, role=role, has_password=password is not None, created_at=now)


def list_users(conn: Connection) -> list[User]:
    """Every user, by name."""
    rows = conn.execute(select(tables.users).order_by(tables.users.c.name)).mappings()
    return [
        User(name=r["name"], role=r["role"], has_password=r["password_hash"] is not None, created_at=r["created_at"])
        for r in rows
    ]


def verify_password(conn: Connection, name: str, password: str) -> str | None:
    """The user's role if the password is right, else None (for the UI's login)."""
    row = conn.execute(
        select(tables.users.c.role, tables.users.c.password_hash).where(tables.users.c.name == name)
    ).first()
    if row is None:
        check_password(password, hash_password("timing-equaliser"))  # same cost for unknown names
        return None
    return row.role if check_password(password, row.password_hash) else None


def set_password(conn: Connection, name: str, password: str, *, by: str) -> None:
    """Set a user's login password: anyone may change their own, only an admin someone else's."""
    if role_of(conn, name) is None:
        raise UserError(f"unknown user {name!r}")
    if by != name:
        if role_of(conn, by) is None:
            raise PermissionDenied(f"unknown user {by!r}")
        require(conn, by, "users")
    if len(password or "") < MIN_PASSWORD:
        raise UserError(f"a password needs at least {MIN_PASSWORD} characters")
    conn.execute(update(tables.users).where(tables.users.c.name == name)
                 .values(password_hash=hash_password(password)))


def require(conn: Connection, actor: str, action: str) -> str | None:
    """Check that ``actor`` may do ``action``; return their role (None in single-user mode)."""
    if not actor or not actor.strip():
        raise UserError("an actor is needed: pass --by NAME")
    role = role_of(conn, actor)
    if role is None:
        if count_users(conn) == 0:
            return None
        raise PermissionDenied(f"unknown user {actor!r}: add it with `copilot users add {actor} --role ROLE`")
    if role not in PERMISSIONS[action]:
        allowed = " or ".join(sorted(PERMISSIONS[action]))
        raise PermissionDenied(f"{actor} is {_article(role)} {role}; {action} needs {allowed}")
    return role


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"
