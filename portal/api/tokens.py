"""Personal access tokens."""

from __future__ import annotations

from tenants.models import User


def authenticate_bearer() -> User | None:
    return None
