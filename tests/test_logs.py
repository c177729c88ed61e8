"""Unhandled errors: the reference shown to the user is in the process's log, with the traceback."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from sqlalchemy import text

from portal.access import public
from portal.extensions import db
from tenants.policy import Role
from tests.factories import login, make_person, make_tenant

SECRET = "s3cr3t-invite-token"


@pytest.fixture
def failing_app(app: Flask, tmp_path) -> Flask:
    """A second app on the test database, not TESTING (errors are answered as in production), with a
    test-only route whose statement fails and leaves the transaction aborted. Its path looks like an
    invite link, whose token must not reach the log."""
    from portal import create_app

    config = {k: app.config[k] for k in ("DATABASE_URL", "MIGRATION_DATABASE_URL", "REDIS_URL", "SMTP_URL",
                                         "SECRET_KEY", "FIELD_KEY", "KEY_DIR", "BASE_URL")}
    fresh = create_app(config | {"INSTANCE_PATH": str(tmp_path), "LOGIN_LIMIT_IP": "1000 per minute",
                                 "LOGIN_LIMIT_ACCOUNT": "1000 per minute"})

    @public
    def fail(token: str):  # noqa: ANN202
        db.session.execute(text("select 1 / 0"))

    fresh.add_url_rule("/auth/invite/<token>/fail", "test_only_fail", fail)
    return fresh


def _reference(response) -> str:
    assert response.status_code == 500
    match = re.search(r"quote reference ([0-9a-f]{8})", response.get_data(as_text=True))
    assert match, response.get_data(as_text=True)[:1000]
    return match.group(1)


def _assert_logged(err: str, ref: str) -> None:
    lines = err.splitlines()
    [at] = [i for i, line in enumerate(lines) if f"unhandled error {ref}" in line]
    assert re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ \[\d+\] ERROR portal\.errors: ", lines[at]), lines[at]
    assert "/auth/invite/[redacted]/fail" in lines[at]
    assert lines[at + 1] == "Traceback (most recent call last):", lines[at:at + 3]
    trace = "\n".join(lines[at + 1:])
    assert "DivisionByZero" in trace and "select 1 / 0" in trace
    assert SECRET not in err


def test_an_unhandled_error_logs_its_reference_with_the_traceback_on_stderr(failing_app, capfd):
    capfd.readouterr()
    ref = _reference(failing_app.test_client().get(f"/auth/invite/{SECRET}/fail"))
    _assert_logged(capfd.readouterr().err, ref)


def test_the_reference_is_answered_even_when_the_transaction_failed(failing_app, capfd):
    """Signed in, the error page's header reads the database (workspaces, notifications)."""
    with failing_app.app_context():
        person = make_person(Role.CLIENT_MEMBER, make_tenant())
    client = failing_app.test_client()
    login(client, person)
    capfd.readouterr()
    response = client.get(f"/auth/invite/{SECRET}/fail")
    ref = _reference(response)
    assert "Sign out" in response.get_data(as_text=True)  # the whole page, header included
    _assert_logged(capfd.readouterr().err, ref)
