"""The workspace home page and the client-visible access log."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from sqlalchemy import select

from portal.extensions import db
from tenants import audit
from tenants.audit import AuditEvent
from tests.api.util import in_tenant
from tests.factories import csrf_token, login, unique


def nav(html: str) -> str:
    match = re.search(r'<nav class="tenantnav"[^>]*>(.*?)</nav>', html, re.S)
    assert match, "no tenant navigation"
    return match.group(1)


def test_home_greets_a_client_admin_and_says_what_to_do_next(client, world):
    admin = world["a_client_admin"]
    login(client, admin)
    r = client.get(f"/t/{world.a.slug}/")
    assert r.status_code == 200
    page = r.get_data(as_text=True)
    assert f"Welcome to {world.a.name}" in page
    assert "No documents yet. Upload invoices, receipts and bank statements" in page
    assert f'href="/t/{world.a.slug}/documents"' in page
    assert "Invite your colleagues" in page
    assert re.search(r'data-testid="users-card">.*?3 people have access', page, re.S)
    # The provider admin's assignments of staff are provider-side events, shown on the card.
    card = re.search(r'data-testid="access-card">(.*?)</section>', page, re.S).group(1)
    assert card.count("gave a provider staff member access") == 2
    assert world["provider_admin"].email in card
    links = nav(page)
    for label in ("Home", "Approvals", "Tasks", "Documents", "Requests", "Users", "Access log", "API tokens"):
        assert f">{label}</a>" in links


def test_home_of_a_member_shows_only_what_a_member_may_open(client, world):
    login(client, world["a_client_member"])
    page = client.get(f"/t/{world.a.slug}/").get_data(as_text=True)
    links = nav(page)
    assert ">API tokens</a>" in links and ">Users</a>" not in links and ">Access log</a>" not in links
    assert "Invite your colleagues" not in page
    assert 'data-testid="users-card"' not in page and 'data-testid="access-card"' not in page
    assert "No documents yet." in page


def test_assigned_staff_see_users_but_not_the_access_log(client, world):
    login(client, world["staff"])
    page = client.get(f"/t/{world.a.slug}/").get_data(as_text=True)
    links = nav(page)
    assert ">Users</a>" in links and ">Access log</a>" not in links
    assert client.get(f"/t/{world.a.slug}/access-log").status_code == 403


def test_access_log_shows_provider_events_and_filters_by_side(app, client, world):
    admin = world["a_client_admin"]
    login(client, admin)
    users_url = f"/t/{world.a.slug}/users"
    email = f"{unique('logged')}@example.test"
    r = client.post(users_url + "/invite", data={"csrf_token": csrf_token(client, users_url),
                                                 "email": email, "name": "", "role": "client_member"})
    assert r.status_code == 302

    page = client.get(f"/t/{world.a.slug}/access-log").get_data(as_text=True)
    rows = re.findall(r'<tr data-action="([^"]+)" data-side="([^"]+)">(.*?)</tr>', page, re.S)
    assert ("user.invited", "client") in [(a, s) for a, s, _ in rows]
    assert ("assignment.added", "provider") in [(a, s) for a, s, _ in rows]
    invited = next(body for a, _, body in rows if a == "user.invited")
    assert "invited a user" in invited and email in invited and admin.email in invited
    assert "127.0.0.1" in invited
    assert rows[0][0] == "user.invited"  # newest first

    page = client.get(f"/t/{world.a.slug}/access-log?side=provider").get_data(as_text=True)
    rows = re.findall(r'<tr data-action="([^"]+)" data-side="([^"]+)">', page)
    assert rows and {side for _, side in rows} == {"provider"}
    assert "user.invited" not in [a for a, _ in rows] and email not in page
    assert "Only what the provider's people did" in page


def test_access_log_shows_times_in_the_tenants_time_zone(app, client, world):
    login(client, world["a_client_admin"])
    page = client.get(f"/t/{world.a.slug}/access-log").get_data(as_text=True)
    with in_tenant(app, world.a):
        first = db.session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc())).first()
        local = format_datetime(first.occurred_at, "medium", tzinfo=ZoneInfo("Asia/Ho_Chi_Minh"),
                                locale="en")
        utc = format_datetime(first.occurred_at, "medium", tzinfo=ZoneInfo("UTC"), locale="en")
    assert local != utc
    assert local in page and "Asia/Ho_Chi_Minh" in page


def test_access_log_pages_walk_every_event_once(app, client, world):
    with in_tenant(app, world.a):
        for i in range(60):
            audit.record("note.added", audit.SYSTEM, tenant_id=world.a.id, data={"name": f"n{i}"})
        db.session.commit()
        all_seqs = list(db.session.scalars(select(AuditEvent.seq).order_by(AuditEvent.seq.desc())))
    login(client, world["a_client_admin"])
    url, seen, pages = f"/t/{world.a.slug}/access-log", [], 0
    while url:
        page = client.get(url).get_data(as_text=True)
        rows = re.findall(r'<tr data-action="[^"]+" data-side="[^"]+">(.*?)</tr>', page, re.S)
        assert 0 < len(rows) <= 50
        seen += [m.group(0) for body in rows if (m := re.search(r"\bn\d+\b", body))]
        pages += 1
        nxt = re.search(r'href="([^"]+)" rel="next"', page)
        url = nxt.group(1).replace("&amp;", "&") if nxt else None
    assert pages == 2 and len(all_seqs) == 63  # 60 notes, tenant.created, 2 assignments
    assert sorted(seen) == sorted(f"n{i}" for i in range(60))  # each exactly once


def test_access_log_refuses_a_bad_page_link(client, world):
    login(client, world["a_client_admin"])
    for query in ("before=abc", "before=-1", "side=everyone"):
        r = client.get(f"/t/{world.a.slug}/access-log?{query}")
        assert r.status_code == 400, query
        assert b"start again from the first page" in r.data or b"Filter by provider" in r.data
