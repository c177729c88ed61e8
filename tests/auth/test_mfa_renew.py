"""Replacing the second factor, from the attacker's side: a stolen session alone cannot do it.

The enrol page of someone who has a factor shows that it is set up and never makes or shows a
secret; a new authenticator needs the password and a current code; the old one works until a
code of the new one confirms it; the switch is in the platform log and e-mailed to the person.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pyotp
from sqlalchemy import select

from portal.extensions import db
from tenants.audit import PlatformAuditEvent
from tenants.fields import unseal
from tenants.models import User
from tenants.policy import Role
from tests.factories import PASSWORD, csrf_token, login, make_person, make_tenant

SECRET = re.compile(r'data-testid="totp-secret">([A-Z2-7]+)<')


def _factor(person) -> tuple[str, str | None]:
    """The person's (active secret, pending secret) as stored."""
    db.session.expire_all()
    user = db.session.get(User, person.id)
    return unseal(user.totp_secret_enc), unseal(user.totp_pending_enc) if user.totp_pending_enc else None


def _events(person, action: str) -> list[PlatformAuditEvent]:
    db.session.expire_all()
    return list(db.session.scalars(select(PlatformAuditEvent).where(
        PlatformAuditEvent.actor_id == person.id, PlatformAuditEvent.action == action)))


def _renew(client, password: str, code: str):
    return client.post("/auth/mfa/renew", data={"password": password, "code": code,
                                                "csrf_token": csrf_token(client, "/auth/mfa/renew")})


def _confirm(client, code: str):
    return client.post("/auth/mfa/renew/confirm", data={"code": code, "csrf_token": csrf_token(client, "/account/")})


def _second_step(app, person, code: str):
    """A fresh browser signing in as ``person`` with ``code`` as the second factor."""
    browser = app.test_client()
    browser.post("/auth/login", data={"email": person.email, "password": PASSWORD, "csrf_token": csrf_token(browser)})
    return browser.post("/auth/mfa", data={"code": code, "csrf_token": csrf_token(browser, "/auth/mfa")})


def test_revisiting_the_page_shows_the_factor_is_set_up_and_never_rotates_it(app, client, ctx):
    person = make_person(Role.STAFF)
    # Late in the evening in UTC is already the next morning in Ho Chi Minh City, where the reader is.
    db.session.get(User, person.id).mfa_enrolled_at = datetime(2031, 1, 31, 20, 0, tzinfo=UTC)
    db.session.commit()
    login(client, person)
    before = _factor(person)
    for _visit in range(2):
        page = client.get("/auth/mfa/enrol").get_data(as_text=True)
        assert "Your second factor is set up (since Feb 1, 2031" in page
        assert 'data-testid="mfa-renew"' in page and "Set up a new authenticator" in page
        assert 'data-testid="totp-secret"' not in page and "data:image/svg" not in page
    assert _factor(person) == before and before[1] is None

    # Posting a code to the first-enrolment form changes nothing for someone who has a factor.
    r = client.post("/auth/mfa/enrol", data={"code": pyotp.TOTP(before[0]).now(),
                                              "csrf_token": csrf_token(client, "/account/")})
    assert r.status_code == 302 and r.headers["Location"] == "/auth/mfa/enrol"
    assert _factor(person) == before
    assert "Set up a new authenticator" in client.get("/account/").get_data(as_text=True)


def test_a_stolen_session_without_the_current_code_cannot_replace_the_factor(client, ctx):
    person = make_person(Role.MANAGER)
    login(client, person)  # the attacker holds this session (and even the password), not the phone
    before = _factor(person)
    page = client.get("/auth/mfa/renew").get_data(as_text=True)
    assert 'data-testid="totp-secret"' not in page

    for password, code in ((PASSWORD, "000000"), (PASSWORD, ""), ("not the password", person.next_code()),
                           ("", "123456"), (PASSWORD, "abcde-12345")):
        r = _renew(client, password, code)
        assert r.status_code == 422, (password, code)
        body = r.get_data(as_text=True)
        assert 'data-testid="totp-secret"' not in body and "data:image/svg" not in body
        assert _factor(person) == before
    assert "do not match" in _renew(client, PASSWORD, "111111").get_data(as_text=True)
    assert len(_events(person, "auth.mfa_failed")) >= 4

    # Confirming without having proven anything: sent back to start, nothing changes.
    r = _confirm(client, pyotp.TOTP(before[0]).now())
    assert r.status_code == 302 and r.headers["Location"] == "/auth/mfa/renew"
    assert _factor(person) == before
    assert _events(person, "auth.mfa_reenrolled") == []


def test_the_old_factor_works_until_the_new_one_is_confirmed(app, client, ctx, smtp, run_jobs):
    person = make_person(Role.CLIENT_ADMIN, make_tenant())
    login(client, person)
    old, _ = _factor(person)

    r = _renew(client, PASSWORD, person.next_code())
    assert r.status_code == 200
    new = SECRET.search(r.get_data(as_text=True)).group(1)
    assert new != old and _factor(person) == (old, new)
    # Revisiting the pages neither shows the new key again nor makes another.
    for url in ("/auth/mfa/enrol", "/auth/mfa/renew"):
        assert new not in client.get(url).get_data(as_text=True)
    assert _factor(person) == (old, new)

    # Meanwhile the old authenticator still signs in, and the new one does not yet.
    assert _second_step(app, person, pyotp.TOTP(new).now()).status_code == 200
    other = app.test_client()
    login(other, person)

    # The first-enrolment form does not take the new key's code either (no audit, no e-mail that way).
    r = client.post("/auth/mfa/enrol", data={"code": pyotp.TOTP(new).now(),
                                              "csrf_token": csrf_token(client, "/account/")})
    assert r.status_code == 302 and _factor(person) == (old, new)

    # A wrong confirmation code changes nothing and does not show the new key again.
    r = _confirm(client, "000000")
    assert r.status_code == 422 and "did not match" in r.get_data(as_text=True)
    assert new not in r.get_data(as_text=True)
    assert _factor(person) == (old, new)

    r = _confirm(client, pyotp.TOTP(new).now())
    assert r.status_code == 302 and r.headers["Location"] == "/auth/mfa/enrol"
    assert "new authenticator is set up" in client.get("/auth/mfa/enrol").get_data(as_text=True)
    assert _factor(person) == (new, None)
    [event] = _events(person, "auth.mfa_reenrolled")
    assert event.actor_side == "client"

    run_jobs()
    [mail] = [m for m in smtp.to(person.email) if m["Subject"] == "Your second factor was changed"]
    assert "no longer work" in mail.get_content() and "/auth/reset" in mail.get_content()
    assert old not in mail.get_content() and new not in mail.get_content()

    # Sign-in now takes the new key's codes only (the used-step rule set aside, to test the keys alone).
    user = db.session.get(User, person.id)
    user.totp_last_step = 0
    db.session.commit()
    assert _second_step(app, person, pyotp.TOTP(old).now()).status_code == 200
    assert _second_step(app, person, pyotp.TOTP(new).now()).status_code == 302


def test_a_recovery_code_proves_the_factor_for_someone_who_lost_their_phone(client, ctx):
    person = make_person(Role.STAFF)
    login(client, person)
    page = client.post("/account/recovery-codes", data={"csrf_token": csrf_token(client, "/account/")})
    code = re.findall(rb"<code>([0-9a-f]{5}-[0-9a-f]{5})</code>", page.data)[0].decode()
    r = _renew(client, PASSWORD, code)
    assert r.status_code == 200 and SECRET.search(r.get_data(as_text=True))
    assert _events(person, "auth.recovery_code_used")
    assert _renew(client, PASSWORD, code).status_code == 422  # used up


def test_the_code_checks_are_throttled_like_sign_in(app, client, ctx):
    person = make_person(Role.STAFF)
    login(client, person)
    app.config["LOGIN_LIMIT_ACCOUNT"] = "3 per minute"
    try:
        codes = [_renew(client, PASSWORD, "000000").status_code for _ in range(4)]
        assert codes == [422, 422, 422, 429]
        assert _renew(client, PASSWORD, person.next_code()).status_code == 429  # even the right code waits
    finally:
        app.config["LOGIN_LIMIT_ACCOUNT"] = "1000 per minute"
    assert _factor(person)[1] is None

