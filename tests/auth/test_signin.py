"""Sign-in from the attacker's side: throttling, second factor, replay, CSRF, headers."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from portal.extensions import db
from tenants.models import AuthSession, User, UserToken, utcnow
from tenants.policy import Role
from tests.factories import PASSWORD, csrf_token, login, make_person, make_tenant


def post_login(client, email: str, password: str):
    return client.post("/auth/login", data={"email": email, "password": password,
                                            "csrf_token": csrf_token(client)})


def test_wrong_password_and_unknown_account_look_the_same(client, ctx):
    tenant = make_tenant()
    person = make_person(Role.CLIENT_MEMBER, tenant)
    wrong = post_login(client, person.email, "not the password at all")
    unknown = post_login(client, "nobody-" + person.email, "not the password at all")
    assert wrong.status_code == unknown.status_code == 200
    message = b"do not match an active account"
    assert message in wrong.data and message in unknown.data


def test_sign_in_is_throttled_per_account(app, client, ctx):
    person = make_person(Role.CLIENT_MEMBER, make_tenant())
    app.config["LOGIN_LIMIT_ACCOUNT"] = "3 per minute"
    try:
        codes = [post_login(client, person.email, "wrong password 123").status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        blocked = post_login(client, person.email, PASSWORD)  # even the right password waits
        assert blocked.status_code == 429
        assert b"Too many attempts" in blocked.data
        # Another account from the same client is not blocked by this one's limit.
        other = make_person(Role.CLIENT_MEMBER, make_tenant())
        assert post_login(client, other.email, PASSWORD).status_code == 302
    finally:
        app.config["LOGIN_LIMIT_ACCOUNT"] = "1000 per minute"


def test_sign_in_is_throttled_per_ip(app, client, ctx):
    app.config["LOGIN_LIMIT_IP"] = "2 per minute"
    try:
        codes = [post_login(client, f"someone{i}@example.test", "whatever password").status_code
                 for i in range(3)]
        assert codes[-1] == 429
    finally:
        app.config["LOGIN_LIMIT_IP"] = "1000 per minute"


def test_staff_must_enrol_a_second_factor_before_anything(client, ctx):
    person = make_person(Role.STAFF, mfa=False)
    r = post_login(client, person.email, PASSWORD)
    assert r.headers["Location"] == "/auth/mfa/enrol"
    # The password alone opens nothing.
    assert client.get("/provider/").status_code == 302
    assert client.get("/provider/").headers["Location"].startswith("/auth/login")
    page = client.get("/auth/mfa/enrol")
    secret = re.search(rb'data-testid="totp-secret">([A-Z2-7]+)<', page.data).group(1).decode()
    import pyotp

    r = client.post("/auth/mfa/enrol", data={"code": pyotp.TOTP(secret).now(),
                                              "csrf_token": csrf_token(client, "/auth/mfa/enrol")})
    # The page just re-rendered a new pending secret on GET: the old code must not match it.
    assert r.status_code == 200 and b"did not match" in r.data
    page = client.get("/auth/mfa/enrol")
    secret = re.search(rb'data-testid="totp-secret">([A-Z2-7]+)<', page.data).group(1).decode()
    token = re.search(rb'name="csrf_token"[^>]*value="([^"]+)"', page.data).group(1).decode()
    r = client.post("/auth/mfa/enrol", data={"code": pyotp.TOTP(secret).now(), "csrf_token": token})
    assert r.status_code == 200 and b'data-testid="recovery-codes"' in r.data
    assert client.get("/provider/").status_code == 200


@pytest.mark.parametrize("role", [Role.CLIENT_ADMIN, Role.CLIENT_MEMBER])
def test_client_admins_and_enforcing_tenants_require_a_second_factor(client, ctx, role):
    tenant = make_tenant()
    if role == Role.CLIENT_MEMBER:
        from tenants.lifecycle import tenant_by_slug

        tenant_by_slug(tenant.slug).enforce_mfa = True
        db.session.commit()
    person = make_person(role, tenant, mfa=False)
    r = post_login(client, person.email, PASSWORD)
    assert r.headers["Location"] == "/auth/mfa/enrol"
    assert client.get(f"/t/{tenant.slug}/").status_code == 302


def test_client_member_without_enforcement_signs_in_with_password(client, ctx):
    person = make_person(Role.CLIENT_MEMBER, make_tenant())
    r = post_login(client, person.email, PASSWORD)
    assert r.status_code == 302 and not r.headers["Location"].startswith("/auth")


def _second_step(client, person):
    post_login(client, person.email, PASSWORD)
    return lambda code: client.post("/auth/mfa", data={"code": code, "csrf_token": csrf_token(client, "/auth/mfa")})


def test_totp_code_is_accepted_once(app, ctx):
    person = make_person(Role.CLIENT_ADMIN, make_tenant())
    code = person.next_code()
    first, second = app.test_client(), app.test_client()
    assert _second_step(first, person)(code).status_code == 302
    r = _second_step(second, person)(code)
    assert r.status_code == 200 and b"not valid, or was used already" in r.data


def test_recovery_code_is_single_use(app, client, ctx):
    person = make_person(Role.MANAGER)
    login(client, person)
    page = client.post("/account/recovery-codes", data={"csrf_token": csrf_token(client, "/account/")})
    codes = re.findall(rb"<code>([0-9a-f]{5}-[0-9a-f]{5})</code>", page.data)
    assert len(codes) == 10
    code = codes[0].decode()
    assert _second_step(app.test_client(), person)(code).status_code == 302
    r = _second_step(app.test_client(), person)(code)
    assert r.status_code == 200 and b"not valid" in r.data


def _invite_token(ctx, person_email: str) -> str:
    from portal.auth.services import issue_link, user_by_email

    user = user_by_email(person_email)
    raw = issue_link(user, "invite", timedelta(days=1))
    db.session.commit()
    return raw


def test_invite_link_works_once(client, ctx):
    from portal.auth.services import normalise_email

    email = normalise_email(f"new-{make_tenant().slug}@example.test")
    user = User(email=email, name="New person")
    db.session.add(user)
    db.session.commit()
    raw = _invite_token(ctx, email)
    url = f"/auth/invite/{raw}"
    assert client.get(url).status_code == 200
    new_password = "a brand new long password"
    r = client.post(url, data={"name": "New Person", "password": new_password, "confirm": new_password,
                               "csrf_token": csrf_token(client, url)})
    assert r.status_code == 302
    other = client.application.test_client()
    assert other.get(url).status_code == 410
    # Someone holding the used link posts it again, the way a browser would (with a valid CSRF token).
    r = other.post(url, data={"name": "Mallory", "password": "another password 12345",
                              "confirm": "another password 12345", "csrf_token": csrf_token(other)})
    assert r.status_code == 410 and b"no longer works" in r.data
    db.session.expire_all()
    user = db.session.scalars(select(User).where(User.email == email)).one()
    assert user.name == "New Person"
    refused = post_login(other.application.test_client(), email, "another password 12345")
    assert refused.status_code == 200 and b"do not match an active account" in refused.data
    assert post_login(other.application.test_client(), email, new_password).status_code == 302


def test_expired_invite_is_refused(client, ctx):
    email = f"late-{make_tenant().slug}@example.test"
    db.session.add(User(email=email, name="Late"))
    db.session.commit()
    raw = _invite_token(ctx, email)
    db.session.execute(update(UserToken).values(expires_at=utcnow() - timedelta(minutes=1))
                       .where(UserToken.user_id == select(User.id).where(User.email == email).scalar_subquery()))
    db.session.commit()
    r = client.get(f"/auth/invite/{raw}")
    assert r.status_code == 410 and b"no longer works" in r.data


def test_session_is_rotated_at_sign_in(client, ctx):
    person = make_person(Role.CLIENT_MEMBER, make_tenant())
    client.get("/auth/login")
    before = client.get_cookie("portal_session").value
    post_login(client, person.email, PASSWORD)
    after = client.get_cookie("portal_session").value
    assert before != after
    with client.session_transaction() as s:
        assert "sid" in s and "csrf_token" not in s  # nothing of the anonymous session survives


@pytest.mark.parametrize("ending", ["sign_out", "password_change", "disable", "everywhere", "idle", "absolute"])
def test_captured_cookie_is_refused_after_the_session_ends(app, client, ctx, ending):
    tenant = make_tenant()
    person = make_person(Role.CLIENT_MEMBER, tenant)
    login(client, person)
    home = f"/t/{tenant.slug}/"
    assert client.get(home).status_code == 200
    captured = client.get_cookie("portal_session").value

    if ending == "sign_out":
        client.post("/auth/logout", data={"csrf_token": csrf_token(client, "/account/")})
    elif ending == "password_change":
        # Changed from another browser: every other session ends.
        other = app.test_client()
        login(other, person)
        other.post("/account/password", data={"current": PASSWORD, "password": "new long password 2026",
                                              "confirm": "new long password 2026",
                                              "csrf_token": csrf_token(other, "/account/")})
        assert other.get(home).status_code == 200  # the browser that changed it stays signed in
    elif ending == "disable":
        from portal.auth.services import set_active

        set_active(db.session.get(User, person.id), db.session.get(User, person.id), False, None)
    elif ending == "everywhere":
        client.post("/account/sign-out-everywhere", data={"csrf_token": csrf_token(client, "/account/")})
    elif ending == "absolute":  # active all along, but signed in too long ago
        db.session.execute(update(AuthSession).where(AuthSession.user_id == person.id).values(
            created_at=utcnow() - app.config["SESSION_ABSOLUTE_TIMEOUT"] - timedelta(seconds=1)))
        db.session.commit()
    elif ending == "idle":
        db.session.execute(update(AuthSession).where(AuthSession.user_id == person.id)
                           .values(last_seen_at=utcnow() - app.config["SESSION_IDLE_TIMEOUT"] - timedelta(seconds=1)))
        db.session.commit()

    replay = app.test_client()
    replay.set_cookie("portal_session", captured)
    r = replay.get(home)
    assert r.status_code == 302 and r.headers["Location"].startswith("/auth/login")


def test_state_change_without_csrf_token_is_refused(client, ctx):
    tenant = make_tenant()
    person = make_person(Role.CLIENT_MEMBER, tenant)
    login(client, person)
    r = client.post("/auth/logout")
    assert r.status_code == 400
    assert client.get(f"/t/{tenant.slug}/").status_code == 200  # still signed in
    r = client.post("/auth/login", data={"email": person.email, "password": PASSWORD})
    assert r.status_code == 400


def test_open_redirect_after_sign_in_is_refused(client, ctx):
    person = make_person(Role.CLIENT_MEMBER, make_tenant())
    r = client.post("/auth/login?next=//evil.example/x", data={
        "email": person.email, "password": PASSWORD, "csrf_token": csrf_token(client)})
    assert r.status_code == 302 and r.headers["Location"] == "/"


@pytest.mark.parametrize("path", ["/auth/login", "/healthz", "/does-not-exist", "/auth/reset",
                                  "/static/portal.css", "/api/v1/me"])
def test_security_headers_on_every_response(client, path):
    r = client.get(path)
    csp = r.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Referrer-Policy"] == "no-referrer"
    assert r.headers["X-Frame-Options"] == "DENY"


def test_hsts_behind_tls(client):
    r = client.get("/auth/login", base_url="https://portal.example")
    assert r.headers["Strict-Transport-Security"].startswith("max-age=")


def test_session_cookie_flags(client, ctx):
    person = make_person(Role.CLIENT_MEMBER, make_tenant())
    post_login(client, person.email, PASSWORD)
    cookie = client.get_cookie("portal_session")
    assert cookie.http_only and cookie.same_site == "Lax"


def test_reset_link_changes_password_and_ends_sessions(app, client, ctx, smtp, run_jobs):
    tenant = make_tenant()
    person = make_person(Role.CLIENT_MEMBER, tenant)
    victim_browser = app.test_client()
    login(victim_browser, person)
    r = client.post("/auth/reset", data={"email": person.email, "csrf_token": csrf_token(client, "/auth/reset")})
    assert r.status_code == 302
    # Unknown addresses get the same answer and no e-mail.
    client.post("/auth/reset", data={"email": "ghost@example.test", "csrf_token": csrf_token(client, "/auth/reset")})
    run_jobs()
    mails = smtp.to(person.email)
    assert len(mails) == 1 and smtp.to("ghost@example.test") == []
    link = re.search(r"http://localhost(/auth/reset/\S+)", mails[0].get_content()).group(1)
    new = "a completely new password"
    r = client.post(link, data={"password": new, "confirm": new, "csrf_token": csrf_token(client, link)})
    assert r.status_code == 302
    assert victim_browser.get(f"/t/{tenant.slug}/").status_code == 302  # old session ended
    assert client.get(link).status_code == 410  # the link worked once
    person.password = new
    login(app.test_client(), person)


def test_weak_password_is_refused_with_a_reason(client, ctx):
    email = f"weak-{make_tenant().slug}@example.test"
    db.session.add(User(email=email, name="Weak"))
    db.session.commit()
    raw = _invite_token(ctx, email)
    url = f"/auth/invite/{raw}"
    r = client.post(url, data={"password": "aaaaaaaaaaaaaa", "confirm": "aaaaaaaaaaaaaa",
                               "csrf_token": csrf_token(client, url)})
    assert r.status_code == 200 and b"less repetitive" in r.data
    assert client.get(url).status_code == 200  # the link was not used up by the refusal
