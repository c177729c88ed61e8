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


def test_reads_across_tenants_at_the_same_moment_do_not_queue_behind_each_other(app, world):
    """The platform log's lock is taken when a read ends, not while it runs: a long read (a KPI page)
    does not hold up a colleague's My work, and both reads are recorded."""
    import threading
    import time

    inside, done = threading.Event(), threading.Event()
    took: dict[str, float] = {}

    def long_read() -> None:
        with app.app_context():
            manager = db.session.get(User, world["manager"].id)
            with across_tenants(manager, "a long report"):
                db.session.scalars(select(Membership)).all()
                inside.set()
                done.wait(10)  # still reading while the colleague's read runs
            db.session.commit()

    def quick_read() -> None:
        with app.app_context():
            staff = db.session.get(User, world["staff"].id)
            start = time.monotonic()
            with across_tenants(staff, "my work"):
                db.session.scalars(select(Membership)).all()
            db.session.commit()
            took["quick"] = time.monotonic() - start
            done.set()

    first = threading.Thread(target=long_read)
    first.start()
    assert inside.wait(10)
    second = threading.Thread(target=quick_read)
    second.start()
    second.join(20)
    first.join(20)
    assert took["quick"] < 5  # it did not wait for the long read to finish
    with app.app_context():
        reasons = [e.data["reason"] for e in db.session.scalars(
            select(PlatformAuditEvent).where(PlatformAuditEvent.action == "cross_tenant.read")
            .order_by(PlatformAuditEvent.seq.desc()).limit(2))]
    assert reasons == ["a long report", "my work"]  # both recorded, the chain in commit order


def test_the_same_read_is_logged_once_per_window_which_bounds_the_platform_log(ctx, world, db_urls):
    """A manager reloading My work all day writes one row per window, not one per page view."""
    from sqlalchemy import create_engine, func, text

    manager = db.session.get(User, world["manager"].id)

    def reads(reason: str) -> int:
        return db.session.scalar(select(func.count()).select_from(PlatformAuditEvent).where(
            PlatformAuditEvent.actor_id == manager.id, PlatformAuditEvent.data["reason"].astext == reason))

    for _ in range(5):
        with across_tenants(manager, "window test"):
            pass
        db.session.commit()
    assert reads("window test") == 1
    with across_tenants(manager, "another page"):  # another kind of read has its own row
        pass
    db.session.commit()
    assert reads("another page") == 1
    # The window passes (moved back by the database's owner, as time would): the next read is logged.
    engine = create_engine(db_urls.owner)
    with engine.begin() as conn:
        conn.execute(text("update audit_read_marks set recorded_at = recorded_at - interval '1 day' "
                          "where user_id = :u and reason = 'window test'"), {"u": manager.id})
    engine.dispose()
    with across_tenants(manager, "window test"):
        pass
    db.session.commit()
    assert reads("window test") == 2
