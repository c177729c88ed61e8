"""English and Vietnamese: a complete catalogue, chosen per user."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.pofile import read_po
from sqlalchemy import select

from portal.extensions import db
from tenants.models import User
from tenants.policy import Role
from tests.factories import csrf_token, login, make_person, make_tenant

CATALOG = Path(__file__).resolve().parent.parent / "portal/translations/vi/LC_MESSAGES/messages.po"
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]")


def _catalog():
    with CATALOG.open("rb") as fh:
        return read_po(fh)


def _vi(english: str) -> str:
    return _catalog()[english].string


def test_every_string_is_translated_with_its_placeholders():
    untranslated, broken = [], []
    for message in _catalog():
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if not all(strings) or message.fuzzy:
            untranslated.append(ids[0])
        wanted = sorted(PLACEHOLDER.findall(ids[-1]))
        if any(sorted(PLACEHOLDER.findall(s)) != wanted for s in strings if s):
            broken.append(ids[0])
    assert untranslated == [] and broken == []


def test_anonymous_visitor_switches_language(client):
    page = client.get("/auth/login", headers={"Accept-Language": "en"})
    assert b'<html lang="en">' in page.data
    r = client.post("/language", data={"lang": "vi", "next": "/auth/login", "csrf_token": csrf_token(client)})
    assert r.status_code == 302 and r.headers["Location"] == "/auth/login"
    page = client.get("/auth/login")
    assert b'<html lang="vi">' in page.data
    assert _vi("Forgot your password?") in page.get_data(as_text=True)


def test_browser_language_is_the_default(client):
    page = client.get("/auth/login", headers={"Accept-Language": "vi-VN,vi;q=0.9,en;q=0.5"})
    assert b'<html lang="vi">' in page.data


def test_signed_in_choice_is_kept_on_the_account(app, client, ctx):
    tenant = make_tenant()
    person = make_person(Role.CLIENT_MEMBER, tenant)
    login(client, person)
    client.post("/language", data={"lang": "vi", "csrf_token": csrf_token(client, "/account/")})
    db.session.expire_all()
    assert db.session.scalars(select(User.locale).where(User.id == person.id)).one() == "vi"
    other = app.test_client()  # another browser, same person: Vietnamese too
    login(other, person)
    home = other.get(f"/t/{tenant.slug}/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert '<html lang="vi">' in home and _vi("Sign out") in home


def test_refusals_from_services_are_translated(client, ctx):
    tenant = make_tenant()
    person = make_person(Role.CLIENT_ADMIN, tenant)
    login(client, person)
    client.post("/language", data={"lang": "vi", "csrf_token": csrf_token(client, "/account/")})
    r = client.post("/account/password", data={"current": "wrong wrong wrong", "password": "new long password 1",
                                               "confirm": "new long password 1",
                                               "csrf_token": csrf_token(client, "/account/")})
    assert _vi("Your current password is not right.") in r.get_data(as_text=True)


def test_the_catalogue_has_every_string_of_the_code(tmp_path):
    """A new user-facing string without a Vietnamese translation fails here (run `make messages`)."""
    import subprocess
    import sys

    root = CATALOG.parents[3].parent
    pot = tmp_path / "messages.pot"
    subprocess.run([str(Path(sys.executable).with_name("pybabel")), "-q", "extract", "-F", "babel.cfg",
                    "--ignore-dirs=.venv tests instance bench", "-k", "_l", "-k", "lazy_gettext", "-k", "N_",
                    "-o", str(pot), "."], cwd=root, check=True)
    with pot.open("rb") as fh:
        wanted = {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(fh) if m.id}
    have = {m.id if isinstance(m.id, str) else m.id[0] for m in _catalog() if m.id}
    assert sorted(wanted - have) == []
