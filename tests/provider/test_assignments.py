"""Assignments: who works for which client, and the one audited cross-tenant read."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from portal.extensions import db
from tenants.audit import AuditEvent, PlatformAuditEvent
from tenants.context import Scope, bound
from tenants.lifecycle import TenantNotFound, assignments_overview
from tenants.models import Assignment, User
from tests.provider.conftest import fresh, post


def _last_cross_tenant_read(actor_id) -> PlatformAuditEvent | None:
    return db.session.scalars(select(PlatformAuditEvent).where(
        PlatformAuditEvent.action == "cross_tenant.read", PlatformAuditEvent.actor_id == actor_id)
        .order_by(PlatformAuditEvent.seq.desc())).first()


def _assignment_trail(tenant_id, user_id) -> tuple[bool, list[str]]:
    """Read from the database: is ``user_id`` assigned to the tenant, and the tenant's log about them."""
    fresh()
    with bound(Scope(tenant_ids=frozenset({tenant_id}))):
        assigned = db.session.scalars(select(Assignment).where(Assignment.user_id == user_id)).first() is not None
        actions = db.session.scalars(select(AuditEvent.action).where(
            AuditEvent.object_id == str(user_id), AuditEvent.action.like("assignment.%"))
            .order_by(AuditEvent.seq)).all()
    db.session.rollback()
    return assigned, actions


def test_assign_then_unassign_opens_and_closes_the_workspace(ctx, world, browser):
    admin, staff = browser(world["provider_admin"]), browser(world["unassigned_staff"])
    home = f"/t/{world.a.slug}/"
    who = {"user_id": str(world["unassigned_staff"].id)}
    assert staff.get(home).status_code == 404

    r = post(admin, f"/provider/assignments/{world.a.slug}/assign", who)
    assert r.status_code == 302 and r.headers["Location"] == "/provider/assignments"
    assert "now works for" in admin.get(r.headers["Location"]).get_data(as_text=True)
    opened = staff.get(home)
    assert opened.status_code == 200 and world.a.name in opened.get_data(as_text=True)
    assert staff.get(f"/t/{world.b.slug}/").status_code == 404

    r = post(admin, f"/provider/assignments/{world.a.slug}/unassign", who)
    assert "no longer works for" in admin.get(r.headers["Location"]).get_data(as_text=True)
    assert staff.get(home).status_code == 404

    fresh()
    with bound(Scope(tenant_ids=frozenset({world.a.id}))):
        events = db.session.scalars(select(AuditEvent).where(
            AuditEvent.object_id == str(world["unassigned_staff"].id)).order_by(AuditEvent.seq)).all()
    assert [e.action for e in events] == ["assignment.added", "assignment.removed"]
    assert all(e.actor_id == world["provider_admin"].id for e in events)


def test_assignments_table_marks_who_works_where(world, browser):
    admin = browser(world["provider_admin"])  # every client: found by a search past the first rows
    body = admin.get("/provider/assignments", query_string={"q": world.a.slug}).get_data(as_text=True)
    row = re.search(rf'<tr data-tenant="{world.a.slug}">(.*?)</tr>', body, re.S).group(1)
    assert row.count(">Unassign<") == 2  # the manager and the staff member of the world
    assert f'value="{world["unassigned_staff"].id}"' in row
    body = admin.get("/provider/assignments", query_string={"q": world.b.slug}).get_data(as_text=True)
    assert f'<tr data-tenant="{world.b.slug}">' in body


def test_manager_manages_assignments_of_their_own_tenants_only(ctx, world, browser):
    manager = browser(world["manager"])
    page = manager.get("/provider/assignments")
    body = page.get_data(as_text=True)
    assert page.status_code == 200
    assert f'data-tenant="{world.a.slug}"' in body and world.b.name not in body

    who = {"user_id": str(world["unassigned_staff"].id)}
    r = post(manager, f"/provider/assignments/{world.a.slug}/assign", who)
    assert r.status_code == 302
    assert browser(world["unassigned_staff"]).get(f"/t/{world.a.slug}/").status_code == 200
    assert post(manager, f"/provider/assignments/{world.b.slug}/assign", who).status_code == 404
    assert _assignment_trail(world.b.id, world["unassigned_staff"].id) == (False, [])
    assert browser(world["unassigned_staff"]).get(f"/t/{world.b.slug}/").status_code == 404

    # B's own staff member stays B's when this manager (not B's) tries to take them off.
    admin = browser(world["provider_admin"])
    assert post(admin, f"/provider/assignments/{world.b.slug}/assign", who).status_code == 302
    assert post(manager, f"/provider/assignments/{world.b.slug}/unassign", who).status_code == 404
    assert _assignment_trail(world.b.id, world["unassigned_staff"].id) == (True, ["assignment.added"])
    assert browser(world["unassigned_staff"]).get(f"/t/{world.b.slug}/").status_code == 200


def test_provider_admins_are_not_assigned(ctx, world, browser):
    admin = browser(world["provider_admin"])
    r = post(admin, f"/provider/assignments/{world.a.slug}/assign",
             {"user_id": str(world["provider_admin"].id)}, follow_redirects=True)
    assert "provider admins see every tenant" in r.get_data(as_text=True)
    assert _assignment_trail(world.a.id, world["provider_admin"].id) == (False, [])


def test_assigning_an_unknown_person_is_not_found(ctx, world, browser):
    admin = browser(world["provider_admin"])
    for user_id in (str(world["a_client_member"].id), "not-a-uuid"):
        r = post(admin, f"/provider/assignments/{world.a.slug}/assign", {"user_id": user_id})
        assert r.status_code == 404
    assert _assignment_trail(world.a.id, world["a_client_member"].id) == (False, [])
    # The client member still sees only what a client member sees: no provider console.
    assert browser(world["a_client_member"]).get("/provider/").status_code == 404


def test_the_overview_is_the_audited_cross_tenant_read(ctx, world):
    admin = db.session.get(User, world["provider_admin"].id)
    overviews = assignments_overview(admin, [world.a.id, world.b.id], why="test")
    a, b = overviews[world.a.id], overviews[world.b.id]
    assert a.client_users == 3 and b.client_users == 3
    assert a.staff_ids == {world["manager"].id, world["staff"].id} and b.staff == ()

    event = _last_cross_tenant_read(admin.id)
    assert event is not None and event.ip is None
    assert event.data == {"tenants": sorted([str(world.a.id), str(world.b.id)]), "reason": "test",
                          "covers_seconds": ctx.config["CROSS_TENANT_AUDIT_WINDOW_SECONDS"]}


def test_the_overview_refuses_tenants_a_manager_is_not_assigned_to(ctx, world):
    manager = db.session.get(User, world["manager"].id)
    before = _last_cross_tenant_read(manager.id)
    with pytest.raises(TenantNotFound):
        assignments_overview(manager, [world.a.id, world.b.id])
    db.session.rollback()
    assert _last_cross_tenant_read(manager.id) == before  # nothing read, nothing recorded
    assert assignments_overview(manager, [world.a.id])[world.a.id].client_users == 3


def test_the_assignments_page_records_its_cross_tenant_read(ctx, world, browser):
    browser(world["manager"]).get("/provider/assignments")
    fresh()
    event = _last_cross_tenant_read(world["manager"].id)
    assert event is not None
    assert event.data["tenants"] == [str(world.a.id)] and event.data["reason"] == "assignments page"
    assert event.ip == "127.0.0.1"
