"""Logins for the web app: the first-run admin, the password check, and a brake on password guessing.

There is no default password. On the first start (no user at all) an ``admin`` user is created with a
random password, printed once to the console and kept in ``<data_dir>/admin-password.txt`` (mode 0600)
until that password is changed; the app asks the admin to change it while the file exists.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from copilot.config import Settings
from copilot.errors import UserError

ADMIN_NAME = "admin"
PASSWORD_FILE = "admin-password.txt"
MAX_FAILURES = 5  # failed logins for one name within FAILURE_WINDOW_S before it is locked
FAILURE_WINDOW_S = 300.0
LOCKOUT_S = 60.0


def password_file(settings: Settings) -> Path:
    """Where the first-run admin password is kept until it is changed."""
    return settings.data_dir / PASSWORD_FILE


@dataclass(frozen=True)
class FirstRun:
    """The admin created on the first start, and where its password was written."""

    name: str
    password: str
    path: Path

    def message(self, url: str | None = None) -> str:
        where = f" at {url}" if url else ""
        return (
            f"First start: created the admin user {self.name!r} with the password  {self.password}\n"
            f"Log in{where} as {self.name} with it, then change it (Account tab, or "
            f"`copilot users passwd {self.name}`). It is also in {self.path} (readable by you only)\n"
            f"until it is changed."
        )


def ensure_admin(queue: Any, settings: Settings) -> FirstRun | None:
    """Create the first admin with a random password when no user exists; None if users exist already."""
    if queue.list_users():
        return None
    password = secrets.token_urlsafe(12)
    try:
        queue.add_user(ADMIN_NAME, "admin", password=password)
    except UserError:
        if queue.list_users():  # another process created the first user at the same moment
            return None
        raise
    path = password_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(f"user: {ADMIN_NAME}\npassword: {password}\n")
    os.chmod(path, 0o600)  # in case the file existed with looser bits
    return FirstRun(ADMIN_NAME, password, path)


def initial_password_pending(settings: Settings, name: str) -> bool:
    """Whether ``name`` is the first-run admin whose generated password has not been changed yet."""
    path = password_file(settings)
    if not path.exists():
        return False
    try:
        first = path.read_text(encoding="utf-8").splitlines()[0]
    except (OSError, IndexError):
        return False
    return first.strip() == f"user: {name}"


def forget_initial_password(settings: Settings, name: str) -> None:
    """Remove the kept first-run password once ``name`` (its user) has set a new one."""
    if initial_password_pending(settings, name):
        password_file(settings).unlink(missing_ok=True)


class LoginGuard:
    """Checks logins against the queue's users; locks a name for a while after repeated failures."""

    def __init__(self, queue: Any, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.queue = queue
        self.clock = clock
        self._failures: dict[str, list[float]] = {}
        self._locked_until: dict[str, float] = {}
        self._lock = threading.Lock()

    def locked(self, name: str) -> bool:
        with self._lock:
            return self._locked_until.get(name, 0.0) > self.clock()

    def __call__(self, username: str, password: str) -> bool:
        """Gradio's ``auth`` callable: True for a known user with the right password."""
        name = (username or "").strip()
        if not name or not password or self.locked(name):
            return False
        role = self.queue.verify_password(name, password)
        now = self.clock()
        with self._lock:
            if role is not None:
                self._failures.pop(name, None)
                return True
            recent = [t for t in self._failures.get(name, []) if now - t < FAILURE_WINDOW_S] + [now]
            self._failures[name] = recent
            if len(recent) >= MAX_FAILURES:
                self._locked_until[name] = now + LOCKOUT_S
                self._failures.pop(name, None)
        return False


LOGIN_MESSAGE = (
    "Log in with your copilot user. On the first start the admin password is printed in the console "
    "that started the app."
)

