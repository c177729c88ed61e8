"""Helpers for the provider console tests: signed-in browsers and CSRF-carrying posts."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal.extensions import db
from tests.factories import Person, csrf_token, login


@pytest.fixture
def browser(app: Flask) -> Callable[[Person], FlaskClient]:
    """A fresh browser signed in as ``person`` through the real sign-in pages."""

    def open_as(person: Person) -> FlaskClient:
        client = app.test_client()
        login(client, person)
        return client

    return open_as


def post(client: FlaskClient, url: str, data: dict[str, str] | None = None, **kw):
    """POST a form the way a browser does: with the session's CSRF token."""
    token = csrf_token(client, "/account/")
    return client.post(url, data={**(data or {}), "csrf_token": token}, **kw)


def fresh() -> None:
    """Forget what this test's session has loaded: the requests committed in their own sessions."""
    db.session.rollback()
    db.session.expire_all()
