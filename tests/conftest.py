"""Fixtures: one migrated database and real Redis and SMTP for the whole run.

Tests provision their own tenants and users with unique names (``factories``),
the way production does, so they never depend on each other's rows.
"""

from __future__ import annotations

import contextvars
import os
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests import factories, log_capture
from tests.services import MotoServer, SmtpSink, postgres_superuser_url, redis_url


def pytest_configure(config: pytest.Config) -> None:
    """Every log record of the session goes to one file too (tests/log_capture.py), greps for canaries at the end."""
    log_capture.start()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The canary check reads the log of every test before it: it runs last.
    last = [item for item in items if item.name == "test_no_canary_reached_the_log_of_the_session"]
    items[:] = [item for item in items if item not in last] + last


_WORKERS_FOUND = pytest.StashKey[list]()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:  # noqa: ANN001 - xdist's WorkerController, its error or None
    """On the controller of a parallel run (xdist): what a worker's own log held, reported with the rest."""
    output = getattr(node, "workeroutput", {})
    node.config.stash.setdefault(_WORKERS_FOUND, []).extend(
        (f"{name} ({output.get('log')})", line) for name, line in output.get("canaries", []))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A canary anywhere in the session's log (teardown included), or in any parallel worker's, fails the run."""
    found = log_capture.finish(keep=False)
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        # A worker's exit status is not the run's: the controller reports what it found (above).
        workeroutput["canaries"], workeroutput["log"] = found, str(log_capture.path())
        return
    found += session.config.stash.get(_WORKERS_FOUND, [])
    if found:
        lines = "\n".join(f"  {name}: {line}" for name, line in found[:20])
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        message = f"A planted value reached the log ({len(found)} lines; {log_capture.path()}):\n{lines}"
        if reporter is not None:
            reporter.write_line(message, red=True)
        else:
            print(message)  # noqa: T201
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


class IsolatedClient(FlaskClient):
    """A test client whose every request runs in a fresh ``contextvars`` context.

    Without this, a request made while a test holds an application context would
    share that context's ``g`` and database session with the test: production
    never does, and it hides bugs (CSRF tokens cached in ``g``, a bound scope).
    """

    def open(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201
        return contextvars.Context().run(super().open, *args, **kwargs)


@pytest.fixture(scope="session")
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    yield sink
    sink.stop()


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoServer]:
    """An S3 and KMS endpoint over HTTP on loopback (moto server), for the whole run."""
    server = MotoServer()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def stripe_emulator():  # noqa: ANN201 - Iterator[tests.stripe_emulator.StripeEmulator]
    """The Stripe API over HTTP on loopback (localstripe plus what it lacks), started when a test first asks."""
    from tests.stripe_emulator import StripeEmulator

    server = StripeEmulator()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def db_urls():
    from portal.dbsetup import bootstrap

    # One database per run, so that runs side by side (several engineers, xdist) never meet.
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"portal_test_{worker}_{os.getpid()}"
    superuser = postgres_superuser_url()
    yield bootstrap(superuser, name, recreate=True)
    import psycopg

    with psycopg.connect(superuser, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


def _compile_translations() -> None:
    """As `make translations` does, so that a bare `pytest` tests the current catalogues: each catalogue newer
    than its compiled file, written beside it and renamed over it (a session beside this one in the same
    checkout may be reading it: compiled in place, it read a half-written file)."""
    from pathlib import Path

    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    translations = Path(__file__).resolve().parent.parent / "portal" / "translations"
    for po in translations.glob("*/LC_MESSAGES/messages.po"):
        mo = po.with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        with po.open("rb") as source:
            catalog = read_po(source, locale=po.parent.parent.name)
        partial = mo.with_name(f".{mo.name}.{os.getpid()}")
        with partial.open("wb") as target:
            write_mo(target, catalog)  # fuzzy entries left out, as pybabel compile does
        os.replace(partial, mo)


@pytest.fixture(scope="session")
def app(db_urls, smtp, tmp_path_factory) -> Iterator[Flask]:
    from flask_migrate import upgrade
    from redis import Redis

    from portal import create_app

    _compile_translations()
    # A Redis database of this run's own: parallel workers (pytest-xdist) each get a different one,
    # or one worker's rq jobs could be run by another's worker against the wrong database.
    # PORTAL_TEST_REDIS_DB pins the first, for several test runs side by side on one machine (databases 1-15).
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    index = int(worker[2:]) if worker.startswith("gw") else 0
    pinned = os.environ.get("PORTAL_TEST_REDIS_DB")
    first = int(pinned) - 1 if pinned else 0 if worker else os.getpid()
    url = redis_url(1 + (first + index) % 15)
    Redis.from_url(url).flushdb()
    app = create_app({
        "TESTING": True,
        "DATABASE_URL": db_urls.app,
        "MIGRATION_DATABASE_URL": db_urls.owner,
        "REDIS_URL": url,
        "SMTP_URL": smtp.url,
        "INSTANCE_PATH": str(tmp_path_factory.mktemp("instance")),
        "SECRET_KEY": "test-secret-key-not-for-production",
        "LOGIN_LIMIT_IP": "1000 per minute",
        "LOGIN_LIMIT_ACCOUNT": "1000 per minute",
        "BASE_URL": "http://localhost",
    })
    app.test_client_class = IsolatedClient
    with app.app_context():
        upgrade()
    yield app


@pytest.fixture
def ctx(app: Flask) -> Iterator[Flask]:
    """An application context for calling services directly."""
    with app.app_context():
        yield app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def world(app: Flask) -> factories.World:
    """Two tenants with a user for every role, plus provider staff (assigned to tenant A only)."""
    with app.app_context():
        return factories.make_world()


_OUTBOX_BEFORE = pytest.StashKey[int]()


@pytest.fixture(autouse=True)
def _outbox_before_the_test(request: pytest.FixtureRequest) -> None:
    """For a test that runs jobs, the newest outbox row before any of its fixtures ran (autouse fixtures come
    first): ``run_jobs`` leaves out what earlier tests queued and never ran."""
    if "run_jobs" in request.fixturenames:
        from sqlalchemy import func, select

        from portal.extensions import db
        from workers.models import OutboxJob

        with request.getfixturevalue("app").app_context():
            request.node.stash[_OUTBOX_BEFORE] = db.session.scalar(select(func.max(OutboxJob.id))) or 0
            db.session.remove()


@pytest.fixture
def run_jobs(app: Flask, request: pytest.FixtureRequest):
    """Run every job this test queued with a real worker (burst mode, JSON serializer)."""
    from tests.jobs import run_queued

    before = request.node.stash.get(_OUTBOX_BEFORE, None)

    def run() -> None:
        nonlocal before
        with app.app_context():
            run_queued(app, after=before)
        before = None  # the earlier tests' jobs are set aside once

    return run


@pytest.fixture
def provider_bank(app: Flask) -> Iterator[dict[str, str]]:
    """The provider's bank account set for statements (VietQR), as in ``tests.factories.PROVIDER_BANK``."""
    saved = {k: app.config.get(k) for k in factories.PROVIDER_BANK}
    app.config.update(factories.PROVIDER_BANK)
    yield factories.PROVIDER_BANK
    app.config.update(saved)
