"""Resending an invitation: a fresh link, the old one refused with a reason, no double send, and refusals.

From the attacker's side: another tenant's membership id is not found (page and API), a role that
may not invite gets 403, and a refused resend neither mails nor changes the links in the wild.
"""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

from sqlalchemy import select, update

from portal.extensions import db
from tenants.audit import PlatformAuditEvent
from tenants.models import User, UserToken
from tests.api.util import bearer, issue_token, problem
from tests.clients.test_users import events, membership_id, row_of
from tests.factories import PASSWORD, csrf_token, login, unique

LINK = re.compile(r"http://localhost(/auth/invite/[A-Za-z0-9_-]+)")


def _signed_in(app, person):
    browser = app.test_client()
    login(browser, person)
    return browser


def _post(browser, url: str, data: dict | None = None):
    return browser.post(url, data={**(data or {}), "csrf_token": csrf_token(browser, "/account/")})


def _links(smtp, email: str) -> list[str]:
    return [LINK.search(m.get_content()).group(1) for m in smtp.to(email)]


def _user(email: str) -> User:
    db.session.expire_all()
    return db.session.scalars(select(User).where(User.email == email)).one()


def _a_minute_later(app, email: str) -> None:
    """Let the minute that refuses a second send pass: the invitations already sent are made older."""
    with app.app_context():
        user = _user(email)
        db.session.execute(update(UserToken).where(UserToken.user_id == user.id)
                           .values(created_at=UserToken.created_at - timedelta(minutes=2)))
        db.session.commit()


def _invite_client(app, world, key: str, tenant, smtp, run_jobs) -> tuple[str, str]:
    """``world[key]`` invites a new colleague to ``tenant`` through the users page; (e-mail, first link)."""
    email = f"{unique('pending')}@example.test"
    admin = _signed_in(app, world[key])
    r = _post(admin, f"/t/{tenant.slug}/users/invite", {"email": email, "name": "Lê Văn Tâm",
                                                        "role": "client_member"})
    assert r.status_code == 302, r.data[:300]
    run_jobs()
    [link] = _links(smtp, email)
    return email, link


def test_a_client_admin_resends_and_the_old_link_says_a_newer_email_replaced_it(app, world, smtp, run_jobs):
    email, old_link = _invite_client(app, world, "a_client_admin", world.a, smtp, run_jobs)
    admin = _signed_in(app, world["a_client_admin"])
    users = f"/t/{world.a.slug}/users"
    page = admin.get(users).get_data(as_text=True)
    assert 'data-testid="resend"' in row_of(page, email)
    assert 'data-testid="resend"' not in row_of(page, world["a_client_member"].email)  # signed up already
    mid = membership_id(app, world.a, _user_id(app, email))

    # A double click right after the invitation: nothing is sent again, the link still works.
    r = _post(admin, f"{users}/{mid}/resend")
    assert r.status_code == 302 and "less than a minute ago" in admin.get(users).get_data(as_text=True)
    run_jobs()
    assert _links(smtp, email) == [old_link]
    assert app.test_client().get(old_link).status_code == 200

    _a_minute_later(app, email)
    r = _post(admin, f"{users}/{mid}/resend")
    assert r.status_code == 302 and r.headers["Location"] == users
    assert f"We sent {email} a new invitation" in admin.get(users).get_data(as_text=True)
    run_jobs()
    mails = smtp.to(email)
    [_, new_link] = _links(smtp, email)
    assert new_link != old_link
    # The invitation's own e-mail, in the tenant's language (Vietnamese), with a full lifetime again.
    assert mails[1]["Subject"] == mails[0]["Subject"] == f"Bạn được mời tham gia {world.a.name}"
    assert "hết hạn sau 7 ngày" in mails[1].get_content()

    # The old link is refused, saying why; posting a password through it sets nothing.
    stale = app.test_client()
    r = stale.get(old_link)
    assert r.status_code == 410 and 'data-testid="link-replaced"' in r.get_data(as_text=True)
    r = stale.post(old_link, data={"csrf_token": csrf_token(stale, "/auth/login"), "name": "x",
                                   "password": PASSWORD, "confirm": PASSWORD})
    assert r.status_code == 410
    with app.app_context():
        assert _user(email).password_hash is None

    [event] = events(app, world.a, "user.invitation_resent")
    assert event.actor_id == world["a_client_admin"].id and event.details["email"] == email
    assert "sent an invitation again" in admin.get(f"/t/{world.a.slug}/access-log").get_data(as_text=True)

    # The new link works; once accepted there is nothing to resend (409) and nothing is mailed.
    fresh_browser = app.test_client()
    r = fresh_browser.post(new_link, data={"csrf_token": csrf_token(fresh_browser, new_link), "name": "Lê Văn Tâm",
                                           "password": PASSWORD, "confirm": PASSWORD})
    assert r.status_code == 302, r.data[:300]
    _a_minute_later(app, email)
    r = _post(admin, f"{users}/{mid}/resend")
    assert r.status_code == 409 and "accepted the invitation already" in r.get_data(as_text=True)
    assert 'data-testid="resend"' not in row_of(admin.get(users).get_data(as_text=True), email)
    run_jobs()
    assert len(smtp.to(email)) == 2


def _user_id(app, email: str) -> uuid.UUID:
    with app.app_context():
        return _user(email).id


def test_another_tenants_invitation_is_not_found_and_other_roles_are_refused(app, world, smtp, run_jobs):
    b_email, b_link = _invite_client(app, world, "b_client_admin", world.b, smtp, run_jobs)
    a_email, _ = _invite_client(app, world, "a_client_admin", world.a, smtp, run_jobs)
    b_mid = membership_id(app, world.b, _user_id(app, b_email))
    a_mid = membership_id(app, world.a, _user_id(app, a_email))
    _a_minute_later(app, b_email)
    _a_minute_later(app, a_email)

    a_admin = _signed_in(app, world["a_client_admin"])
    for url in (f"/t/{world.a.slug}/users/{b_mid}/resend", f"/t/{world.b.slug}/users/{b_mid}/resend",
                f"/t/{world.a.slug}/users/{uuid.uuid4()}/resend", f"/t/{world.a.slug}/users/not-an-id/resend"):
        r = _post(a_admin, url)
        assert r.status_code == 404 and b_email not in r.get_data(as_text=True), url
    for key in ("a_client_member", "a_client_approver", "manager", "staff"):
        r = _post(_signed_in(app, world[key]), f"/t/{world.a.slug}/users/{a_mid}/resend")
        assert r.status_code == 403, key
    assert _post(_signed_in(app, world["unassigned_staff"]), f"/t/{world.a.slug}/users/{a_mid}/resend"
                 ).status_code == 404

    # The API: a token of A cannot reach B's invitation; a read-only token cannot resend.
    write = issue_token(app, world["a_client_admin"], world.a, scope="write")
    api = app.test_client()
    problem(api.post(f"/api/v1/tenants/{world.a.slug}/users/{b_mid}/resend-invitation", headers=bearer(write)), 404)
    problem(api.post(f"/api/v1/tenants/{world.b.slug}/users/{b_mid}/resend-invitation", headers=bearer(write)), 404)
    read = issue_token(app, world["a_client_admin"], world.a)
    problem(api.post(f"/api/v1/tenants/{world.a.slug}/users/{a_mid}/resend-invitation", headers=bearer(read)), 403)

    # B's invitation is untouched: no e-mail, its link still works, nothing in either log.
    run_jobs()
    assert _links(smtp, b_email) == [b_link] and len(smtp.to(a_email)) == 1
    assert app.test_client().get(b_link).status_code == 200
    assert events(app, world.a, "user.invitation_resent") == [] == events(app, world.b, "user.invitation_resent")

    # The owner's token resends; a second call within the minute is 429 with when to retry.
    r = api.post(f"/api/v1/tenants/{world.a.slug}/users/{a_mid}/resend-invitation", headers=bearer(write))
    assert r.status_code == 200 and r.json["id"] == str(a_mid) and r.json["signed_up"] is False
    again = api.post(f"/api/v1/tenants/{world.a.slug}/users/{a_mid}/resend-invitation", headers=bearer(write))
    assert "less than a minute ago" in problem(again, 429)["detail"]
    assert 0 < int(again.headers["Retry-After"]) <= 60
    run_jobs()
    assert len(smtp.to(a_email)) == 2
    assert len(events(app, world.a, "user.invitation_resent")) == 1


def test_a_provider_admin_resends_a_staff_invitation(app, world, smtp, run_jobs):
    admin = _signed_in(app, world["provider_admin"])
    email = f"{unique('newstaff')}@example.test"
    assert _post(admin, "/provider/staff", {"email": email, "name": "Đỗ Minh Khoa", "role": "staff"}
                 ).status_code == 302
    run_jobs()
    [old_link] = _links(smtp, email)
    person = _user_id(app, email)
    row = re.search(rf'<tr data-person="{re.escape(email)}">(.*?)</tr>',
                    admin.get("/provider/staff").get_data(as_text=True), re.S).group(1)
    assert 'data-testid="resend"' in row
    assert 'data-testid="resend"' not in admin.get("/provider/staff").get_data(as_text=True).split(
        f'data-person="{world["manager"].email}"')[1].split("</tr>")[0]
    _a_minute_later(app, email)

    # Managers see the team but do not invite; a client user's id is no provider person.
    manager = _signed_in(app, world["manager"])
    assert 'data-testid="resend"' not in manager.get("/provider/staff").get_data(as_text=True)
    assert _post(manager, f"/provider/staff/{person}/resend").status_code == 403
    assert _post(admin, f"/provider/staff/{world['a_client_admin'].id}/resend").status_code == 404
    assert _post(admin, f"/provider/staff/{uuid.uuid4()}/resend").status_code == 404
    run_jobs()
    assert len(smtp.to(email)) == 1

    r = _post(admin, f"/provider/staff/{person}/resend")
    assert r.status_code == 302 and r.headers["Location"] == "/provider/staff"
    run_jobs()
    [first, second] = smtp.to(email)
    assert second["Subject"] == first["Subject"] == "You are invited to the provider's team"
    assert "replaces our earlier invitation" in second.get_content()
    assert "replaces" not in first.get_content()
    assert app.test_client().get(old_link).status_code == 410
    assert app.test_client().get(_links(smtp, email)[1]).status_code == 200
    with app.app_context():
        [event] = db.session.scalars(select(PlatformAuditEvent).where(
            PlatformAuditEvent.action == "user.invitation_resent", PlatformAuditEvent.object_id == str(person))).all()
        assert event.actor_id == world["provider_admin"].id
    assert "sent an invitation again" in admin.get("/provider/audit").get_data(as_text=True)

    # A double click: refused with a sentence, nothing sent.
    r = _post(admin, f"/provider/staff/{person}/resend")
    assert r.status_code == 302 and "less than a minute ago" in admin.get("/provider/staff").get_data(as_text=True)
    run_jobs()
    assert len(smtp.to(email)) == 2


def test_an_expired_or_used_link_still_says_it_no_longer_works(app, client):
    r = client.get("/auth/invite/" + "x" * 43)
    assert r.status_code == 410 and 'data-testid="link-replaced"' not in r.get_data(as_text=True)
