"""The /api/v1 endpoints: contents, cursor pagination, invitations, and problem+json errors."""

from __future__ import annotations

import base64
import json

import pytest
from sqlalchemy import select

from portal.extensions import db
from tenants import audit
from tenants.audit import AuditEvent
from tenants.models import Membership, User
from tests.api.util import bearer, in_tenant, issue_token, problem
from tests.factories import unique


def add_pending_members(app, tenant, n: int) -> None:
    """``n`` invited-but-pending members, inserted directly (no password to hash: fast)."""
    with in_tenant(app, tenant):
        for _ in range(n):
            user = User(email=f"{unique('bulk')}@example.test", name="Bulk")
            db.session.add(user)
            db.session.flush()
            db.session.add(Membership(user_id=user.id, role="client_member"))
        db.session.commit()


def walk(client, url: str, raw: str, limit: int) -> tuple[list[dict], int]:
    items, pages, cursor = [], 0, None
    while True:
        query = {"limit": limit} | ({"cursor": cursor} if cursor else {})
        r = client.get(url, headers=bearer(raw), query_string=query)
        assert r.status_code == 200, r.data[:300]
        assert len(r.json["items"]) <= limit
        items += r.json["items"]
        pages += 1
        cursor = r.json["next_cursor"]
        if cursor is None:
            return items, pages
        assert pages < 100


def test_me_describes_the_token(app, client, world):
    admin = world["a_client_admin"]
    raw = issue_token(app, admin, world.a, "read")
    r = client.get("/api/v1/me", headers=bearer(raw))
    assert r.status_code == 200 and r.mimetype == "application/json"
    assert r.headers["Cache-Control"] == "no-store"
    assert r.json["id"] == str(admin.id) and r.json["email"] == admin.email
    assert r.json["tenant"] == world.a.slug and r.json["scope"] == "read"


def test_tenants_lists_only_the_tokens_tenant(app, client, world):
    raw = issue_token(app, world["a_client_member"], world.a)
    r = client.get("/api/v1/tenants", headers=bearer(raw))
    assert r.status_code == 200
    assert r.json == {"items": [{"slug": world.a.slug, "name": world.a.name, "currency": "VND",
                                 "timezone": "Asia/Ho_Chi_Minh", "locale": "vi"}],
                      "next_cursor": None}


def test_users_pagination_walks_every_member_exactly_once(app, client, world):
    add_pending_members(app, world.a, 8)
    raw = issue_token(app, world["a_client_admin"], world.a)
    items, pages = walk(client, f"/api/v1/tenants/{world.a.slug}/users", raw, limit=3)
    with in_tenant(app, world.a):
        expected = {str(m) for m in db.session.scalars(select(Membership.id))}
    ids = [item["id"] for item in items]
    assert len(ids) == len(set(ids)) == len(expected) == 11
    assert set(ids) == expected and pages == 4
    assert [i["created_at"] for i in items] == sorted(i["created_at"] for i in items)
    admin = next(i for i in items if i["email"] == world["a_client_admin"].email)
    assert admin["role"] == "client_admin" and admin["signed_up"] is True and admin["mfa"] is True
    assert sum(1 for i in items if not i["signed_up"]) == 8


def test_audit_events_pagination_newest_first_and_side_filter(app, client, world):
    with in_tenant(app, world.a):
        for i in range(7):
            audit.record("note.added", audit.SYSTEM, tenant_id=world.a.id, data={"name": f"n{i}"})
        db.session.commit()
        expected = [str(e) for e in db.session.scalars(select(AuditEvent.id).order_by(AuditEvent.seq.desc()))]
    raw = issue_token(app, world["a_client_admin"], world.a)
    url = f"/api/v1/tenants/{world.a.slug}/audit-events"
    items, pages = walk(client, url, raw, limit=4)
    # token.created is written after the snapshot above: it comes first (newest).
    assert [i["action"] for i in items][0] == "token.created"
    assert [i["id"] for i in items][1:] == expected and pages == 3

    r = client.get(url, headers=bearer(raw), query_string={"side": "provider"})
    assert r.status_code == 200
    sides = {i["actor_side"] for i in r.json["items"]}
    assert sides == {"provider"} and len(r.json["items"]) == 2  # the two staff assignments
    assert r.json["items"][0]["actor"] == world["provider_admin"].email


def _b64(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize("cursor", [
    "!!!not base64!!!",
    "e30",  # {} : not a list
    _b64([]),
    _b64(["2026-01-01T00:00:00+00:00"]),
    _b64(["yesterday", "not-a-uuid"]),
    _b64(["2026-01-01T00:00:00", "00000000-0000-4000-8000-000000000000"]),  # no time zone
    _b64([1, 2]),
    "A" * 500,
    "",
])
def test_malformed_users_cursor_answers_400_problem(app, client, world, cursor):
    raw = issue_token(app, world["a_client_admin"], world.a)
    r = client.get(f"/api/v1/tenants/{world.a.slug}/users", headers=bearer(raw),
                   query_string={"cursor": cursor})
    body = problem(r, 400)
    assert "cursor is not valid" in body["detail"]


@pytest.mark.parametrize("cursor", ["%%%", _b64(["1"]), _b64([0]), _b64([True]), _b64([1.5]), _b64("x")])
def test_malformed_audit_cursor_answers_400_problem(app, client, world, cursor):
    raw = issue_token(app, world["a_client_admin"], world.a)
    r = client.get(f"/api/v1/tenants/{world.a.slug}/audit-events", headers=bearer(raw),
                   query_string={"cursor": cursor})
    assert "cursor is not valid" in problem(r, 400)["detail"]


def test_an_empty_cursor_is_malformed_on_every_list_and_the_document_says_what_a_cursor_may_be(app, client, world):
    raw = issue_token(app, world["a_client_admin"], world.a)
    spec = client.get("/api/v1/openapi.json").json
    lists = [path for path, ops in spec["paths"].items()
             if any(p["name"] == "cursor" for p in ops.get("get", {}).get("parameters", []))]
    assert "/api/v1/tenants/{tenant_slug}/tasks" in lists and len(lists) >= 5
    for path in lists:
        cursor = next(p for p in spec["paths"][path]["get"]["parameters"] if p["name"] == "cursor")
        assert (cursor["schema"]["minLength"], cursor["schema"]["maxLength"]) == (1, 200), path
    for path in ("tasks", "users", "documents"):
        r = client.get(f"/api/v1/tenants/{world.a.slug}/{path}", headers=bearer(raw), query_string={"cursor": ""})
        assert "cursor is not valid" in problem(r, 400)["detail"], path


def test_validation_errors_are_problems_with_errors(app, client, world):
    raw = issue_token(app, world["a_client_admin"], world.a, "write")
    r = client.get(f"/api/v1/tenants/{world.a.slug}/users", headers=bearer(raw),
                   query_string={"limit": 0})
    body = problem(r, 422)
    assert "limit" in body["errors"]["query"]
    r = client.post(f"/api/v1/tenants/{world.a.slug}/users", headers=bearer(raw),
                    json={"email": "not an address", "role": "provider_admin"})
    body = problem(r, 422)
    assert set(body["errors"]["json"]) == {"email", "role"}
    r = client.post(f"/api/v1/tenants/{world.a.slug}/users", headers=bearer(raw),
                    data="{not json", content_type="application/json")
    problem(r, 400)


def test_unknown_path_and_wrong_method_are_problems(app, client, world):
    raw = issue_token(app, world["a_client_admin"], world.a, "write")
    problem(client.get("/api/v1/nothing-here", headers=bearer(raw)), 404)
    r = client.delete("/api/v1/me", headers=bearer(raw))
    problem(r, 405)
    assert set(r.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}  # what the caller may use instead
    r = client.delete(f"/api/v1/tenants/{world.a.slug}/users", headers=bearer(raw))
    problem(r, 405)
    assert {"GET", "POST"} <= set(r.headers["Allow"].split(", "))


def test_a_page_answers_a_wrong_method_with_its_own_page_and_the_methods_it_takes(client):
    r = client.put("/auth/login")
    assert r.status_code == 405 and r.mimetype == "text/html"
    assert set(r.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS", "POST"}


def test_write_token_invites_a_user_and_ignores_a_tenant_id(app, client, world, smtp, run_jobs):
    raw = issue_token(app, world["a_client_admin"], world.a, "write")
    with in_tenant(app, world.b):
        b_before = set(db.session.scalars(select(Membership.id)))
    email = f"{unique('api')}@example.test"
    r = client.post(f"/api/v1/tenants/{world.a.slug}/users", headers=bearer(raw),
                    json={"email": email, "name": "Via API", "role": "client_approver",
                          "tenant_id": str(world.b.id)})
    assert r.status_code == 201, r.data
    assert r.json["email"] == email and r.json["role"] == "client_approver"
    assert r.json["signed_up"] is False and r.json["mfa"] is False and r.json["name"] == "Via API"
    with in_tenant(app, world.a):
        membership = db.session.get(Membership, r.json["id"])
        assert membership is not None and membership.tenant_id == world.a.id
    with in_tenant(app, world.b):
        assert set(db.session.scalars(select(Membership.id))) == b_before
    run_jobs()
    [mail] = smtp.to(email)
    assert "/auth/invite/" in mail.get_content()

    again = client.post(f"/api/v1/tenants/{world.a.slug}/users", headers=bearer(raw), json={"email": email})
    assert "already a user" in problem(again, 409)["detail"]


def test_default_page_size_comes_from_the_config(app, client, world):
    raw = issue_token(app, world["a_client_admin"], world.a)
    app.config["API_PAGE_SIZE"] = 2
    try:
        r = client.get(f"/api/v1/tenants/{world.a.slug}/users", headers=bearer(raw))
    finally:
        app.config["API_PAGE_SIZE"] = 50
    assert r.status_code == 200 and len(r.json["items"]) == 2 and r.json["next_cursor"]
