"""The one cross-tenant path never reaches beyond a person's own tenants, and is audited."""

from __future__ import annotations

from sqlalchemy import select

from portal.extensions import db
from tenants.audit import PlatformAuditEvent
from tenants.models import Membership, User
from tenants.reach import across_tenants, visible_tenants


def test_manager_overview_is_limited_to_assigned_tenants(ctx, world):
    manager = db.session.get(User, world["manager"].id)
    with across_tenants(manager, "overview", only=[world.a.id, world.b.id]) as ids:
        assert ids == {world.a.id}
        tenants = {m.tenant_id for m in db.session.scalars(select(Membership))}
        assert tenants == {world.a.id}
        db.session.commit()
    event = db.session.scalars(select(PlatformAuditEvent).where(PlatformAuditEvent.actor_id == manager.id)
                               .order_by(PlatformAuditEvent.seq.desc()).limit(1)).one()
    assert event.action == "cross_tenant.read" and event.data["tenants"] == [str(world.a.id)]


def test_unassigned_staff_reach_nothing(ctx, world):
    staff = db.session.get(User, world["unassigned_staff"].id)
    assert visible_tenants(staff) == []
    with across_tenants(staff, "my work") as ids:
        assert ids == frozenset()
    db.session.rollback()


def test_provider_admin_reaches_every_tenant(ctx, world):
    admin = db.session.get(User, world["provider_admin"].id)
    ids = {t.id for t in visible_tenants(admin)}
    assert {world.a.id, world.b.id} <= ids
