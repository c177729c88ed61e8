"""Bearer authentication from the attacker's side: only a live token of the right tenant works."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from portal.extensions import db
from tenants.models import Membership, User
from tests.api.util import bearer, in_tenant, issue_token, problem
from tests.factories import login


@pytest.mark.parametrize("header", [
    None,
    "Bearer",
    "Bearer garbage",
    "Bearer bop_" + "A" * 40,  # well formed, never issued
    "Basic dXNlcjpwYXNz",
    "bop_" + "A" * 40,
])
def test_missing_or_bad_token_answers_401_problem(client, header):
    headers = {"Authorization": header} if header else {}
    r = client.get("/api/v1/me", headers=headers)
    body = problem(r, 401)
    assert body["title"] == "Sign-in required"
    assert r.headers["WWW-Authenticate"].startswith("Bearer")


def test_the_session_cookie_opens_nothing_under_api(client, world):
    login(client, world["a_client_admin"])
    assert client.get(f"/t/{world.a.slug}/").status_code == 200  # signed in for pages
    problem(client.get("/api/v1/me"), 401)
    problem(client.get(f"/api/v1/tenants/{world.a.slug}/users"), 401)


def test_revoked_token_and_disabled_user_answer_401(app, client, world):
    from portal.api.tokens import revoke_token
    from tenants.models import ApiToken, Tenant

    raw = issue_token(app, world["a_client_admin"], world.a)
    assert client.get("/api/v1/me", headers=bearer(raw)).status_code == 200
    with in_tenant(app, world.a):
        user = db.session.get(User, world["a_client_admin"].id)
        token = db.session.scalars(select(ApiToken).where(ApiToken.user_id == user.id)).one()
        revoke_token(user, db.session.get(Tenant, world.a.id), token.id)
    problem(client.get("/api/v1/me", headers=bearer(raw)), 401)

    raw = issue_token(app, world["a_client_approver"], world.a)
    assert client.get("/api/v1/me", headers=bearer(raw)).status_code == 200
    with app.app_context():
        db.session.get(User, world["a_client_approver"].id).is_active = False
        db.session.commit()
    problem(client.get("/api/v1/me", headers=bearer(raw)), 401)


def test_read_token_cannot_write(app, client, world):
    raw = issue_token(app, world["a_client_admin"], world.a, "read")
    r = client.post(f"/api/v1/tenants/{world.a.slug}/users", headers=bearer(raw),
                    json={"email": "reader@example.test", "role": "client_member"})
    body = problem(r, 403)
    assert "read-only" in body["detail"]
    with in_tenant(app, world.a):
        assert db.session.scalars(select(Membership).join(User, User.id == Membership.user_id)
                                  .where(User.email == "reader@example.test")).first() is None


def test_token_of_tenant_a_answers_404_on_tenant_b(app, client, world):
    raw = issue_token(app, world["a_client_admin"], world.a, "write")
    for method, path in [("GET", "users"), ("GET", "audit-events"), ("POST", "users")]:
        r = client.open(f"/api/v1/tenants/{world.b.slug}/{path}", method=method, headers=bearer(raw),
                        json={"email": "x@example.test", "tenant_id": str(world.b.id)})
        problem(r, 404)
        assert world.b.name not in r.get_data(as_text=True)


def test_provider_admin_token_is_limited_to_its_tenant(app, client, world):
    """A provider admin sees every tenant in the pages, but a token reaches one tenant only."""
    raw = issue_token(app, world["provider_admin"], world.a, "read")
    r = client.get("/api/v1/tenants", headers=bearer(raw))
    assert r.status_code == 200
    assert [t["slug"] for t in r.json["items"]] == [world.a.slug] and r.json["next_cursor"] is None
    assert client.get(f"/api/v1/tenants/{world.a.slug}/users", headers=bearer(raw)).status_code == 200
    problem(client.get(f"/api/v1/tenants/{world.b.slug}/users", headers=bearer(raw)), 404)


def test_role_rules_apply_to_tokens(app, client, world):
    raw = issue_token(app, world["a_client_member"], world.a, "write")
    problem(client.get(f"/api/v1/tenants/{world.a.slug}/users", headers=bearer(raw)), 403)
    problem(client.get(f"/api/v1/tenants/{world.a.slug}/audit-events", headers=bearer(raw)), 403)
    problem(client.post(f"/api/v1/tenants/{world.a.slug}/users", headers=bearer(raw),
                        json={"email": "member-invite@example.test"}), 403)


def test_last_used_is_recorded_at_most_once_a_minute(app, client, world):
    from tenants.models import ApiToken

    raw = issue_token(app, world["a_client_member"], world.a)

    def last_used():
        with in_tenant(app, world.a):
            return db.session.scalars(select(ApiToken.last_used_at).where(
                ApiToken.user_id == world["a_client_member"].id)).one()

    assert last_used() is None
    client.get("/api/v1/me", headers=bearer(raw))
    first = last_used()
    assert first is not None
    client.get("/api/v1/me", headers=bearer(raw))
    assert last_used() == first
