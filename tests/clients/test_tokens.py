"""API tokens page: the secret is shown once, stored only as SHA-256, revocable at once."""

from __future__ import annotations

import hashlib
import re

from sqlalchemy import select

from portal.extensions import db
from tenants.audit import AuditEvent
from tenants.models import ApiToken
from tests.api.util import bearer, in_tenant, issue_token, problem
from tests.factories import csrf_token, login

RAW = re.compile(r'data-testid="raw-token">(bop_[A-Za-z0-9_-]{40})<')


def create_on_page(client, slug: str, name: str, scope: str) -> str:
    url = f"/t/{slug}/tokens"
    r = client.post(url, data={"csrf_token": csrf_token(client, url), "name": name, "scope": scope})
    assert r.status_code == 200, r.data[:300]
    match = RAW.search(r.get_data(as_text=True))
    assert match, "the new token is not shown"
    return match.group(1)


def test_token_is_shown_once_and_only_its_hash_is_stored(app, client, world):
    member = world["a_client_member"]
    login(client, member)
    raw = create_on_page(client, world.a.slug, "accounting export", "read")
    with in_tenant(app, world.a):
        row = db.session.scalars(select(ApiToken).where(ApiToken.user_id == member.id)).one()
        assert row.token_hash == hashlib.sha256(raw.encode()).digest()
        assert row.prefix == raw[:12] and row.scope == "read" and row.name == "accounting export"
        for column in ApiToken.__table__.columns:
            value = getattr(row, column.key)
            stored = value if isinstance(value, bytes) else str(value).encode()
            assert raw.encode() not in stored and raw[12:].encode() not in stored, column.key
        [event] = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "token.created"))
        assert event.actor_id == member.id and raw not in str(event.data)

    page = client.get(f"/t/{world.a.slug}/tokens").get_data(as_text=True)
    assert raw not in page and raw[:12] in page and "accounting export" in page
    assert "Read only" in page and "Never" in page


def test_token_works_on_the_api_until_revoked(app, client, world):
    member = world["a_client_member"]
    login(client, member)
    raw = create_on_page(client, world.a.slug, "script", "write")
    api = app.test_client()
    r = api.get("/api/v1/me", headers=bearer(raw))
    assert r.status_code == 200
    assert r.json == {"id": str(member.id), "email": member.email, "name": member.email.split("@")[0],
                      "locale": "en", "tenant": world.a.slug, "scope": "write"}
    with in_tenant(app, world.a):
        row = db.session.scalars(select(ApiToken).where(ApiToken.user_id == member.id)).one()
        assert row.last_used_at is not None
        token_id = row.id

    url = f"/t/{world.a.slug}/tokens"
    r = client.post(f"{url}/{token_id}/revoke", data={"csrf_token": csrf_token(client, url)})
    assert r.status_code == 302
    assert "Revoked" in client.get(url).get_data(as_text=True)
    body = problem(api.get("/api/v1/me", headers=bearer(raw)), 401)
    assert "detail" not in body or raw not in body["detail"]
    with in_tenant(app, world.a):
        [event] = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "token.revoked"))
        assert event.actor_id == member.id and event.object_id == str(token_id)


def test_only_ones_own_tokens_are_listed_and_revocable(app, client, world):
    other = issue_token(app, world["a_client_approver"], world.a, "read", name="approver's tool")
    foreign = issue_token(app, world["b_client_member"], world.b, "read", name="b tool")
    with in_tenant(app, world.a):
        other_id = db.session.scalars(select(ApiToken.id).where(
            ApiToken.user_id == world["a_client_approver"].id)).one()
    with in_tenant(app, world.b):
        foreign_id = db.session.scalars(select(ApiToken.id).where(
            ApiToken.user_id == world["b_client_member"].id)).one()

    login(client, world["a_client_member"])
    url = f"/t/{world.a.slug}/tokens"
    page = client.get(url).get_data(as_text=True)
    assert "approver&#39;s tool" not in page and "b tool" not in page
    assert "You have no API tokens here yet." in page
    token = csrf_token(client, url)
    for token_id in (other_id, foreign_id, "nonsense"):
        r = client.post(f"{url}/{token_id}/revoke", data={"csrf_token": token})
        assert r.status_code == 404
    api = app.test_client()
    assert api.get("/api/v1/me", headers=bearer(other)).status_code == 200
    assert api.get("/api/v1/me", headers=bearer(foreign)).status_code == 200


def test_token_form_refuses_a_missing_name(client, world):
    login(client, world["a_client_member"])
    url = f"/t/{world.a.slug}/tokens"
    r = client.post(url, data={"csrf_token": csrf_token(client, url), "name": "", "scope": "read"})
    assert r.status_code == 422 and b"bop_" not in r.data
    assert b"This field is required." in r.data
