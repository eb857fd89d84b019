"""Users of the queue and their roles (agent, reviewer, admin), with scrypt-hashed passwords for logins and
HTTP API tokens (stored as SHA-256 hashes: a token is a long random secret, so a fast hash is enough).

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
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, RowMapping, func, insert, select, update

from copilot.errors import NotFoundError, PermissionDenied, UserError
from copilot.queue import tables
from copilot.queue.records import PERMISSIONS, ROLES, ApiToken, User

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")
# scrypt cost: 16 MiB of memory and about 50 ms per hash; stored with the hash so it can be raised later.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1
MIN_PASSWORD = 8  # for passwords set or changed later; the first user's may come from a script
TOKEN_PREFIX = "cpt_"  # so a leaked token is recognisable in logs and by secret scanners
_TOUCH_EVERY = timedelta(minutes=1)  # last_used_at is written at most this often per token


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


# API tokens -------------------------------------------------------------------------------------------


def new_token() -> str:
    """A fresh API token: the prefix and 256 random bits."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """The SHA-256 hex digest stored for a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def add_token(conn: Connection, user: str, *, by: str, token: str, label: str | None, now: datetime) -> ApiToken:
    """Store a new token of ``user`` (its hash only). A user may make their own; only an admin one for others."""
    if role_of(conn, user) is None:
        raise UserError(f"unknown user {user!r}: add it first with `copilot users add {user} --role ROLE`")
    if by != user:
        if role_of(conn, by) is None:
            raise PermissionDenied(f"unknown user {by!r}")
        require(conn, by, "users")
    label = (label or "").strip() or None
    if label is not None and len(label) > 200:
        raise UserError("a token label has at most 200 characters")
    t = tables.api_tokens
    key = conn.execute(insert(t).values(
        user=user, token_hash=hash_token(token), label=label, created_at=now, created_by=by,
    )).inserted_primary_key
    assert key is not None
    return _load_token(conn, int(key[0]))


def list_tokens(conn: Connection, user: str | None = None) -> list[ApiToken]:
    """Every token (of one user, when given), oldest first; revoked ones included."""
    query = _token_query()
    if user is not None:
        query = query.where(tables.api_tokens.c.user == user)
    return [_token(row) for row in conn.execute(query.order_by(tables.api_tokens.c.id)).mappings()]


def revoke_token(conn: Connection, token_id: int, *, by: str, now: datetime) -> ApiToken:
    """Revoke a token (its owner or an admin); revoking a revoked token changes nothing."""
    found = _load_token(conn, token_id)
    if by != found.user:
        if role_of(conn, by) is None:
            raise PermissionDenied(f"unknown user {by!r}")
        require(conn, by, "users")
    if found.revoked_at is None:
        conn.execute(update(tables.api_tokens).where(tables.api_tokens.c.id == token_id).values(revoked_at=now))
    return _load_token(conn, token_id)


def find_token(conn: Connection, token: str) -> ApiToken | None:
    """The active token with this secret, with its user's current role; None if unknown or revoked."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    t = tables.api_tokens
    row = conn.execute(_token_query().where(t.c.token_hash == hash_token(token))).mappings().first()
    if row is None or row["revoked_at"] is not None:
        return None
    return _token(row)


def needs_touch(found: ApiToken, now: datetime) -> bool:
    """Whether to record a token's use now: at most once a minute, so not every request is a write."""
    return found.last_used_at is None or now - found.last_used_at >= _TOUCH_EVERY


def touch_token(conn: Connection, found: ApiToken, now: datetime) -> None:
    """Record that a token was used."""
    conn.execute(update(tables.api_tokens).where(tables.api_tokens.c.id == found.id).values(last_used_at=now))


def _token_query() -> Any:
    t, u = tables.api_tokens, tables.users
    return select(t, u.c.role).join(u, u.c.name == t.c.user)


def _load_token(conn: Connection, token_id: int) -> ApiToken:
    row = conn.execute(_token_query().where(tables.api_tokens.c.id == token_id)).mappings().first()
    if row is None:
        raise NotFoundError(f"no API token {token_id}")
    return _token(row)


def _token(row: RowMapping) -> ApiToken:
    return ApiToken(id=row["id"], user=row["user"], role=row["role"], label=row["label"],
                    created_at=row["created_at"], created_by=row["created_by"], last_used_at=row["last_used_at"],
                    revoked_at=row["revoked_at"])
