"""/metrics: who may read it, and what it counts.

Requests by endpoint name (never by path), sign-in failures, jobs by queue and name, and, read at the
scrape over every tenant, queue depths, the outbox backlog, intake states and statements. Each count is
checked as a difference across actions made here, worked out by hand from those actions.
"""

from __future__ import annotations

import signal
import uuid
from datetime import date
from types import SimpleNamespace

import pytest
from prometheus_client.parser import text_string_to_metric_families
from rq import Queue
from rq.serializers import JSONSerializer
from sqlalchemy.orm import Session

from portal.billing.models import Statement
from portal.extensions import db
from portal.intake.models import IntakeRecord
from tenants.context import Scope, bound, for_tenant
from tenants.models import Tenant, User
from tenants.policy import Role
from tests.documents import samples
from tests.factories import csrf_token, make_person, make_tenant
from tests.services import free_port
from workers import redis_connection
from workers.models import OutboxJob

TOKEN = "metrics-token-0b8f2d4c6e1a3f5b7d9e"  # noqa: S105 - the test's own


@pytest.fixture
def scraper(app, monkeypatch) -> dict[str, str]:
    """METRICS_TOKEN set for the test; the header a scraper sends."""
    monkeypatch.setitem(app.config, "METRICS_TOKEN", TOKEN)
    return {"Authorization": f"Bearer {TOKEN}"}


def _samples(client, headers) -> dict[tuple[str, frozenset], float]:
    r = client.get("/metrics", headers=headers)
    assert r.status_code == 200, r.data[:300]
    # Prometheus' text format, once (no second charset tacked on).
    assert r.headers["Content-Type"] == "text/plain; version=1.0.0; charset=utf-8"
    out = {}
    for family in text_string_to_metric_families(r.get_data(as_text=True)):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def _value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


# --- who may read it --------------------------------------------------------------------------------------------

def test_without_a_token_set_metrics_are_not_there(client):
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", headers={"Authorization": "Bearer anything"}).status_code == 404


@pytest.mark.parametrize("authorization", [None, "", "Bearer", "Bearer ", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}",
                                           f"Basic {TOKEN}", TOKEN, "Bearer wrong-token-of-another-length"])
def test_a_scraper_without_the_token_is_refused(client, scraper, authorization):
    headers = {"Authorization": authorization} if authorization is not None else {}
    r = client.get("/metrics", headers=headers)
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert b"portal_" not in r.data


def test_the_token_opens_them(client, scraper):
    assert client.get("/metrics", headers={"Authorization": f"bearer {TOKEN}"}).status_code == 200
    assert "no-store" in client.get("/metrics", headers=scraper).headers["Cache-Control"]


def test_metrics_open_to_anyone_only_when_opened_outside_production(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "METRICS_OPEN", True)
    assert client.get("/metrics").status_code == 200
    monkeypatch.setitem(app.config, "PRODUCTION", True)
    assert client.get("/metrics").status_code == 404


def test_production_refuses_to_start_with_metrics_open():
    from portal.config import ConfigError, load

    env = {"PORTAL_ENV": "production", "SECRET_KEY": "s" * 40, "DATABASE_URL": "postgresql+psycopg://a@b/c",
           "MIGRATION_DATABASE_URL": "postgresql+psycopg://a@b/c", "REDIS_URL": "redis://r", "FIELD_KEY": "k" * 44,
           "BASE_URL": "https://portal.example"}
    assert load(env=env)["METRICS_TOKEN"] is None
    with pytest.raises(ConfigError, match="METRICS_OPEN"):
        load(env=env | {"METRICS_OPEN": "1"})


# --- counted as things happen -------------------------------------------------------------------------------------

def test_requests_are_counted_by_endpoint_name_never_by_path(app, client, scraper):
    with app.app_context():
        tenant = make_tenant()
        slug = tenant.slug
    document_id = uuid.uuid4()
    before = _samples(client, scraper)
    for _ in range(3):
        assert client.get("/healthz").status_code == 200
    assert client.get(f"/t/{slug}/documents/{document_id}").status_code == 302  # to sign-in
    assert client.get(f"/no-such-page/{document_id}").status_code == 404
    after = _samples(client, scraper)
    ok = {"endpoint": "main.healthz", "method": "GET", "status": "200"}
    assert _value(after, "portal_http_request_duration_seconds_count", **ok) - \
        _value(before, "portal_http_request_duration_seconds_count", **ok) == 3
    detail = {"endpoint": "documents.detail", "method": "GET", "status": "302"}
    assert _value(after, "portal_http_request_duration_seconds_count", **detail) - \
        _value(before, "portal_http_request_duration_seconds_count", **detail) == 1
    unknown = {"endpoint": "none", "method": "GET", "status": "404"}
    assert _value(after, "portal_http_request_duration_seconds_count", **unknown) - \
        _value(before, "portal_http_request_duration_seconds_count", **unknown) == 1
    text = client.get("/metrics", headers=scraper).get_data(as_text=True)
    assert str(document_id) not in text and slug not in text and "/t/" not in text


def test_sign_in_failures_are_counted_by_step(app, client, scraper):
    with app.app_context():
        tenant = make_tenant()
        member = make_person(Role.CLIENT_MEMBER, tenant)
        admin = make_person(Role.CLIENT_ADMIN, tenant)  # second factor enrolled
    before = _samples(client, scraper)
    browser = app.test_client()
    token = csrf_token(browser)
    for email in (member.email, "nobody-at-all@example.test"):
        r = browser.post("/auth/login", data={"email": email, "password": "not the password", "csrf_token": token})
        assert r.status_code == 200
    r = browser.post("/auth/login", data={"email": admin.email, "password": admin.password, "csrf_token": token})
    assert r.headers["Location"].startswith("/auth/mfa")
    r = browser.post("/auth/mfa", data={"code": "000000", "csrf_token": csrf_token(browser, "/auth/mfa")})
    assert r.status_code == 200
    after = _samples(client, scraper)
    assert _value(after, "portal_signin_failures_total", step="password") - \
        _value(before, "portal_signin_failures_total", step="password") == 2
    assert _value(after, "portal_signin_failures_total", step="second_factor") - \
        _value(before, "portal_signin_failures_total", step="second_factor") == 1


def _work(app, queue_name: str) -> None:
    from workers.runner import PortalWorker

    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        PortalWorker([queue_name], connection=redis_connection(), serializer=JSONSerializer).work(burst=True)
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


def test_jobs_are_timed_and_their_failures_counted_by_queue_and_name(app, client, scraper):
    name = f"test-metrics-{uuid.uuid4().hex[:8]}"
    before = _samples(client, scraper)
    with app.app_context():
        q = Queue(name, connection=redis_connection(), serializer=JSONSerializer)
        q.enqueue("tests.workers.jobs_for_tests.succeed", meta={"name": "work.digest"})
        q.enqueue("tests.workers.jobs_for_tests.succeed", meta={"name": "work.digest"})
        q.enqueue("tests.workers.jobs_for_tests.fail", meta={"name": "mail.deliver"})
        q.enqueue("tests.workers.jobs_for_tests.succeed", meta={"name": f"not-a-job-{uuid.uuid4()}"})
        _work(app, name)
    after = _samples(client, scraper)

    def delta(metric: str, **labels: str) -> float:
        return _value(after, metric, queue=name, **labels) - _value(before, metric, queue=name, **labels)

    assert delta("portal_job_duration_seconds_count", job="work.digest", outcome="finished") == 2
    assert delta("portal_job_duration_seconds_count", job="mail.deliver", outcome="failed") == 1
    assert delta("portal_job_failures_total", job="mail.deliver") == 1
    assert delta("portal_job_failures_total", job="work.digest") == 0
    assert delta("portal_job_duration_seconds_count", job="other", outcome="finished") == 1  # never a made-up name
    assert not any("not-a-job" in str(labels) for _, labels in after)


def test_a_worker_answers_its_own_metrics_on_its_port(app, scraper):
    """`portal worker` has no web server: WORKER_METRICS_PORT serves its jobs' metrics, same token."""
    import urllib.error
    import urllib.request

    from portal import metrics

    port = free_port()
    metrics.serve(app, port, host="127.0.0.1")

    def get(path: str, headers: dict[str, str]) -> tuple[int, str]:
        request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - loopback
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()

    status, body = get("/metrics", scraper)
    assert status == 200 and "portal_job_duration_seconds" in body
    assert get("/metrics", {})[0] == 401
    assert get("/metrics", {"Authorization": "Bearer nope"})[0] == 401
    assert get("/other", scraper)[0] == 404


# --- read at the scrape -----------------------------------------------------------------------------------------

def _document(tenant_id: uuid.UUID, user_id: uuid.UUID) -> uuid.UUID:
    from portal.documents import services as documents

    with bound(Scope(user_id=user_id, tenant_ids=frozenset({tenant_id}), role=Role.CLIENT_ADMIN)):
        user, tenant = db.session.get(User, user_id), db.session.get(Tenant, tenant_id)
        result = documents.upload(user, tenant, [samples.pdf(uuid.uuid4().int % 65536)], filename="note.pdf",
                                  target=documents.upload_target(user, category="other"))
        assert result.ok, result.message
        return result.document.id


def _statement(tenant_id: uuid.UUID, payment_state: str) -> None:
    with for_tenant(tenant_id):
        db.session.add(Statement(month=date(2026, 1, 1), reference=f"T{uuid.uuid4().hex[:12].upper()}",
                                 currency="VND", locale="vi", plan_name="Trọn gói", subtotal=100, tax_rate_bp=1000,
                                 tax=10, total=110, due_on=date(2026, 2, 15), payment_state=payment_state,
                                 paid=110 if payment_state == "paid" else 0))
        db.session.commit()


@pytest.fixture
def two_tenants(app):  # noqa: ANN201
    with app.app_context():
        people = []
        for _ in range(2):
            tenant = make_tenant()
            people.append(SimpleNamespace(tenant=tenant.id, admin=make_person(Role.CLIENT_ADMIN, tenant).id))
        return people


def test_intake_states_and_statements_are_counted_over_every_tenant(app, client, scraper, two_tenants):
    a, b = two_tenants
    before = _samples(client, scraper)
    with app.app_context():
        for who, state in ((a, "failed"), (b, "failed"), (b, "running")):
            document_id = _document(who.tenant, who.admin)
            with for_tenant(who.tenant):
                db.session.add(IntakeRecord(document_id=document_id, version=1, state=state))
                db.session.commit()
        _statement(a.tenant, "paid")
        _statement(b.tenant, "unpaid")
    after = _samples(client, scraper)

    def delta(metric: str, **labels: str) -> float:
        return _value(after, metric, **labels) - _value(before, metric, **labels)

    assert delta("portal_intake_records", state="failed") == 2  # one in each tenant
    assert delta("portal_intake_records", state="running") == 1
    assert delta("portal_statements", payment_state="paid") == 1
    assert delta("portal_statements", payment_state="unpaid") == 1
    for state in ("waiting", "running", "done", "failed"):
        assert ("portal_intake_records", frozenset({("state", state)})) in after  # every state, zero or not
    assert _value(after, "portal_scrape_ok", part="database") == 1 and _value(after, "portal_scrape_ok",
                                                                               part="redis") == 1


def test_queue_depth_and_the_outbox_backlog_are_read_at_the_scrape(app, client, scraper):
    with app.app_context():
        before = _samples(client, scraper)
        mail = Queue("mail", connection=redis_connection(), serializer=JSONSerializer)
        jobs = [mail.enqueue("tests.workers.jobs_for_tests.succeed") for _ in range(3)]
        with Session(db.engine) as session, session.begin():  # as a commit while Redis was down leaves it
            rows = [OutboxJob(queue="default", name="work.digest", args=[]) for _ in range(2)]
            session.add_all(rows)
            session.flush()
            ids = [row.id for row in rows]
        try:
            after = _samples(client, scraper)
        finally:
            for job in jobs:
                mail.remove(job.id)
            with Session(db.engine) as session, session.begin():
                for row_id in ids:
                    session.get(OutboxJob, row_id).finished_at = db.func.now()
    assert _value(after, "portal_queue_depth", queue="mail") - _value(before, "portal_queue_depth", queue="mail") == 3
    assert _value(after, "portal_outbox_pending") - _value(before, "portal_outbox_pending") == 2


def test_a_scrape_still_answers_when_the_database_is_down(app, tmp_path):
    from portal import create_app

    dead = f"postgresql+psycopg://portal_app@127.0.0.1:{free_port()}/nothing"
    config = {k: app.config[k] for k in ("MIGRATION_DATABASE_URL", "REDIS_URL", "SECRET_KEY", "FIELD_KEY")}
    down = create_app(config | {"DATABASE_URL": dead, "INSTANCE_PATH": str(tmp_path), "METRICS_OPEN": True,
                                "TESTING": True})
    samples = _samples(down.test_client(), {})
    assert _value(samples, "portal_scrape_ok", part="database") == 0
    assert _value(samples, "portal_scrape_ok", part="redis") == 1
    assert ("portal_intake_records", frozenset({("state", "done")})) not in samples
