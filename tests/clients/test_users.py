"""The workspace's people: invite, roles, removal, second-factor rule, and refusals."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from portal.extensions import db
from tenants.audit import AuditEvent
from tenants.models import Membership, Tenant
from tests.api.util import in_tenant
from tests.factories import csrf_token, login, unique


def row_of(html: str, text: str) -> str:
    """The table row of the users page that mentions ``text``."""
    for row in re.findall(r"<tr data-membership=.*?</tr>", html, re.S):
        if text in row:
            return row
    raise AssertionError(f"no row for {text}")


def memberships(app, tenant) -> dict:
    """user_id -> role of every membership of ``tenant``, read fresh from the database."""
    with in_tenant(app, tenant):
        return {m.user_id: m.role for m in db.session.scalars(select(Membership))}


def membership_id(app, tenant, user_id):
    with in_tenant(app, tenant):
        return db.session.scalars(select(Membership.id).where(Membership.user_id == user_id)).one()


def events(app, tenant, action: str) -> list[AuditEvent]:
    with in_tenant(app, tenant):
        rows = list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)
                                     .order_by(AuditEvent.seq)))
        for row in rows:
            row.details  # noqa: B018 - opened (decrypted) while the app, and its keyring, is at hand
        db.session.expunge_all()
        return rows


def test_client_admin_invites_a_colleague(app, client, world, smtp, run_jobs):
    login(client, world["a_client_admin"])
    users_url = f"/t/{world.a.slug}/users"
    email = f"{unique('colleague')}@example.test"
    r = client.post(users_url + "/invite", data={
        "csrf_token": csrf_token(client, users_url), "email": email, "name": "Nguyen Van A",
        "role": "client_approver"})
    assert r.status_code == 302 and r.headers["Location"] == users_url

    page = client.get(users_url).get_data(as_text=True)
    assert "Invitation sent to " + email in page
    row = row_of(page, email)
    assert "Invitation pending" in row and "Approver" in row and "Nguyen Van A" in row

    run_jobs()
    [mail] = smtp.to(email)
    assert world.a.name in mail["Subject"]
    assert "http://localhost/auth/invite/" in mail.get_content()

    roles = memberships(app, world.a)
    assert sorted(roles.values()).count("client_approver") == 2
    [event] = events(app, world.a, "user.invited")
    assert event.actor_id == world["a_client_admin"].id and event.details["email"] == email
    assert event.actor_side == "client"


def test_invite_refuses_a_person_already_here_with_409(app, client, world):
    login(client, world["a_client_admin"])
    users_url = f"/t/{world.a.slug}/users"
    r = client.post(users_url + "/invite", data={
        "csrf_token": csrf_token(client, users_url), "email": world["a_client_member"].email,
        "name": "", "role": "client_member"})
    assert r.status_code == 409
    assert b"already a user of this workspace" in r.data


def test_invite_refuses_a_role_outside_the_client_roles(app, client, world):
    login(client, world["a_client_admin"])
    users_url = f"/t/{world.a.slug}/users"
    before = memberships(app, world.a)
    r = client.post(users_url + "/invite", data={
        "csrf_token": csrf_token(client, users_url), "email": f"{unique('x')}@example.test",
        "name": "", "role": "provider_admin"})
    assert r.status_code == 422 and b"Not a valid choice" in r.data
    assert memberships(app, world.a) == before


def test_the_last_client_admin_can_be_neither_removed_nor_demoted(app, client, world):
    admin, approver = world["a_client_admin"], world["a_client_approver"]
    login(client, admin)
    users_url = f"/t/{world.a.slug}/users"
    token = csrf_token(client, users_url)
    mid = membership_id(app, world.a, admin.id)

    r = client.post(f"{users_url}/{mid}/remove", data={"csrf_token": token})
    assert r.status_code == 409
    text = r.get_data(as_text=True)
    assert "is the last client admin" in text and "Make another person a client admin first" in text

    r = client.post(f"{users_url}/{mid}/role", data={"csrf_token": token, "role": "client_member"})
    assert r.status_code == 409 and "is the last client admin" in r.get_data(as_text=True)
    assert memberships(app, world.a)[admin.id] == "client_admin"
    assert events(app, world.a, "user.role_changed") == []

    # With a second admin the first one may step down: the rule is about the last one only.
    approver_mid = membership_id(app, world.a, approver.id)
    r = client.post(f"{users_url}/{approver_mid}/role", data={"csrf_token": token, "role": "client_admin"})
    assert r.status_code == 302
    r = client.post(f"{users_url}/{mid}/role", data={"csrf_token": token, "role": "client_member"})
    assert r.status_code == 302
    roles = memberships(app, world.a)
    assert roles[admin.id] == "client_member" and roles[approver.id] == "client_admin"
    changed = events(app, world.a, "user.role_changed")
    assert [(e.details["from"], e.details["to"]) for e in changed] == [
        ("client_approver", "client_admin"), ("client_admin", "client_member")]


def test_client_admin_removes_a_member(app, client, world):
    login(client, world["a_client_admin"])
    users_url = f"/t/{world.a.slug}/users"
    member = world["a_client_member"]
    mid = membership_id(app, world.a, member.id)
    r = client.post(f"{users_url}/{mid}/remove", data={"csrf_token": csrf_token(client, users_url)})
    assert r.status_code == 302
    assert member.id not in memberships(app, world.a)
    [event] = events(app, world.a, "user.removed")
    assert event.details["email"] == member.email
    assert member.email not in client.get(users_url).get_data(as_text=True)


@pytest.mark.parametrize("who", ["a_client_member", "a_client_approver"])
def test_people_who_may_not_manage_users_get_403(app, client, world, who):
    login(client, world[who])
    token = csrf_token(client, "/account/")
    base = f"/t/{world.a.slug}"
    admin_mid = membership_id(app, world.a, world["a_client_admin"].id)
    before = memberships(app, world.a)
    email = f"{unique('nope')}@example.test"
    posts = {
        f"{base}/users/invite": {"email": email, "name": "x", "role": "client_admin"},
        f"{base}/users/{admin_mid}/role": {"role": "client_member"},
        f"{base}/users/{admin_mid}/remove": {},
        f"{base}/settings/mfa": {"enforce": "y"},
    }
    for url, data in posts.items():
        r = client.post(url, data={"csrf_token": token, **data})
        assert r.status_code == 403, url
        assert b"Not allowed" in r.data
    assert memberships(app, world.a) == before
    with in_tenant(app, world.a):
        assert db.session.get(Tenant, world.a.id).enforce_mfa is False


def test_member_cannot_see_the_users_page(client, world):
    login(client, world["a_client_member"])
    assert client.get(f"/t/{world.a.slug}/users").status_code == 403


def test_membership_ids_of_another_tenant_answer_404_and_change_nothing(app, client, world):
    login(client, world["a_client_admin"])
    users_url = f"/t/{world.a.slug}/users"
    token = csrf_token(client, users_url)
    b_before = memberships(app, world.b)
    b_admin_mid = membership_id(app, world.b, world["b_client_admin"].id)
    b_member_mid = membership_id(app, world.b, world["b_client_member"].id)

    for mid in (b_admin_mid, b_member_mid):
        r = client.post(f"{users_url}/{mid}/role", data={"csrf_token": token, "role": "client_admin"})
        assert r.status_code == 404
        r = client.post(f"{users_url}/{mid}/remove", data={"csrf_token": token})
        assert r.status_code == 404
        assert world.b.name not in r.get_data(as_text=True)
    # A missing id and a malformed one answer exactly the same.
    for mid in ("00000000-0000-4000-8000-000000000000", "not-a-uuid"):
        assert client.post(f"{users_url}/{mid}/remove", data={"csrf_token": token}).status_code == 404
    assert memberships(app, world.b) == b_before
    assert events(app, world.b, "user.role_changed") == events(app, world.b, "user.removed") == []


def test_a_posted_tenant_id_is_ignored(app, client, world, run_jobs):
    login(client, world["a_client_admin"])
    users_url = f"/t/{world.a.slug}/users"
    b_before = memberships(app, world.b)
    email = f"{unique('mass')}@example.test"
    r = client.post(users_url + "/invite", data={
        "csrf_token": csrf_token(client, users_url), "email": email, "name": "Mass Assignment",
        "role": "client_admin", "tenant_id": str(world.b.id)})
    assert r.status_code == 302
    assert memberships(app, world.b) == b_before
    assert events(app, world.b, "user.invited") == []
    [event] = events(app, world.a, "user.invited")
    assert event.details["email"] == email
    run_jobs()


def test_client_admin_requires_a_second_factor_for_everyone(app, client, world):
    login(client, world["a_client_admin"])
    users_url = f"/t/{world.a.slug}/users"
    page = client.get(users_url).get_data(as_text=True)
    assert "Require a second factor for everyone" in page
    r = client.post(f"/t/{world.a.slug}/settings/mfa",
                    data={"csrf_token": csrf_token(client, users_url), "enforce": "y"})
    assert r.status_code == 302
    page = client.get(users_url).get_data(as_text=True)
    assert "Everyone in this workspace must sign in with a second factor." in page
    with in_tenant(app, world.a):
        assert db.session.get(Tenant, world.a.id).enforce_mfa is True
    [event] = events(app, world.a, "settings.mfa_required")
    assert event.actor_id == world["a_client_admin"].id

    r = client.post(f"/t/{world.a.slug}/settings/mfa", data={"csrf_token": csrf_token(client, users_url)})
    assert r.status_code == 302
    with in_tenant(app, world.a):
        assert db.session.get(Tenant, world.a.id).enforce_mfa is False
    assert len(events(app, world.a, "settings.mfa_optional")) == 1


def test_users_page_shows_sign_up_and_second_factor(client, world):
    login(client, world["staff"])  # provider staff assigned to A may view, not manage
    page = client.get(f"/t/{world.a.slug}/users").get_data(as_text=True)
    admin_row = row_of(page, world["a_client_admin"].email)
    member_row = row_of(page, world["a_client_member"].email)
    assert "Client admin" in admin_row and ">On<" in admin_row
    assert "Member" in member_row and ">Off<" in member_row and "Invitation pending" not in member_row
    assert "Invite a colleague" not in page and "Remove" not in page
