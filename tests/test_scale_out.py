"""Scale out: two web instances and three workers on one PostgreSQL and one Redis (docs/scaling.md).

Two gunicorn servers (``infra/gunicorn.conf.py``, 2 workers each, each on a port of its own) and three
``portal worker`` processes (``tests/processes.py``), all on the session's database and Redis, with the
objects in a moto S3 bucket and the e-mail going to the session's SMTP server. What the processes share is
what hosts would share: PostgreSQL, Redis, the object store, the key directory and the secrets. A client
signs in on one instance and, with the same cookie, uploads invoices through both in turn; a manager opens
tasks for a staff member through both (each task is an e-mail to the staff member). Then, the queues drained:

- both instances answered (each one's own access log counts its uploads), and the jobs were run by at least
  two of the three workers (rq's record of the worker of each job, matched to the workers' pids);
- nothing was done twice: each upload has one intake record, finished, and one link to a task (what the load
  test counts, ``tests/load/run.py`` ``count_jobs``), one ``document.uploaded`` in the tenant's audit chain,
  which verifies; each task's e-mail reached the SMTP server exactly once;
- each upload reads back to its SHA-256 through the other instance.

No worker runs the scheduler: the session's database holds every other test's tenants, whose periodic jobs
are not this test's business (a deployment runs one ``portal scheduler``).
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import re
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

import pytest
import requests
from redis import Redis
from rq import Worker
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from portal.extensions import db
from tenants.audit import AuditEvent, verify_rows
from tenants.context import Scope, bound
from tenants.lifecycle import assign
from tenants.models import User
from tenants.policy import Role
from tests import log_capture
from tests.factories import CSRF, make_person, make_tenant
from tests.jobs import drop_earlier_jobs
from tests.load.run import count_jobs
from tests.load.seed import invoice
from tests.processes import start_gunicorn, start_portal_worker, stop_processes
from workers.models import OutboxJob

UPLOADS = 30  # invoices, alternately through each instance
TASKS = 4  # opened by the manager, alternately through each instance: one e-mail each
DRAIN_SECONDS = 90  # at most, for the queues to empty once everything was sent
# Set per process by the test itself, or development settings that must not reach the servers.
DROPPED = {"PORTAL_ENV", "PROMETHEUS_MULTIPROC_DIR", "GUNICORN_REUSE_PORT", "GUNICORN_THREADS", "WEB_CONCURRENCY",
           "STORAGE_DIR", "MAIL_OUTBOX_DIR", "STRIPE_API_KEY", "KMS_KEY_ID", "WORKER_METRICS_PORT"}


def _env(app, db_urls, smtp, moto, bucket: str, instance: Path) -> dict[str, str]:  # noqa: ANN001 - fixtures
    """What every process gets: the session's database, Redis and SMTP server, its secrets and key
    directory (the tenant's keys were made by this process), and the S3 bucket."""
    env = {k: v for k, v in os.environ.items() if k not in DROPPED}
    return env | moto.env() | {
        "DATABASE_URL": db_urls.app, "MIGRATION_DATABASE_URL": db_urls.owner, "REDIS_URL": app.config["REDIS_URL"],
        "SMTP_URL": smtp.url, "SECRET_KEY": app.config["SECRET_KEY"], "FIELD_KEY": app.config["FIELD_KEY"],
        "KEY_DIR": app.config["KEY_DIR"], "PORTAL_INSTANCE": str(instance), "BASE_URL": app.config["BASE_URL"],
        "STORAGE_BACKEND": "s3", "S3_BUCKET": bucket, "GUNICORN_THREADS": "2", "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
    }


def _csrf(session: requests.Session, url: str) -> str:
    page = session.get(url, timeout=30)
    match = CSRF.search(page.content)
    assert page.status_code == 200 and match, f"no CSRF token on {url}: {page.status_code}"
    return match.group(1).decode()


def _sign_in(session: requests.Session, base: str, person) -> None:  # noqa: ANN001 - tests.factories.Person
    """The sign-in pages, and the second factor when the person has one; the cookie then opens every instance."""
    answer = session.post(base + "/auth/login", allow_redirects=False, timeout=30, data={
        "email": person.email, "password": person.password, "csrf_token": _csrf(session, base + "/auth/login")})
    assert answer.status_code == 302, answer.text[:500]
    if urlparse(answer.headers["Location"]).path.startswith("/auth/mfa"):
        answer = session.post(base + "/auth/mfa", allow_redirects=False, timeout=30, data={
            "code": person.next_code(), "csrf_token": _csrf(session, base + "/auth/mfa")})
        assert answer.status_code == 302 and not urlparse(answer.headers["Location"]).path.startswith("/auth"), \
            answer.text[:500]


def _access_lines(log: Path) -> list[dict]:
    """gunicorn's access log lines (JSON) in ``log``."""
    lines = []
    for raw in log.read_text(errors="replace").splitlines():
        if raw.startswith("{") and '"gunicorn.access"' in raw:
            lines.append(json.loads(raw))
    return lines


@pytest.fixture
def bucket(moto) -> str:  # noqa: ANN001 - the session's moto server
    name = f"scale-{uuid.uuid4().hex[:12]}"
    moto.client("s3").create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": moto.region})
    return name


def test_two_web_instances_and_three_workers_share_the_work_and_do_nothing_twice(
        app, db_urls, smtp, moto, bucket, tmp_path):
    started = time.monotonic()
    with app.app_context():
        tenant = make_tenant()
        slug, tenant_id = tenant.slug, tenant.id
        member = make_person(Role.CLIENT_MEMBER, tenant)  # no second factor: a client member
        manager, staff, admin = (make_person(r) for r in (Role.MANAGER, Role.STAFF, Role.PROVIDER_ADMIN))
        for person in (manager, staff):
            assign(db.session.get(User, admin.id), tenant, db.session.get(User, person.id))
        # Only this test's jobs: what earlier tests queued and never ran is marked as not run, or these
        # workers' relays would run it (an alert that mails every provider admin of the session, say).
        before = db.session.scalar(select(func.max(OutboxJob.id))) or 0
        drop_earlier_jobs(app, before)
        db.session.remove()

    env = _env(app, db_urls, smtp, moto, bucket, tmp_path / "instance")
    logs = {name: tmp_path / f"{name}.log" for name in ("web-a", "web-b", "worker-0", "worker-1", "worker-2")}
    procs = []
    try:
        workers = [start_portal_worker(env, logs[f"worker-{i}"]) for i in range(3)]
        procs += workers
        (web_a, base_a), (web_b, base_b) = (start_gunicorn(env, logs[name], workers=2, access_log=True)
                                            for name in ("web-a", "web-b"))
        procs += [web_a, web_b]
        bases = [base_a, base_b]
        up = time.monotonic()

        client = requests.Session()
        _sign_in(client, base_a, member)  # on A; the same cookie is used on B
        csrf = _csrf(client, f"{base_b}/t/{slug}/documents")
        sent: list[tuple[int, str, str]] = []  # (instance, document URL, SHA-256)
        for i in range(UPLOADS):
            body = invoice(f"SCALE-{uuid.uuid4().hex[:12]}")
            answer = client.post(f"{bases[i % 2]}/t/{slug}/documents/upload", timeout=60,
                                 headers={"Accept": "application/json"},
                                 data={"csrf_token": csrf, "category": "invoice"},
                                 files={"file": (f"invoice {i:02d}.pdf", body, "application/pdf")})
            assert answer.status_code == 200, answer.text[:500]
            [result] = answer.json()["results"]
            assert result["status"] == "stored", result
            sent.append((i % 2, result["url"], hashlib.sha256(body).hexdigest()))

        boss = requests.Session()
        _sign_in(boss, base_b, manager)
        task_csrf = _csrf(boss, f"{base_a}/t/{slug}/tasks")
        task_ids = []
        for i in range(TASKS):
            answer = boss.post(f"{bases[i % 2]}/t/{slug}/tasks", allow_redirects=False, timeout=30, data={
                "csrf_token": task_csrf, "title": f"Scale-out check {i}", "line": "bookkeeping", "priority": "3",
                "assignee": str(staff.id), "reviewer": ""})
            assert answer.status_code == 302, answer.text[:500]
            task_ids.append(urlparse(answer.headers["Location"]).path.rsplit("/", 1)[1])
        sent_at = time.monotonic()

        # The queues drain: every job of this test finished, every upload read by intake and linked.
        url = make_url(db_urls.app).set(drivername="postgresql").render_as_string(hide_password=False)
        deadline = time.monotonic() + DRAIN_SECONDS
        while True:
            counts = count_jobs(url, app.config["REDIS_URL"], tenant_id=tenant_id, since_job=before)
            outbox, intake = counts["outbox"], counts["intake"]
            mails = smtp.to(staff.email)
            if (outbox["pending"] == 0 and intake["documents"] == UPLOADS and intake["no_record"] == 0
                    and intake["unfinished"] == 0 and intake["not_linked_to_a_task"] == 0
                    and len(mails) >= TASKS) or time.monotonic() > deadline:
                break
            time.sleep(1)
        drained = time.monotonic()

        # Who ran each job: rq keeps the worker's name on the job; the live workers' registry gives its pid.
        redis = Redis.from_url(app.config["REDIS_URL"])
        pids = {w.name: w.pid for w in Worker.all(connection=redis)}
        with app.app_context():
            jobs = db.session.execute(select(OutboxJob.id, OutboxJob.attempts, OutboxJob.name)
                                      .where(OutboxJob.id > before)).all()
            db.session.remove()
        ran_by: collections.Counter[int | None] = collections.Counter()
        for job_id, attempts, _name in jobs:
            name = redis.hget(f"rq:job:outbox-{job_id}-{max(0, attempts - 1)}", "worker_name")
            ran_by[pids.get(name.decode()) if name else None] += 1

        # Every upload reads back whole through the instance that did not store it.
        for instance, document_url, digest in sent:
            answer = client.get(f"{bases[1 - instance]}{document_url}/download", timeout=60)
            assert answer.status_code == 200, (document_url, answer.status_code)
            assert hashlib.sha256(answer.content).hexdigest() == digest, f"{document_url} does not read back"
    finally:
        stop_processes(procs)
        for name, path in logs.items():
            if path.exists():
                log_capture.add_output(name, path.read_text(errors="replace"))

    # Nothing left over, nothing given up; each upload's intake ran once to one task.
    assert outbox["created"] > UPLOADS and outbox["pending"] == 0 and outbox["gave_up"] == 0, counts
    assert intake == intake | {"documents": UPLOADS, "no_record": 0, "several_records": 0, "unfinished": 0,
                               "not_linked_to_a_task": 0, "linked_twice": 0}, counts

    # Both instances served: each one's own access log has the uploads sent to it, all answered 200.
    for name in ("web-a", "web-b"):
        uploads = [a for a in _access_lines(logs[name]) if a["path"] == f"/t/{slug}/documents/upload"]
        assert len(uploads) == UPLOADS // 2 and {a["status"] for a in uploads} == {200}, (name, uploads[:3])

    # The work spread: every job ran on one of the three workers, and at least two of them took some.
    worker_pids = {w.pid for w in workers}
    assert set(ran_by) <= worker_pids, f"jobs run by unknown workers: {ran_by} (ours: {worker_pids})"
    assert len(ran_by) >= 2, f"every job ran on one worker: {ran_by}"

    # Each task's e-mail arrived once, with its own link.
    links = collections.Counter(found for m in mails for found in re.findall(
        rf"/t/{re.escape(slug)}/tasks/([0-9a-f-]{{36}})", m.get_content()))
    assert links == {task_id: 1 for task_id in task_ids}, links

    # The tenant's audit chain is whole, and each upload is in it once.
    with app.app_context(), bound(Scope(tenant_ids=frozenset({tenant_id}))):
        rows = db.session.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
        assert verify_rows(slug, rows) == []
        stored = collections.Counter(r.object_id for r in rows if r.action == "document.uploaded")
        assert len(stored) == UPLOADS and set(stored.values()) == {1}, stored
        db.session.rollback()

    print(f"\nscale-out: processes up in {up - started:.0f} s, {UPLOADS} uploads and {TASKS} tasks sent in "  # noqa: T201
          f"{sent_at - up:.0f} s, drained in {drained - sent_at:.0f} s; {len(jobs)} jobs by worker pid: "
          f"{dict(ran_by)}; {outbox['pushed_more_than_once']} pushed more than once")
