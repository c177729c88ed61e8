"""Tenants in the provider console: onboarding with the client admin's invite, validation,
suspension, and what a manager may see."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from portal.auth.services import user_by_email
from portal.extensions import db
from tenants.audit import AuditEvent, PlatformAuditEvent
from tenants.context import Scope, bound
from tenants.lifecycle import tenant_by_slug
from tenants.models import Assignment, Membership, Tenant
from tests.factories import unique
from tests.provider.conftest import fresh, post


def _form(slug: str, email: str, **overrides: str) -> dict[str, str]:
    data = {"name": f"Hoa Sen Trading {slug}", "slug": slug, "currency": "USD",
            "timezone": "Asia/Bangkok", "locale": "en", "admin_email": email, "admin_name": "Mai Anh"}
    data.update(overrides)
    return data


def test_admin_creates_a_tenant_and_its_client_admin_gets_a_working_invite(
        app, ctx, world, browser, smtp, run_jobs):
    admin = browser(world["provider_admin"])
    slug = unique("hoasen")
    email = f"{slug}-admin@example.test"
    r = post(admin, "/provider/tenants", _form(slug, email))
    assert r.status_code == 302, r.get_data(as_text=True)[:2000]
    assert r.headers["Location"] == f"/provider/tenants/{slug}"

    page = admin.get(r.headers["Location"])
    body = page.get_data(as_text=True)
    assert page.status_code == 200
    assert f"Hoa Sen Trading {slug} is created" in body and email in body
    assert re.search(r'data-testid="client-users">1<', body)  # the invited client admin
    assert "USD" in body and "Asia/Bangkok" in body

    fresh()
    tenant = tenant_by_slug(slug)
    assert tenant is not None and tenant.currency == "USD" and tenant.locale == "en"
    with bound(Scope(tenant_ids=frozenset({tenant.id}))):
        [membership] = db.session.scalars(select(Membership)).all()
        assert membership.role == "client_admin" and membership.user.email == email
        actions = db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.seq)).all()
    assert actions == ["tenant.created", "user.invited"]

    run_jobs()
    [mail] = smtp.to(email)
    assert mail["Subject"] == f"You are invited to Hoa Sen Trading {slug}"
    link = re.search(r"http://localhost(/auth/invite/[A-Za-z0-9_-]+)", mail.get_content()).group(1)
    invitee = app.test_client()
    accept = invitee.get(link)
    assert accept.status_code == 200 and email in accept.get_data(as_text=True)


@pytest.mark.parametrize("bad_slug", ["Has Spaces", "ab", "-dash-first", "UPPER_case!"])
def test_bad_slug_is_refused_on_the_form_and_nothing_is_created(ctx, world, browser, run_jobs, smtp,
                                                                  bad_slug):
    admin = browser(world["provider_admin"])
    email = f"{unique('badslug')}@example.test"
    r = post(admin, "/provider/tenants", _form(bad_slug, email))
    body = r.get_data(as_text=True)
    assert r.status_code == 422
    assert "The short name must be 3-63 lowercase letters, digits or dashes" in body
    assert 'class="error"' in body and email in body  # shown on the form, input kept
    fresh()
    assert tenant_by_slug(bad_slug.strip().lower()) is None
    assert user_by_email(email) is None
    run_jobs()
    assert smtp.to(email) == []


def test_duplicate_slug_is_refused_and_nothing_is_created(ctx, world, browser, run_jobs, smtp):
    admin = browser(world["provider_admin"])
    email = f"{unique('dupe')}@example.test"
    r = post(admin, "/provider/tenants", _form(world.a.slug, email, name="Someone Else Ltd"))
    body = r.get_data(as_text=True)
    assert r.status_code == 422
    assert "is taken; choose another." in body and world.a.slug in body
    fresh()
    assert db.session.scalars(select(Tenant).where(Tenant.name == "Someone Else Ltd")).first() is None
    assert user_by_email(email) is None
    run_jobs()
    assert smtp.to(email) == []


def test_a_refused_invite_leaves_no_tenant_behind(ctx, world, browser):
    """The client admin's address belongs to provider staff: the invite fails, the tenant goes too."""
    admin = browser(world["provider_admin"])
    slug = unique("halfmade")
    r = post(admin, "/provider/tenants", _form(slug, world["staff"].email))
    assert r.status_code == 422
    assert "This address belongs to provider staff" in r.get_data(as_text=True)
    fresh()
    assert tenant_by_slug(slug) is None
    created = db.session.scalars(select(PlatformAuditEvent).where(
        PlatformAuditEvent.action == "tenant.created", PlatformAuditEvent.data["slug"].astext == slug)).all()
    assert created == []


def test_missing_fields_are_shown_on_the_form(world, browser):
    admin = browser(world["provider_admin"])
    r = post(admin, "/provider/tenants", _form(unique("empty"), "", name=""))
    assert r.status_code == 422
    assert r.get_data(as_text=True).count('class="error"') >= 2


def test_creating_a_tenant_needs_a_csrf_token(ctx, world, browser):
    admin = browser(world["provider_admin"])
    slug = unique("nocsrf")
    r = admin.post("/provider/tenants", data=_form(slug, f"{slug}@example.test"))
    assert r.status_code == 400
    fresh()
    assert tenant_by_slug(slug) is None


def test_suspension_locks_client_users_out_but_not_the_provider_admin(ctx, world, browser):
    admin, member = browser(world["provider_admin"]), browser(world["a_client_member"])
    home = f"/t/{world.a.slug}/"
    assert member.get(home).status_code == 200

    r = post(admin, f"/provider/tenants/{world.a.slug}/status", {"status": "suspended"})
    assert r.status_code == 302
    page = admin.get(r.headers["Location"]).get_data(as_text=True)
    assert f"{world.a.name} is suspended" in page and "Re-activate" in page

    refused = member.get(home)
    assert refused.status_code == 403
    assert "This workspace is suspended" in refused.get_data(as_text=True)
    opened = admin.get(home)
    assert opened.status_code == 200 and world.a.name in opened.get_data(as_text=True)
    # Tenant B is untouched.
    assert browser(world["b_client_member"]).get(f"/t/{world.b.slug}/").status_code == 200

    r = post(admin, f"/provider/tenants/{world.a.slug}/status", {"status": "active"})
    assert f"{world.a.name} is active again" in admin.get(r.headers["Location"]).get_data(as_text=True)
    assert member.get(home).status_code == 200
    fresh()
    with bound(Scope(tenant_ids=frozenset({world.a.id}))):
        actions = db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.seq)).all()
    assert actions[-2:] == ["tenant.suspended", "tenant.activated"]


def test_status_must_be_one_of_the_offered_values(ctx, world, browser):
    admin = browser(world["provider_admin"])
    r = post(admin, f"/provider/tenants/{world.a.slug}/status", {"status": "deleted"})
    assert r.status_code == 400
    fresh()
    assert tenant_by_slug(world.a.slug).status == "active"


def test_manager_sees_and_manages_only_assigned_tenants(ctx, world, browser):
    manager = browser(world["manager"])
    own = manager.get(f"/provider/tenants/{world.a.slug}")
    assert own.status_code == 200 and world.a.name in own.get_data(as_text=True)
    assert "Suspend" not in own.get_data(as_text=True)  # tenants.manage is for provider admins

    other = manager.get(f"/provider/tenants/{world.b.slug}")
    assert other.status_code == 404 and world.b.name not in other.get_data(as_text=True)
    missing = manager.get(f"/provider/tenants/{unique('nosuch')}")
    assert missing.status_code == 404  # the same answer as for a tenant that does not exist

    listing = manager.get("/provider/tenants").get_data(as_text=True)
    assert world.a.name in listing and world.b.name not in listing
    assert 'action="/provider/tenants"' not in listing  # no create form for managers

    r = post(manager, f"/provider/assignments/{world.b.slug}/assign", {"user_id": str(world["staff"].id)})
    assert r.status_code == 404
    assert post(manager, f"/provider/tenants/{world.a.slug}/status", {"status": "suspended"}).status_code == 403
    assert post(manager, "/provider/tenants", _form(unique("mgr"), "x@example.test")).status_code == 403
    fresh()
    with bound(Scope(tenant_ids=frozenset({world.b.id}))):
        assert db.session.scalars(select(Assignment)).all() == []
    assert tenant_by_slug(world.a.slug).status == "active"
    refusal = db.session.scalars(select(PlatformAuditEvent).where(
        PlatformAuditEvent.action == "access.refused", PlatformAuditEvent.actor_id == world["manager"].id)
        .order_by(PlatformAuditEvent.seq.desc())).first()
    assert refusal is not None and world.b.slug in refusal.data["what"]


@pytest.mark.parametrize("url", ["/provider/tenants", "/provider/staff", "/provider/assignments",
                                 "/provider/audit", "/provider/outbox"])
def test_staff_are_refused_the_management_pages(world, browser, url):
    staff = browser(world["staff"])
    r = staff.get(url)
    assert r.status_code == 403
    assert "Not allowed" in r.get_data(as_text=True)


def test_client_users_do_not_find_the_provider_console(world, browser):
    client_admin = browser(world["a_client_admin"])
    assert client_admin.get("/provider/").status_code == 404
    assert client_admin.get("/provider/tenants").status_code == 404


def test_dashboard_shows_each_person_their_tenants(world, browser):
    # A provider admin works for every client: the dashboard shows the first few by name, and finds the others.
    admin = browser(world["provider_admin"])
    page = admin.get("/provider/", query_string={"q": world.a.name}).get_data(as_text=True)
    card = re.search(rf'data-tenant="{world.a.slug}">(.*?)</li>', page, re.S).group(1)
    assert world.a.name in card and "3 client users" in card and "2 staff assigned" in card
    assert "VND" in card and "Active" in card
    assert world.b.name in admin.get("/provider/", query_string={"q": world.b.slug}).get_data(as_text=True)

    staff = browser(world["staff"]).get("/provider/")
    body = staff.get_data(as_text=True)
    assert staff.status_code == 200
    assert world.a.name in body and world.b.name not in body
    assert f'href="/provider/tenants/{world.a.slug}"' not in body  # staff do not open tenant details
    assert f'href="/t/{world.a.slug}/"' in body
    # Provider sub-navigation shows only what staff may open.
    assert 'href="/provider/tenants"' not in body and 'href="/provider/audit"' not in body

    nobody = browser(world["unassigned_staff"]).get("/provider/")
    assert nobody.status_code == 200
    assert "You are not assigned to any client yet; ask your manager." in nobody.get_data(as_text=True)
