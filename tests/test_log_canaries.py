"""Canaries: values that must never reach a log, planted through the product's own paths, and one check at
the end of the session that greps every log record of the session for them (tests/log_capture.py).

The planting tests run with every logger switched on (the portal's at DEBUG, libraries' at INFO, loggers
that alembic's logging config switched off switched back on), so that whatever production could write at
any level is written here: a document whose text holds a canary is uploaded, read by intake, searched for
and downloaded; a sign-in is tried with a canary password, and an account with the canary as its new
password; an employee is created, refused and revealed with a canary salary; invite, reset and API
tokens are made of a canary. The last test of the session (tests/conftest.py orders it last) asserts
that no log line of the session holds any of them; ``pytest_sessionfinish`` checks again what came after.
"""

from __future__ import annotations

import html
import io
import logging
from collections.abc import Iterator

import pytest
from weasyprint import HTML

from tenants.policy import Role
from tests import log_capture
from tests.factories import csrf_token, login, make_person, make_tenant
from tests.log_capture import CANARY_PASSWORD, CANARY_SALARY, CANARY_TEXT, CANARY_TOKEN

LOUD = {"portal": logging.DEBUG, "tenants": logging.DEBUG, "workers": logging.DEBUG, "rq": logging.DEBUG,
        "werkzeug": logging.INFO, "gunicorn": logging.INFO, "": logging.INFO}


@pytest.fixture
def loud() -> Iterator[None]:
    """Every logger on, at the levels of ``LOUD`` (put back afterwards)."""
    manager = logging.root.manager
    switched = [lg for lg in manager.loggerDict.values() if isinstance(lg, logging.Logger) and lg.disabled]
    levels = {name: logging.getLogger(name or None).level for name in LOUD}
    for lg in switched:
        lg.disabled = False
    for name, level in LOUD.items():
        logging.getLogger(name or None).setLevel(level)
    try:
        yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name or None).setLevel(level)
        for lg in switched:
            lg.disabled = True


@pytest.fixture
def admin(app):  # noqa: ANN201
    """A new tenant and its client admin (second factor enrolled), signed in."""
    with app.app_context():
        tenant = make_tenant()
        person = make_person(Role.CLIENT_ADMIN, tenant)
    client = app.test_client()
    login(client, person)
    return tenant.slug, person, client


def test_a_documents_text_is_never_logged(app, loud, admin, run_jobs):
    slug, _person, client = admin
    body = HTML(string=f"<h1>Hợp đồng</h1><p>Điều khoản {CANARY_TEXT} giữa các bên.</p>").write_pdf()
    token = csrf_token(client, f"/t/{slug}/documents")
    r = client.post(f"/t/{slug}/documents/upload", content_type="multipart/form-data",
                    headers={"Accept": "application/json"},
                    data={"csrf_token": token, "category": "contract", "file": [(io.BytesIO(body), "hop-dong.pdf")]})
    assert r.status_code == 200, r.data[:500]
    url = r.json["results"][0]["url"]
    run_jobs()  # intake: preview, the text layer read, classified, indexed
    found = client.get(f"/t/{slug}/search", query_string={"q": CANARY_TEXT})
    assert found.status_code == 200 and "hop-dong.pdf" in found.get_data(as_text=True)  # it was read
    assert client.get(url).status_code == 200
    download = client.get(f"{url}/download")
    assert download.status_code == 200 and download.data == body


def test_a_password_is_never_logged(app, loud):
    with app.app_context():
        person = make_person(Role.CLIENT_MEMBER, make_tenant())
    client = app.test_client()
    token = csrf_token(client)
    r = client.post("/auth/login", data={"email": person.email, "password": CANARY_PASSWORD, "csrf_token": token})
    assert r.status_code == 200 and "do not match" in r.get_data(as_text=True)
    r = client.post("/auth/login", data={"email": "nobody@example.test", "password": CANARY_PASSWORD,
                                         "csrf_token": token})
    assert r.status_code == 200
    login(client, person)
    # Changing the password: a wrong current one, the canary as the new one.
    r = client.post("/account/password", data={"csrf_token": csrf_token(client, "/account/"),
                                                "current": CANARY_PASSWORD, "password": CANARY_PASSWORD,
                                                "confirm": CANARY_PASSWORD})
    assert r.status_code == 422 and "current password is not right" in r.get_data(as_text=True)


def test_a_salary_is_never_logged(app, loud, world):
    slug, client = world.a.slug, app.test_client()
    login(client, world["staff"])  # provider staff keep the payroll
    new = f"/t/{slug}/payroll/employees/new"
    typed = {"csrf_token": csrf_token(client, new), "code": "CANARY1", "full_name": "Lê Văn Canary",
             "national_id": "079123456789", "contract_type": "indefinite", "contract_start": "2026-01-01",
             "region": "I", "base_salary": f"{CANARY_SALARY:,}", "active": "1", "then": "save"}
    refused = client.post(f"/t/{slug}/payroll/employees", data=typed | {"contract_start": "not a date"})
    assert refused.status_code == 422
    saved = client.post(f"/t/{slug}/payroll/employees", data=typed)
    assert saved.status_code == 303, saved.get_data(as_text=True)[:500]
    url = f"/t/{slug}/payroll/employees/CANARY1"
    shown = client.post(f"{url}/reveal", data={"field": "salary", "csrf_token": csrf_token(client, url)})
    assert f"{CANARY_SALARY:,}" in html.unescape(shown.get_data(as_text=True))  # the value went through


def test_a_token_is_never_logged(app, loud, client):
    for path in (f"/auth/invite/{CANARY_TOKEN}", f"/auth/reset/{CANARY_TOKEN}", f"/payslip/{CANARY_TOKEN}"):
        r = client.get(path)
        assert r.status_code in (200, 404, 410), (path, r.status_code)
        client.post(path, data={"csrf_token": csrf_token(client), "password": CANARY_PASSWORD,
                                "confirm": CANARY_PASSWORD, "name": "Canary"})
    with app.app_context():
        slug = make_tenant().slug
    api = client.get(f"/api/v1/tenants/{slug}/documents", headers={"Authorization": f"Bearer {CANARY_TOKEN}"})
    assert api.status_code == 401


def test_the_check_finds_a_canary_however_a_line_spells_it():
    """The grep itself, on lines made here (never written to the session's log)."""
    assert log_capture.findings('{"message": "salary 48,213,977 saved"}')[0][0] == "salary"
    assert log_capture.findings(f"x {CANARY_TEXT.lower()} y")[0][0] == "document text"
    assert log_capture.findings("Traceback ... correct horse battery staple")[0][0] == "password"
    [(name, masked)] = log_capture.findings(f"GET /auth/invite/{CANARY_TOKEN} 404")
    assert name == "token" and CANARY_TOKEN not in masked and "<token canary>" in masked
    assert log_capture.findings('{"message": "employee CANARY1 saved", "tenant_id": "3f2a"}') == []


def test_no_canary_reached_the_log_of_the_session():
    """Ordered last (tests/conftest.py): every log record of the session so far, canary-free."""
    assert log_capture.path() is not None and log_capture.path().exists()
    found = log_capture.findings()
    assert found == [], "\n".join(f"{name}: {line}" for name, line in found[:20])
