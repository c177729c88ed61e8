"""Helpers for API tests: tokens issued the way the tokens page does, bearer headers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask

from portal.extensions import db
from tenants.context import Scope, bound
from tenants.models import Tenant, User
from tests.factories import Person, TenantRef


def issue_token(app: Flask, person: Person, tenant: TenantRef, scope: str = "read",
                name: str = "test token") -> str:
    """A raw token of ``person`` in ``tenant`` (created through the real service)."""
    from portal.api.tokens import create_token

    with app.app_context():
        user, row = db.session.get(User, person.id), db.session.get(Tenant, tenant.id)
        with bound(Scope(user_id=user.id, tenant_ids=frozenset({row.id}))):
            return create_token(user, row, name, scope)


def bearer(raw: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {raw}"}


def problem(response, status: int) -> dict:
    """Assert ``response`` is an RFC 9457 problem with ``status``; return its body."""
    assert response.status_code == status, (response.status_code, response.data[:500])
    assert response.mimetype == "application/problem+json", response.mimetype
    body = json.loads(response.data)
    assert body["status"] == status and body["title"] and body["type"] == "about:blank", body
    return body


@contextmanager
def in_tenant(app: Flask, tenant: TenantRef) -> Iterator[None]:
    """A fresh application context (own session, nothing cached) bound to ``tenant``."""
    with app.app_context(), bound(Scope(tenant_ids=frozenset({tenant.id}))):
        try:
            yield
        finally:
            db.session.rollback()
