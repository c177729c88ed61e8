"""The new-tenant form: a short name in upper case is refused with what to type instead; the invitation
e-mails go out in the language of the person invited."""

from __future__ import annotations

import re

from portal.auth.services import user_by_email
from tenants.lifecycle import tenant_by_slug
from tests.factories import csrf_token, login, unique
from tests.pages import fields
from tests.provider.conftest import fresh, post


def _form(slug: str, email: str, **overrides: str) -> dict[str, str]:
    data = {"name": f"Sen Vàng {slug}", "slug": slug, "currency": "VND", "timezone": "Asia/Ho_Chi_Minh",
            "locale": "vi", "admin_email": email, "admin_name": "Phạm Thu Hà"}
    return {**data, **overrides}


def test_a_short_name_in_upper_case_is_refused_saying_it_is_lowercase(ctx, world, browser):
    admin = browser(world["provider_admin"])
    slug = unique("Test-Co")
    email = f"{unique('upper')}@example.test"
    r = post(admin, "/provider/tenants", _form(slug, email))
    assert r.status_code == 422
    form = fields(r.get_data(as_text=True))
    assert form["slug"].value == slug and form["admin_email"].value == email
    assert form["slug"].errors == [f"The short name is written in lowercase: {slug.lower()}."]
    fresh()
    assert tenant_by_slug(slug) is None and tenant_by_slug(slug.lower()) is None
    assert user_by_email(email) is None


def test_every_error_of_the_tenant_form_shows_at_once_next_to_its_field(world, browser):
    admin = browser(world["provider_admin"])
    slug = unique("Sen-Vang")
    r = post(admin, "/provider/tenants", _form(slug, "", name="  ", timezone="Asia/Hanoi City"))
    assert r.status_code == 422
    form = fields(r.get_data(as_text=True))
    assert form["name"].errors == ["This field is required."]
    assert form["slug"].errors == [f"The short name is written in lowercase: {slug.lower()}."]
    assert form["admin_email"].errors == ["This field is required."]
    assert form["slug"].value == slug and form["timezone"].value == "Asia/Hanoi City"
    r = post(admin, "/provider/tenants", _form("x!", f"{unique('bad')}@example.test"))
    assert fields(r.get_data(as_text=True))["slug"].errors == [
        "The short name must be 3-63 lowercase letters, digits or dashes, starting and ending with a letter or digit."]


def test_the_short_name_pattern_is_one_a_browser_can_compile(world, browser):
    admin = browser(world["provider_admin"])
    pattern = fields(admin.get("/provider/tenants").get_data(as_text=True))["slug"].attrs["pattern"]
    # Browsers compile it with the v flag, where a class's "-" must be escaped (tests/browser checks it runs).
    assert re.search(r"\[[^\]]*(?<!\\)-\]", pattern) is None
    assert re.fullmatch(pattern, "sen-vang") and not re.fullmatch(pattern, "Test Co!")


def test_the_invitation_is_in_the_language_of_the_person_invited(app, ctx, world, browser, smtp, run_jobs):
    admin = browser(world["provider_admin"])
    slug = unique("senvang")
    email = f"{slug}@example.test"
    assert post(admin, "/provider/tenants", _form(slug, email)).status_code == 302
    run_jobs()
    [mail] = smtp.to(email)
    assert mail["Subject"] == f"Bạn được mời tham gia Sen Vàng {slug}"
    body = mail.get_content()
    assert "đã mời bạn tham gia" in body and "hết hạn sau 7 ngày" in body and "/auth/invite/" in body

    # Someone who already reads the portal in English is told in English, by a Vietnamese workspace whose
    # admin reads it in Vietnamese too.
    client_admin = app.test_client()
    login(client_admin, world["a_client_admin"])
    client_admin.post("/language", data={"lang": "vi", "csrf_token": csrf_token(client_admin, "/account/")})
    existing = world["b_client_member"]
    users = f"/t/{world.a.slug}/users"
    r = client_admin.post(users + "/invite", data={"csrf_token": csrf_token(client_admin, users),
                                                   "email": existing.email, "role": "client_member"})
    assert r.status_code == 302
    run_jobs()
    [mail] = smtp.to(existing.email)
    assert mail["Subject"].startswith("You now have access to ")
