"""``bench/pages.py`` cannot rot silently: each bare twin (``bench/twin_app.py``) renders its real page's rows.

The bench's own seed (smaller), the twins' app on the test database, the real pages read by their signed-in
readers: the same row ids in the same order, and the same HTML but for CSRF tokens and the page's own path.
"""

from __future__ import annotations

from flask import Flask
from sqlalchemy.engine import make_url

from bench import pages
from bench.twin_app import create_twin_app, reader_url
from portal.work.states import FINAL
from tenants.models import LIVE_STATUSES
from tenants.policy import Role
from tests.factories import Person, login
from tests.services import postgres_superuser_url

ROWS = 14  # the staff member's 13 tasks in the first tenant, and one in the other


def test_the_twins_sql_still_spells_the_products_constants() -> None:
    """The twins' SQL writes the live tenant statuses and the finished task states out: they must still be these."""
    assert LIVE_STATUSES == ("active", "suspended")
    assert sorted(s.value for s in FINAL) == ["cancelled", "done"]


def test_each_twin_renders_the_rows_of_its_real_page(app: Flask, db_urls) -> None:  # noqa: ANN001
    with app.app_context():
        facts = pages.seed(rows=ROWS, others=2)
    config = {key: app.config[key] for key in ("TESTING", "DATABASE_URL", "MIGRATION_DATABASE_URL", "REDIS_URL",
                                               "SMTP_URL", "INSTANCE_PATH", "SECRET_KEY", "FIELD_KEY", "KEY_DIR",
                                               "STORAGE_DIR", "LOGIN_LIMIT_IP", "LOGIN_LIMIT_ACCOUNT", "BASE_URL")}
    config["TWIN_DATABASE_URL"] = reader_url(postgres_superuser_url(), make_url(db_urls.app).database)
    twins = create_twin_app(config)
    readers = {}
    for key, role in (("approver", Role.CLIENT_APPROVER), ("staff", Role.STAFF)):
        person = facts["people"][key]
        readers[key] = twins.test_client()
        login(readers[key], Person(person["id"], person["email"], role, totp_secret=person["totp"]))
    anonymous = twins.test_client()
    try:
        for page in pages.pages_of(facts):
            real, twin = readers[page.reader].get(page.real), anonymous.get(page.twin)
            assert (real.status_code, twin.status_code) == (200, 200), page.name
            real_html, twin_html = real.get_data(as_text=True), twin.get_data(as_text=True)
            ids = pages.row_ids(page, real_html)
            assert len(ids) == ROWS, page.name
            assert pages.row_ids(page, twin_html) == ids, page.name
            assert pages.normalised(twin_html) == pages.normalised(real_html), page.name
        # And a twin is no way around the gate: without the session, the real page sends its reader to sign in.
        assert anonymous.get(pages.pages_of(facts)[0].real).status_code == 302
    finally:
        twins.extensions["twin_engine"].dispose()
