"""The provider's people: listing, inviting, disabling (which ends live sessions)."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from portal.extensions import db
from tenants.audit import PlatformAuditEvent
from tenants.models import User
from tests.factories import unique
from tests.provider.conftest import fresh, post
from workers.models import OutboxJob


def _row(body: str, email: str) -> str:
    return re.search(rf'<tr data-person="{re.escape(email)}">(.*?)</tr>', body, re.S).group(1)


def test_staff_list_shows_role_second_factor_last_sign_in_and_state(world, browser):
    admin = browser(world["provider_admin"])
    body = admin.get("/provider/staff").get_data(as_text=True)
    manager_row = _row(body, world["manager"].email)
    assert "Manager" in manager_row and "Enrolled" in manager_row and "Active" in manager_row
    assert "Never" in manager_row  # the manager has not signed in yet
    own_row = _row(body, world["provider_admin"].email)
    assert "you" in own_row and "/active" not in own_row  # no button to disable oneself
    assert "Never" not in own_row  # the admin just signed in
    assert 'action="/provider/staff"' in body  # the invite form

    manager = browser(world["manager"]).get("/provider/staff")
    listing = manager.get_data(as_text=True)
    assert manager.status_code == 200 and world["staff"].email in listing
    assert 'action="/provider/staff"' not in listing and "/active" not in listing  # nor to disable anyone


def test_admin_invites_a_manager_who_gets_the_link(app, ctx, world, browser, smtp, run_jobs):
    admin = browser(world["provider_admin"])
    email = f"{unique('newmanager')}@example.test"
    r = post(admin, "/provider/staff", {"email": email, "name": "Phạm Quốc Bảo", "role": "manager"})
    assert r.status_code == 302
    body = admin.get(r.headers["Location"]).get_data(as_text=True)
    assert f"We e-mailed {email} an invitation to join the team." in body
    row = _row(body, email)
    assert "Phạm Quốc Bảo" in row and "Manager" in row and "Not enrolled" in row
    assert "Invited, not signed in yet" in row
    run_jobs()
    [mail] = smtp.to(email)
    assert mail["Subject"] == "You are invited to the provider's team"
    link = re.search(r"http://localhost(/auth/invite/[A-Za-z0-9_-]+)", mail.get_content()).group(1)
    assert app.test_client().get(link).status_code == 200

    again = post(admin, "/provider/staff", {"email": email, "name": "", "role": "staff"})
    assert again.status_code == 422
    assert "This person is already on the provider&#39;s staff." in again.get_data(as_text=True)
    fresh()
    assert db.session.scalars(select(User).where(User.email == email)).one().provider_role == "manager"


def test_invite_role_must_be_a_provider_role(ctx, world, browser):
    admin = browser(world["provider_admin"])
    email = f"{unique('sneaky')}@example.test"
    r = post(admin, "/provider/staff", {"email": email, "name": "", "role": "client_admin"})
    assert r.status_code == 422 and "Not a valid choice" in r.get_data(as_text=True)
    fresh()
    assert db.session.scalars(select(User).where(User.email == email)).first() is None


def test_only_provider_admins_invite_or_disable(ctx, world, browser):
    manager, staff = browser(world["manager"]), browser(world["staff"])
    jobs_before = db.session.scalar(select(func.count()).select_from(OutboxJob))
    email = f"{unique('bymanager')}@example.test"
    assert post(manager, "/provider/staff", {"email": email, "role": "staff"}).status_code == 403
    r = post(manager, f"/provider/staff/{world['staff'].id}/active", {"active": "0"})
    assert r.status_code == 403
    fresh()
    # Nobody was invited (no account, no invitation e-mail queued) and nobody was disabled.
    assert db.session.scalars(select(User).where(User.email == email)).first() is None
    assert db.session.scalar(select(func.count()).select_from(OutboxJob)) == jobs_before
    assert db.session.get(User, world["staff"].id).is_active is True
    assert db.session.scalars(select(PlatformAuditEvent.action).where(
        PlatformAuditEvent.object_id == str(world["staff"].id),
        PlatformAuditEvent.action.in_(["user.disabled", "user.invited"]))).all() == []
    assert staff.get("/provider/").status_code == 200  # their session still works


def test_disabling_a_staff_member_ends_their_live_session(ctx, world, browser):
    admin, staff = browser(world["provider_admin"]), browser(world["staff"])
    assert staff.get("/provider/").status_code == 200

    r = post(admin, f"/provider/staff/{world['staff'].id}/active", {"active": "0"})
    assert r.status_code == 302
    body = admin.get(r.headers["Location"]).get_data(as_text=True)
    assert "is disabled and signed out everywhere" in body
    assert "Disabled" in _row(body, world["staff"].email)

    after = staff.get("/provider/")
    assert after.status_code == 302 and after.headers["Location"].startswith("/auth/login")
    assert staff.get(f"/t/{world.a.slug}/").headers["Location"].startswith("/auth/login")

    r = post(admin, f"/provider/staff/{world['staff'].id}/active", {"active": "1"})
    assert "can sign in again" in admin.get(r.headers["Location"]).get_data(as_text=True)
    fresh()
    assert db.session.get(User, world["staff"].id).is_active is True
    actions = db.session.scalars(select(PlatformAuditEvent.action).where(
        PlatformAuditEvent.object_id == str(world["staff"].id)).order_by(PlatformAuditEvent.seq)).all()
    assert actions[-2:] == ["user.disabled", "user.enabled"]


def test_an_admin_cannot_disable_themselves(ctx, world, browser):
    admin = browser(world["provider_admin"])
    r = post(admin, f"/provider/staff/{world['provider_admin'].id}/active", {"active": "0"},
             follow_redirects=True)
    assert r.status_code == 200
    assert "You cannot disable your own account; ask another provider admin." in r.get_data(as_text=True)
    assert admin.get("/provider/staff").status_code == 200  # still signed in
    fresh()
    assert db.session.get(User, world["provider_admin"].id).is_active is True


def test_client_users_are_not_managed_from_the_staff_page(ctx, world, browser):
    admin = browser(world["provider_admin"])
    r = post(admin, f"/provider/staff/{world['a_client_member'].id}/active", {"active": "0"})
    assert r.status_code == 404
    assert post(admin, "/provider/staff/not-a-uuid/active", {"active": "0"}).status_code == 404
    fresh()
    assert db.session.get(User, world["a_client_member"].id).is_active is True
