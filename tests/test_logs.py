"""The process's log: one JSON object per line on stderr, placed by request, tenant, user and job ids.

Unhandled errors: the reference shown to the user is in the log, with the traceback. Request ids: a sane
X-Request-ID from a proxy is kept, anything else replaced, and the id is answered in the response header.
Database errors: the values a failing row or statement carried never reach the log.
"""

from __future__ import annotations

import json
import re
import uuid

import pytest
from flask import Flask
from sqlalchemy import text

from portal.access import public, requires
from portal.extensions import db
from tenants.policy import Role
from tests.factories import login, make_person, make_tenant
from tests.log_capture import CANARY_PASSWORD, CANARY_TEXT, CANARY_TOKEN

# Canaries (tests/log_capture.py): if one reached the log, the session's canary check fails too.
SECRET = CANARY_TOKEN  # an invite link's token
DETAIL_SECRET = f"{CANARY_TEXT}-row"  # a value in a failing row
PARAMETER_SECRET = CANARY_PASSWORD  # a statement's parameter


@pytest.fixture
def failing_app(app: Flask, tmp_path) -> Flask:
    """A second app on the test database, not TESTING (errors are answered as in production), with test-only
    routes whose statements fail and leave the transaction aborted. One path looks like an invite link, whose
    token must not reach the log; one is a tenant's page; two fail with values in their error."""
    from portal import create_app

    config = {k: app.config[k] for k in ("DATABASE_URL", "MIGRATION_DATABASE_URL", "REDIS_URL", "SMTP_URL",
                                         "SECRET_KEY", "FIELD_KEY", "KEY_DIR", "BASE_URL")}
    fresh = create_app(config | {"INSTANCE_PATH": str(tmp_path), "LOGIN_LIMIT_IP": "1000 per minute",
                                 "LOGIN_LIMIT_ACCOUNT": "1000 per minute"})

    @public
    def fail(token: str):  # noqa: ANN202
        db.session.execute(text("select 1 / 0"))

    @requires("tenant:home.view")
    def tenant_fail(tenant_slug: str):  # noqa: ANN202
        db.session.execute(text("select 1 / 0"))

    @public
    def duplicate():  # noqa: ANN202
        # PostgreSQL's DETAIL quotes the row: "Key (a)=(<the value>) already exists."
        db.session.execute(text("create temporary table t (a text primary key)"))
        db.session.execute(text("insert into t values (:a), (:a)"), {"a": DETAIL_SECRET})

    @public
    def parameters():  # noqa: ANN202
        db.session.execute(text("select 1 / :zero, :label"), {"zero": 0, "label": PARAMETER_SECRET})

    fresh.add_url_rule("/auth/invite/<token>/fail", "test_only_fail", fail)
    fresh.add_url_rule("/t/<tenant_slug>/test-only-fail", "test_only_tenant_fail", tenant_fail)
    fresh.add_url_rule("/test-only-duplicate", "test_only_duplicate", duplicate)
    fresh.add_url_rule("/test-only-parameters", "test_only_parameters", parameters)
    return fresh


def _reference(response) -> str:
    assert response.status_code == 500
    match = re.search(r"quote reference ([0-9a-f]{8})", response.get_data(as_text=True))
    assert match, response.get_data(as_text=True)[:1000]
    return match.group(1)


def _records(err: str) -> list[dict]:
    """Every line of stderr is one JSON object (nothing else, no continuation lines)."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines, "nothing was logged"
    records = []
    for line in lines:
        assert line.startswith("{") and line.endswith("}"), line[:300]
        records.append(json.loads(line))
    return records


def _the_error(err: str, ref: str) -> dict:
    [record] = [r for r in _records(err) if f"unhandled error {ref}" in r["message"]]
    assert record["level"] == "ERROR" and record["logger"] == "portal.errors", record
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["time"]), record["time"]
    assert record["exception"].startswith("Traceback (most recent call last):"), record["exception"][:200]
    return record


def test_an_unhandled_error_logs_its_reference_with_the_traceback_on_stderr(failing_app, capfd):
    capfd.readouterr()
    response = failing_app.test_client().get(f"/auth/invite/{SECRET}/fail")
    ref = _reference(response)
    err = capfd.readouterr().err
    record = _the_error(err, ref)
    assert "/auth/invite/[redacted]/fail" in record["message"]
    assert "DivisionByZero" in record["exception"] and "select 1 / 0" in record["exception"]
    assert record["request_id"] == response.headers["X-Request-ID"]
    assert "tenant_id" not in record and "user_id" not in record  # nobody signed in, no tenant
    assert SECRET not in err


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
    err = capfd.readouterr().err
    record = _the_error(err, ref)
    assert record["user_id"] == str(person.id)
    assert SECRET not in err


def test_a_line_written_in_a_tenants_request_names_the_tenant_and_the_user(failing_app, capfd):
    with failing_app.app_context():
        tenant = make_tenant()
        person = make_person(Role.CLIENT_MEMBER, tenant)
        tenant_id, slug = tenant.id, tenant.slug
    client = failing_app.test_client()
    login(client, person)
    capfd.readouterr()
    response = client.get(f"/t/{slug}/test-only-fail", headers={"X-Request-ID": "req-7d1c0e-proxy"})
    record = _the_error(capfd.readouterr().err, _reference(response))
    assert record["tenant_id"] == str(tenant_id) and record["user_id"] == str(person.id)
    assert record["request_id"] == "req-7d1c0e-proxy" == response.headers["X-Request-ID"]


def test_the_values_a_failing_row_or_statement_carried_never_reach_the_log(failing_app, capfd):
    client = failing_app.test_client()
    capfd.readouterr()
    ref = _reference(client.get("/test-only-duplicate"))
    err = capfd.readouterr().err
    record = _the_error(err, ref)
    assert "UniqueViolation" in record["exception"] and "DETAIL: [redacted]" in record["exception"]
    assert DETAIL_SECRET not in err

    ref = _reference(client.get("/test-only-parameters"))
    err = capfd.readouterr().err
    record = _the_error(err, ref)
    assert "DivisionByZero" in record["exception"] and "parameters" in record["exception"]
    assert PARAMETER_SECRET not in err


@pytest.mark.parametrize("sent", ["b0f3c1d2-4e5f-4a6b-8c7d-9e0f1a2b3c4d", "Root=1-67891233-abcdef012345678912345678",
                                  "0123456789abcdef0123456789abcdef"])
def test_a_proxys_request_id_is_kept_and_answered(client, sent):
    assert client.get("/healthz", headers={"X-Request-ID": sent}).headers["X-Request-ID"] == sent


@pytest.mark.parametrize("sent", ["", "two words", "x" * 129, 'quote"d', "tab\there", "-leading-dash", "ünïcode"])
def test_a_request_id_that_does_not_look_like_one_is_replaced_by_ours(client, sent):
    answered = client.get("/healthz", headers={"X-Request-ID": sent}).headers["X-Request-ID"]
    assert answered != sent and re.fullmatch(r"[0-9a-f]{32}", answered), answered


def test_each_request_gets_an_id_of_its_own(client):
    ids = {client.get("/healthz").headers["X-Request-ID"] for _ in range(5)}
    assert len(ids) == 5 and all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)


def test_a_job_s_lines_name_the_job_its_queue_and_tenant(app, capfd):
    """A line written inside a job run by the portal's worker carries the job's id and queue, and the tenant
    the job bound."""
    import signal

    from rq import Queue
    from rq.serializers import JSONSerializer

    from workers import redis_connection
    from workers.runner import PortalWorker

    name = f"test-logs-{uuid.uuid4().hex[:8]}"
    tenant_id = uuid.uuid4()
    with app.app_context():
        job = Queue(name, connection=redis_connection(), serializer=JSONSerializer).enqueue(
            "tests.workers.jobs_for_tests.log_a_line", str(tenant_id))
        handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        capfd.readouterr()
        try:
            PortalWorker([name], connection=redis_connection(), serializer=JSONSerializer).work(burst=True)
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
    ours = [json.loads(line) for line in capfd.readouterr().err.splitlines() if line.startswith("{")]
    [record] = [r for r in ours if r["message"] == "a line from inside a job"]
    assert record["job_id"] == job.id and record["queue"] == name and record["tenant_id"] == str(tenant_id)
    assert record["logger"] == "workers.test"
