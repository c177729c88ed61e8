"""Dependencies failing under a running app: PostgreSQL, Redis and the S3 endpoint, each really unreachable.

Each test builds an app of its own on the test database whose way to the failing part is one the test
controls: a TCP proxy it cuts (``tests/proxy.py``: PostgreSQL, the S3 endpoint), a redis-server it stops,
a moto server it stops. While the part is down, requests that need it answer 503 with ``Retry-After``
and a sentence, never a 500 or a traceback; once it is back the same app serves again, no restart; an
upload that met the outage left nothing half-stored, and every upload that was accepted reads back to
its SHA-256.
"""

from __future__ import annotations

import hashlib
import io
import re
import time
from pathlib import Path

import psycopg
import pytest
from flask import Flask
from sqlalchemy import create_engine, func, make_url, select, text

from portal.access import public
from portal.documents.models import Document, StoredObject
from portal.extensions import db
from tenants.context import Scope, bound
from tenants.outages import RETRY_AFTER, dependency_down
from tests.api.util import bearer, issue_token
from tests.documents import samples
from tests.factories import csrf_token, login
from tests.processes import portal_env
from tests.proxy import TcpProxy
from tests.services import MotoServer, RedisServer, postgres_superuser_url

BRIEFLY = "briefly unavailable"


def _fresh_app(app: Flask, tmp_path: Path, **overrides: object) -> Flask:
    """An app on the test database, answering errors as in production (not TESTING)."""
    from portal import create_app
    from tests.conftest import IsolatedClient

    config = {k: app.config[k] for k in ("DATABASE_URL", "MIGRATION_DATABASE_URL", "REDIS_URL", "SMTP_URL",
                                         "SECRET_KEY", "FIELD_KEY", "KEY_DIR", "BASE_URL")}
    fresh = create_app(config | {"INSTANCE_PATH": str(tmp_path / "instance"), "LOGIN_LIMIT_IP": "1000 per minute",
                                 "LOGIN_LIMIT_ACCOUNT": "1000 per minute", **overrides})
    fresh.test_client_class = IsolatedClient
    return fresh


def _via(url: str, proxy: TcpProxy) -> str:
    return make_url(url).set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)


def _assert_unavailable(response, *, json: bool = False) -> None:
    """503, Retry-After, the sentence; no reference to quote (that is a 500's) and no traceback."""
    assert response.status_code == 503, (response.status_code, response.data[:500])
    assert response.headers["Retry-After"] == str(RETRY_AFTER) == "30"
    body = response.get_data(as_text=True)
    assert "Traceback" not in body and "quote reference" not in body and "psycopg" not in body
    if json:
        assert response.mimetype == "application/problem+json"
        assert response.json["status"] == 503 and response.json["title"] == "Briefly unavailable"
        assert "again" in response.json["detail"]
    else:
        assert response.mimetype == "text/html" and BRIEFLY in body.lower() and "try again" in body.lower()


def _upload(client, slug: str, body: bytes, name: str):
    token = csrf_token(client, f"/t/{slug}/documents")
    return client.post(f"/t/{slug}/documents/upload", headers={"Accept": "application/json"},
                       content_type="multipart/form-data",
                       data={"csrf_token": token, "category": "invoice", "file": [(io.BytesIO(body), name)]})


def _documents_named(app: Flask, tenant_id, name: str) -> int:
    with app.app_context(), bound(Scope(tenant_ids=frozenset({tenant_id}))):
        return db.session.scalar(select(func.count()).select_from(Document).where(Document.title == name))


def _reads_back(client, slug: str, document_url: str, body: bytes) -> None:
    """The document's download is exactly ``body`` (its SHA-256)."""
    r = client.get(f"{document_url}/download")
    assert r.status_code == 200, r.data[:300]
    assert hashlib.sha256(r.data).hexdigest() == hashlib.sha256(body).hexdigest()


# --- which errors are outages: real errors from real servers ---------------------------------------------

def test_only_an_unreachable_part_counts_as_an_outage(app, tmp_path):
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError
    from redis import Redis
    from redis.exceptions import RedisError

    from tests.services import free_port

    proxy = TcpProxy("127.0.0.1", make_url(app.config["DATABASE_URL"]).port or 5432)
    engine = create_engine(_via(app.config["DATABASE_URL"], proxy), pool_pre_ping=False)
    try:
        with engine.connect() as conn:  # a working server's own refusals are not outages
            for statement, state in (("set statement_timeout = 1; select pg_sleep(0.2)", "57014"),
                                     ("select 1 / 0", "22012")):
                with pytest.raises(Exception) as caught:
                    conn.execute(text(statement))
                conn.rollback()
                assert caught.value.orig.sqlstate == state and dependency_down(caught.value) is None
            proxy.drop_connections()  # the server went away under an open connection
            with pytest.raises(Exception) as lost:
                conn.execute(text("select 1"))
        assert dependency_down(lost.value) == "database"
        proxy.cut()  # and refuses new ones
        with pytest.raises(Exception) as refused:
            engine.connect()
        assert dependency_down(refused.value) == "database"
    finally:
        engine.dispose()
        proxy.close()

    with pytest.raises(RedisError) as redis_down:
        Redis(port=free_port(), socket_connect_timeout=1).ping()
    assert dependency_down(redis_down.value) == "redis"

    moto = MotoServer()
    try:
        s3 = moto.client("s3")
        s3.create_bucket(Bucket="faults", CreateBucketConfiguration={"LocationConstraint": moto.region})
        with pytest.raises(ClientError) as missing:  # an answer: the key is not there
            s3.get_object(Bucket="faults", Key="nothing")
        assert dependency_down(missing.value) is None
    finally:
        moto.stop()
    stopped = boto3.client("s3", endpoint_url=moto.endpoint_url, region_name=moto.region,
                           aws_access_key_id="x", aws_secret_access_key="x",  # noqa: S106
                           config=Config(retries={"max_attempts": 1}))
    with pytest.raises(Exception) as endpoint_down:
        stopped.get_object(Bucket="faults", Key="nothing")
    assert dependency_down(endpoint_down.value) == "storage"


# --- PostgreSQL -----------------------------------------------------------------------------------------

@pytest.fixture
def pg_proxy(app):
    proxy = TcpProxy("127.0.0.1", make_url(app.config["DATABASE_URL"]).port or 5432)
    yield proxy
    proxy.close()


@pytest.fixture
def db_app(app, tmp_path, pg_proxy) -> Flask:
    """An app whose every connection to PostgreSQL goes through ``pg_proxy``."""
    return _fresh_app(app, tmp_path, DATABASE_URL=_via(app.config["DATABASE_URL"], pg_proxy))


def test_database_down_answers_503_with_retry_after_and_the_same_app_recovers(app, world, db_app, pg_proxy):
    member = db_app.test_client()
    login(member, world["a_client_member"])
    token = issue_token(app, world["a_client_member"], world.a, "write")
    api = db_app.test_client()
    home = f"/t/{world.a.slug}/documents"
    assert member.get(home).status_code == 200

    pg_proxy.cut()
    _assert_unavailable(member.get(home))
    # The user cannot be read, so the page speaks the browser's language.
    in_vietnamese = member.get(home, headers={"Accept-Language": "vi"})
    assert in_vietnamese.status_code == 503 and in_vietnamese.headers["Retry-After"] == "30"
    page = in_vietnamese.get_data(as_text=True)
    assert '<html lang="vi">' in page and "Briefly unavailable" not in page and "Traceback" not in page
    _assert_unavailable(api.get(f"/api/v1/tenants/{world.a.slug}/documents", headers=bearer(token)), json=True)
    _assert_unavailable(member.get(f"/t/{world.a.slug}/"))
    assert db_app.test_client().get("/healthz").status_code == 200  # alive: only what needs the database waits

    pg_proxy.restore()  # no restart of the app: its next requests are served
    r = member.get(home)
    assert r.status_code == 200 and "Documents" in r.get_data(as_text=True)
    assert api.get(f"/api/v1/tenants/{world.a.slug}/documents", headers=bearer(token)).status_code == 200


def test_connections_dropped_while_idle_are_replaced_before_a_request_meets_them(world, db_app, pg_proxy):
    """PostgreSQL restarted between two requests: the pool's connections look open and are dead. The pool
    checks each as it is taken (its socket has the end of the stream), so the very first request after it is
    served."""
    member = db_app.test_client()
    login(member, world["a_client_member"])
    home = f"/t/{world.a.slug}/documents"
    assert member.get(home).status_code == 200
    before = pg_proxy.connections
    pg_proxy.drop_connections()
    assert member.get(home).status_code == 200
    assert pg_proxy.connections > before  # served on a new connection, not by luck on an old one


def test_connections_the_server_ended_while_idle_are_replaced_and_healthy_ones_are_kept(app, world, tmp_path):
    """The server itself ends every idle connection of the app (as a restart or an administrator does): each
    request after it is served on a fresh one. Connections nobody ended are taken again, not reopened."""
    fresh = _fresh_app(app, tmp_path)
    member = fresh.test_client()
    login(member, world["a_client_member"])
    home = f"/t/{world.a.slug}/documents"
    with fresh.app_context():
        engine = db.engine

    def pids() -> set[int]:
        with engine.connect() as conn:
            return {conn.connection.dbapi_connection.info.backend_pid}

    assert member.get(home).status_code == 200
    kept = pids()
    assert member.get(home).status_code == 200 and pids() == kept  # a healthy connection is reused
    with psycopg.connect(postgres_superuser_url(), autocommit=True) as conn:
        ended = conn.execute("select count(*) filter (where pg_terminate_backend(pid)) from pg_stat_activity "
                             "where pid = any(%s)", (list(kept),)).fetchone()[0]
    assert ended == 1
    time.sleep(0.2)  # the goodbye reaches the socket
    for _ in range(3):
        r = member.get(home)
        assert r.status_code == 200, r.data[:300]
    assert pids().isdisjoint(kept)


def test_a_statement_timeout_is_an_error_of_ours_not_an_outage(app, tmp_path):
    fresh = _fresh_app(app, tmp_path)

    @public
    def slow():  # noqa: ANN202
        db.session.execute(text("set local statement_timeout = 1"))
        db.session.execute(text("select pg_sleep(0.2)"))

    fresh.add_url_rule("/test-only/slow", "test_only_slow", slow)
    r = fresh.test_client().get("/test-only/slow")
    assert r.status_code == 500 and "Retry-After" not in r.headers
    assert re.search(r"quote reference [0-9a-f]{8}", r.get_data(as_text=True))


class _CutAfterPut:
    """The vault's storage, with the database cut the moment an object is written (before its row)."""

    def __init__(self, inner, proxy: TcpProxy) -> None:
        self.inner, self.proxy, self.keys = inner, proxy, []

    def put(self, key, chunks):  # noqa: ANN001, ANN201
        written = self.inner.put(key, chunks)
        self.keys.append(key)
        self.proxy.cut()
        return written

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self.inner, name)


def test_an_upload_whose_database_goes_away_is_not_stored_and_says_so(app, world, db_app, pg_proxy):
    from portal.documents.storage import storage_from_config

    member = db_app.test_client()
    login(member, world["a_client_member"])
    csrf_token(member, f"/t/{world.a.slug}/documents")  # warm the session before the storage is swapped
    storage = _CutAfterPut(storage_from_config(db_app.config), pg_proxy)
    db_app.extensions.setdefault("vault", {})["storage"] = storage
    token = csrf_token(member, f"/t/{world.a.slug}/documents")
    body = samples.pdf(16016)
    r = member.post(f"/t/{world.a.slug}/documents/upload", headers={"Accept": "application/json"},
                    content_type="multipart/form-data",
                    data={"csrf_token": token, "category": "invoice", "file": [(io.BytesIO(body), "cut.pdf")]})
    assert r.status_code == 503 and r.headers["Retry-After"] == "30", r.data[:300]
    [result] = r.json["results"]
    assert result["status"] == "refused" and result["code"] == "unavailable" and result["url"] is None
    assert result["message"].startswith("Not stored") and "again" in result["message"]
    pg_proxy.restore()
    assert _documents_named(app, world.a.id, "cut.pdf") == 0  # no row: the document is not half there
    # The object stays: the commit might have reached the server before the connection went, and a row
    # without its object would be the damage; an object without a row is never listed or served.
    [key] = storage.keys
    assert storage.inner.exists(key)
    with app.app_context(), bound(Scope(tenant_ids=frozenset({world.a.id}))):
        assert db.session.scalar(select(func.count()).select_from(StoredObject)
                                 .where(StoredObject.storage_key == key)) == 0


# --- Redis --------------------------------------------------------------------------------------------

def test_redis_down_pages_still_serve_jobs_wait_in_the_outbox_and_what_needs_redis_answers_503(
        app, world, tmp_path):
    from workers import queue, relay
    from workers.models import OutboxJob

    redis = RedisServer(tmp_path / "redis")
    fresh = _fresh_app(app, tmp_path, REDIS_URL=redis.url)

    @public
    def waiting():  # noqa: ANN202 - needs Redis: the length of a queue
        return {"waiting": queue("default").count}

    fresh.add_url_rule("/test-only/waiting", "test_only_waiting", waiting)
    try:
        member = fresh.test_client()
        login(member, world["a_client_member"])
        assert member.get("/test-only/waiting").status_code == 200

        redis.stop()
        _assert_unavailable(member.get("/test-only/waiting", headers={"Accept": "application/json"}), json=True)
        assert member.get(f"/t/{world.a.slug}/documents").status_code == 200  # the pages do not need Redis
        body = samples.pdf(16017)
        r = _upload(member, world.a.slug, body, "while redis is down.pdf")
        assert r.status_code == 200 and r.json["results"][0]["status"] == "stored", r.data[:300]
        with fresh.app_context():  # its jobs (intake) are in the outbox, not lost, not pushed
            pending = db.session.scalars(select(OutboxJob).where(OutboxJob.enqueued_at.is_(None),
                                                                 OutboxJob.finished_at.is_(None))).all()
            mine = [job for job in pending if job.scope_tenant == str(world.a.id)]
            assert mine, "the upload's jobs were not kept in the outbox"
            assert relay() == 0  # still down: nothing pushed, nothing lost
            db.session.remove()

        redis.start()  # the same port, empty (this one keeps nothing on disk)
        assert member.get("/test-only/waiting").status_code == 200  # the same process reconnects
        with fresh.app_context():
            assert relay() >= len(mine)
            ids = {f"outbox-{job.id}-0" for job in mine}
            assert ids <= {job_id for name in fresh.config["RQ_QUEUES"] for job_id in queue(name).get_job_ids()}
            db.session.remove()
    finally:
        redis.stop()


# --- the S3 endpoint ------------------------------------------------------------------------------------

@pytest.fixture
def s3(app, tmp_path):
    """A moto server of this test's own, an S3 bucket and a KMS key in it, reached through a proxy."""
    server = MotoServer()
    bucket = "faults-objects"
    server.client("s3").create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": server.region})
    kms_key = server.client("kms").create_key(Description="faults")["KeyMetadata"]["KeyId"]
    proxy = TcpProxy("127.0.0.1", server.port)
    fresh = _fresh_app(app, tmp_path, **(server.env() | {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{proxy.port}"}),
                       STORAGE_BACKEND="s3", S3_BUCKET=bucket, KMS_KEY_ID=kms_key,
                       KEY_DIR=str(tmp_path / "keys"))
    yield fresh, server, proxy, bucket
    proxy.close()
    server.stop()


def _bucket_keys(server: MotoServer, bucket: str) -> set[str]:
    listed = server.client("s3").list_objects_v2(Bucket=bucket)
    return {item["Key"] for item in listed.get("Contents", [])}


def test_s3_down_uploads_are_not_stored_and_every_accepted_one_reads_back(app, world, s3):
    fresh, server, proxy, bucket = s3
    member = fresh.test_client()
    login(member, world["a_client_member"])
    token = issue_token(fresh, world["a_client_member"], world.a, "write")  # its name sealed with this app's keys
    slug = world.a.slug
    before = samples.pdf(16018)
    r = _upload(member, slug, before, "before the outage.pdf")
    assert r.status_code == 200 and r.json["results"][0]["status"] == "stored", r.data[:300]
    first_url = r.json["results"][0]["url"]
    keys = _bucket_keys(server, bucket)
    assert len(keys) == 1

    proxy.cut()
    during = samples.pdf(16019)
    r = _upload(member, slug, during, "during the outage.pdf")
    assert r.status_code == 503 and r.headers["Retry-After"] == "30", r.data[:300]
    [result] = r.json["results"]
    assert (result["status"], result["code"], result["url"]) == ("refused", "unavailable", None)
    assert result["message"].startswith("Not stored") and "again" in result["message"]
    api = fresh.test_client().post(f"/api/v1/tenants/{slug}/documents", headers=bearer(token),
                                   content_type="multipart/form-data",
                                   data={"file": [(io.BytesIO(during), "during, by the API.pdf")]})
    _assert_unavailable(api, json=True)
    assert api.json["detail"].startswith("No file was stored: Not stored")
    _assert_unavailable(member.get(f"{first_url}/download"))  # reading needs the store too
    assert member.get(f"/t/{slug}/documents").status_code == 200  # the list does not
    assert _documents_named(app, world.a.id, "during the outage.pdf") == 0
    assert _documents_named(app, world.a.id, "during, by the API.pdf") == 0
    assert _bucket_keys(server, bucket) == keys  # nothing half-stored: no object, no row

    proxy.restore()  # the same app, no restart
    r = _upload(member, slug, during, "during the outage.pdf")
    assert r.status_code == 200 and r.json["results"][0]["status"] == "stored", r.data[:300]
    _reads_back(member, slug, first_url, before)
    _reads_back(member, slug, r.json["results"][0]["url"], during)
    with app.app_context(), bound(Scope(tenant_ids=frozenset({world.a.id}))):
        rows = set(db.session.scalars(select(StoredObject.storage_key).where(
            StoredObject.storage_key.in_(_bucket_keys(server, bucket)))))
    assert rows == _bucket_keys(server, bucket) and len(rows) == 2  # every object has its row, and no more

    server.stop()  # the endpoint's server itself stops: the same answer
    r = _upload(member, slug, samples.pdf(16020), "after the server stopped.pdf")
    assert r.status_code == 503 and r.json["results"][0]["code"] == "unavailable"
    assert _documents_named(app, world.a.id, "after the server stopped.pdf") == 0


def test_a_worker_queues_retries_again_soon_after_redis_restarted(app, db_urls, tmp_path):
    """rq's scheduler (it queues a failed job's retry when its back-off ends) runs in a process of its own that
    a Redis restart ends; rq would start it again only at its next maintenance, ten minutes on, and every
    retry waited as long. ``portal worker`` starts it again within seconds."""
    import signal
    import subprocess
    import sys
    from datetime import timedelta

    from redis import Redis
    from rq import Queue
    from rq.serializers import JSONSerializer

    redis = RedisServer(tmp_path / "redis", persist=True)
    env = portal_env(app, db_urls, REDIS_URL=redis.url, PORTAL_INSTANCE=str(tmp_path / "instance"),
                     SECRET_KEY=app.config["SECRET_KEY"])
    worker = subprocess.Popen([sys.executable, "-c", "from portal.cli import main; import sys; "
                               "sys.argv = ['portal', 'worker', '--no-scheduler', '--queues', 'faults']; main()"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    connection = Redis.from_url(redis.url)
    faults = Queue("faults", connection=connection, serializer=JSONSerializer)

    def moved(job) -> bool:  # noqa: ANN001 - out of the scheduled registry, into the queue (or run already)
        return _wait(lambda: job.get_status(refresh=True) != "scheduled", 20)

    try:
        assert _wait(lambda: connection.exists("rq:scheduler-lock:faults"), 30), "the worker's scheduler never started"
        assert moved(faults.enqueue_in(timedelta(seconds=1), "builtins.len", "x"))
        redis.stop()
        time.sleep(3)  # the scheduler process meets the closed port and ends
        redis.start()
        assert moved(faults.enqueue_in(timedelta(seconds=1), "builtins.len", "y"))
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
        redis.stop()


def _wait(condition, seconds: float) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.3)
    return bool(condition())


def test_a_hanging_s3_endpoint_gives_up_within_a_requests_time():
    """An endpoint that accepts and never answers must cost less than gunicorn's timeout (the worker would be
    killed and the user get no answer at all): every attempt's connect and read limits, added up."""
    from portal.documents.storage import storage_from_config

    store = storage_from_config({"STORAGE_BACKEND": "s3", "S3_BUCKET": "b", "S3_ENDPOINT_URL": "http://127.0.0.1:9",
                                 "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y", "AWS_REGION": "us-east-1"})
    config = store.client.meta.config
    attempts = config.retries["total_max_attempts"]
    gunicorn_timeout = 60  # infra/gunicorn.conf.py's GUNICORN_TIMEOUT default
    assert attempts * (config.connect_timeout + config.read_timeout) < gunicorn_timeout
