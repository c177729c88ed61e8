"""/healthz and /readyz: cheap, public, and naming nothing but the parts that fail.

Each dependency is taken away for real (a port nobody listens on, one that accepts and never answers, a
bucket that is not there, a database whose migrations have not run) and the probe must say which part
fails, and only that, within a few seconds.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import create_engine, make_url, text

from portal.health import Readiness
from tests.services import free_port

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = ("DATABASE_URL", "MIGRATION_DATABASE_URL", "REDIS_URL", "SECRET_KEY", "FIELD_KEY")


def _app(app: Flask, tmp_path: Path, **over: object) -> Flask:
    from portal import create_app

    config = {k: app.config[k] for k in SETTINGS} | {"INSTANCE_PATH": str(tmp_path / "instance"), "TESTING": True}
    return create_app(config | over)


def _unavailable(response, *failing: str) -> None:
    assert response.status_code == 503
    assert response.json == {"status": "unavailable", "failing": list(failing)}
    assert response.headers["Retry-After"] == "5"
    assert response.headers["Cache-Control"] == "no-store"


@pytest.fixture
def silent() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) and never answers a byte: a hung server."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    yield server.getsockname()[1]
    server.close()


def test_liveness_and_readiness_answer_without_a_session(client):
    assert client.get("/healthz").json == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json == {"status": "ready"}
    assert "Set-Cookie" not in ready.headers and "Retry-After" not in ready.headers


def test_a_database_nobody_answers_is_named_and_nothing_else(app, tmp_path):
    port = free_port()
    down = _app(app, tmp_path, DATABASE_URL=f"postgresql+psycopg://portal_app@127.0.0.1:{port}/portal")
    response = down.test_client().get("/readyz")
    _unavailable(response, "database")
    body = response.get_data(as_text=True)
    assert str(port) not in body and "127.0.0.1" not in body and "refused" not in body.lower()


def test_redis_nobody_answers_is_named(app, tmp_path):
    down = _app(app, tmp_path, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    _unavailable(down.test_client().get("/readyz"), "redis")


def test_hung_servers_cannot_hang_the_probe(app, tmp_path, silent):
    hung = _app(app, tmp_path, DATABASE_URL=f"postgresql+psycopg://portal_app@127.0.0.1:{silent}/portal",
                REDIS_URL=f"redis://127.0.0.1:{silent}/0")
    started = time.monotonic()
    response = hung.test_client().get("/readyz")
    elapsed = time.monotonic() - started
    _unavailable(response, "database", "redis")
    assert elapsed < 4, f"the probe took {elapsed:.1f} s"


def test_a_storage_folder_that_cannot_be_one_is_named(app, tmp_path):
    blocker = tmp_path / "a-file-not-a-folder"
    blocker.write_text("x")
    down = _app(app, tmp_path, STORAGE_DIR=str(blocker))
    _unavailable(down.test_client().get("/readyz"), "storage")


def test_an_s3_bucket_is_ready_only_when_it_answers(app, tmp_path, moto):
    bucket = f"readyz-{int(time.time() * 1000)}"
    s3 = {**moto.env(), "STORAGE_BACKEND": "s3", "S3_BUCKET": bucket}
    missing = _app(app, tmp_path, **s3)
    _unavailable(missing.test_client().get("/readyz"), "storage")
    moto.client("s3").create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": moto.region})
    there = _app(app, tmp_path, **s3)
    assert there.test_client().get("/readyz").status_code == 200


def _head() -> str:
    """The newest revision, read from the revision files themselves: the one no other revision comes after."""
    revisions, parents = set(), set()
    for path in (ROOT / "migrations" / "versions").glob("*.py"):
        source = path.read_text()
        revision = re.search(r"^revision\s*(?::[^=]+)?=\s*[\"']([^\"']+)[\"']", source, re.MULTILINE)
        down = re.search(r"^down_revision\s*(?::[^=]+)?=\s*[\"']([^\"']+)[\"']", source, re.MULTILINE)
        if revision:
            revisions.add(revision.group(1))
        if down:
            parents.add(down.group(1))
    [head] = revisions - parents
    return head


@pytest.fixture
def fresh_database(app) -> Iterator[tuple[str, str]]:
    """A database of its own with the portal's roles and nothing migrated: (app URL, owner URL)."""
    import psycopg

    from portal.dbsetup import bootstrap
    from tests.services import postgres_superuser_url

    name = f"portal_readyz_{time.monotonic_ns()}"
    superuser = postgres_superuser_url()
    urls = bootstrap(superuser, name, recreate=True)
    yield urls.app, urls.owner
    with psycopg.connect(superuser, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


def test_migrations_must_be_at_the_head_of_the_code(app, tmp_path, fresh_database):
    app_url, owner_url = fresh_database
    config = dict(app.config) | {"DATABASE_URL": app_url, "MIGRATION_DATABASE_URL": owner_url}
    assert Readiness(config).failing() == ["migrations"]  # nothing migrated yet: the database itself answers

    owner = create_engine(owner_url)
    with owner.begin() as conn:
        conn.execute(text("create table alembic_version (version_num varchar(32) primary key)"))
        # What revision 0029 grants: the web tier reads the revision as the application role, never the owner.
        conn.execute(text(f'grant select on alembic_version to "{make_url(app_url).username}"'))
        conn.execute(text("insert into alembic_version values ('0001')"))
    config_without_owner = config | {"MIGRATION_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none"}
    assert Readiness(config_without_owner).failing() == ["migrations"]  # a release behind

    with owner.begin() as conn:
        conn.execute(text("update alembic_version set version_num = :head"), {"head": _head()})
    assert Readiness(config_without_owner).failing() == []

    # The next release migrated first (a rolling upgrade): this release's pods stay ready on its schema.
    with owner.begin() as conn:
        conn.execute(text("update alembic_version set version_num = 'f00d-next-release'"))
    owner.dispose()
    assert Readiness(config_without_owner).failing() == []


def test_the_heads_are_read_from_the_migrations_folder_the_configuration_names(app, tmp_path):
    """The image installs the package as a wheel and copies the migrations elsewhere (MIGRATIONS_DIR): the probe
    reads that folder. A copy with one revision more than the database's is a release ahead: not ready."""
    import shutil

    folder = tmp_path / "migrations"
    shutil.copytree(ROOT / "migrations", folder, ignore=shutil.ignore_patterns("__pycache__"))
    assert Readiness(dict(app.config) | {"MIGRATIONS_DIR": str(folder)}).failing() == []
    (folder / "versions" / "9999_next.py").write_text(
        f'revision = "9999"\ndown_revision = "{_head()}"\n\ndef upgrade():\n    pass\n')
    assert Readiness(dict(app.config) | {"MIGRATIONS_DIR": str(folder)}).failing() == ["migrations"]
    assert Readiness(dict(app.config)).failing() == []  # the checkout's own folder: at its head


def test_the_migration_check_is_kept_for_a_few_seconds(app, monkeypatch):
    """A probe every second reads the revision once per ten seconds, not every time."""
    import portal.health as health

    ready = Readiness(dict(app.config))
    assert ready.failing() == []
    reads = []
    real = ready._engine

    def counting(setting: str):  # noqa: ANN202
        reads.append(setting)
        return real(setting)

    monkeypatch.setattr(ready, "_engine", counting)
    for _ in range(3):
        assert ready.failing() == []
    assert len(reads) == 3  # the database's "select 1" each time, the revision not again
    clock = time.monotonic() + health.MIGRATIONS_EVERY + 1
    monkeypatch.setattr(health.time, "monotonic", lambda: clock)
    assert ready.failing() == [] and len(reads) == 5  # and now the revision once more
