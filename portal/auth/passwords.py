"""Password hashing with Argon2id (at least OWASP's minimum: 19 MiB, 2 passes, 1 lane)."""

from __future__ import annotations

from contextlib import suppress
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from flask_babel import gettext as _

MIN_LENGTH = 12


@cache
def _hasher(time_cost: int, memory_kib: int) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=1)


def hasher() -> PasswordHasher:
    cfg = current_app.config
    return _hasher(max(2, cfg["ARGON2_TIME_COST"]), max(19 * 1024, cfg["ARGON2_MEMORY_KIB"]))


@cache
def _dummy_hash(time_cost: int, memory_kib: int) -> str:
    return _hasher(time_cost, memory_kib).hash("not a real password")


def hash_password(password: str) -> str:
    """The Argon2id hash of ``password``."""
    return hasher().hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """Check ``password``; with no stored hash, spend the same time and answer False."""
    h = hasher()
    if not stored:
        with suppress(VerificationError):
            h.verify(_dummy_hash(h.time_cost, h.memory_cost), password + "x")
        return False
    try:
        return h.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return hasher().check_needs_rehash(stored)


def weakness(password: str, email: str = "") -> str | None:
    """A reason why ``password`` is too weak, or None."""
    if len(password) < MIN_LENGTH:
        return _("Use at least %(n)d characters.", n=MIN_LENGTH)
    if email and email.split("@")[0].lower() in password.lower():
        return _("Do not use your email address in your password.")
    if len(set(password)) < 5:
        return _("Use a less repetitive password.")
    return None
