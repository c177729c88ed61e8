"""Jobs: enqueued after commit through the outbox, JSON only, tenant bound, never lost."""

from __future__ import annotations

import json
import zlib
from datetime import timedelta

from sqlalchemy import select, update

from portal.extensions import db
from portal.mail import send
from tenants.context import current_scope
from tenants.models import utcnow
from tests.processes import portal_env
from tests.services import free_port
from workers import enqueue, make_redis, queue, reap, relay
from workers.jobs import REGISTRY
from workers.models import OutboxJob


def _pending(name: str) -> list[OutboxJob]:
    return db.session.scalars(select(OutboxJob).where(OutboxJob.name == name, OutboxJob.finished_at.is_(None))).all()


def test_rolled_back_transaction_enqueues_nothing(ctx, smtp, run_jobs):
    send("rollback@example.test", "never", "never sent")
    db.session.rollback()
    run_jobs()
    assert smtp.to("rollback@example.test") == []


def test_mail_goes_out_after_commit_through_a_real_worker(ctx, smtp, run_jobs):
    send("commit@example.test", "Hello", "Sent after commit")
    db.session.commit()
    run_jobs()
    [mail] = smtp.to("commit@example.test")
    assert mail["Subject"] == "Hello" and "Sent after commit" in mail.get_content()
    run_jobs()  # running again sends nothing twice (idempotent)
    assert len(smtp.to("commit@example.test")) == 1


def test_redis_outage_loses_nothing(app, ctx, smtp, run_jobs):
    real = app.extensions["portal_redis"]
    app.extensions["portal_redis"] = make_redis(f"redis://127.0.0.1:{free_port()}/0")
    try:
        send("outage@example.test", "During outage", "kept in the outbox")
        db.session.commit()  # the immediate relay fails quietly
        [row] = [r for r in _pending("mail.deliver") if r.enqueued_at is None]
        assert row.attempts == 0
    finally:
        app.extensions["portal_redis"] = real
    run_jobs()  # the relay (as the worker's loop does) pushes it once Redis is back
    assert len(smtp.to("outage@example.test")) == 1


def test_jobs_are_json_and_carry_only_ids(app, ctx):
    calls = []
    REGISTRY["test.noop"] = lambda *ids: calls.append(ids)
    enqueue("test.noop", 42)
    db.session.commit()
    q = queue("default")
    job = q.fetch_job(q.job_ids[-1])
    raw = app.extensions["portal_redis"].hget(job.key, "data")
    payload = json.loads(zlib.decompress(raw))  # JSON, not pickle
    assert payload[0] == "workers.jobs.run" and isinstance(payload[2][0], int)


def test_job_runs_with_its_tenant_bound(ctx, world, run_jobs):
    from tenants.models import Membership

    seen = {}

    def probe(marker: str) -> None:
        seen["tenant"] = current_scope().tenant_id
        seen["members"] = {m.tenant_id for m in db.session.scalars(select(Membership))}
        seen["marker"] = marker

    REGISTRY["test.probe"] = probe
    enqueue("test.probe", "m1", tenant_id=world.a.id)
    db.session.commit()
    run_jobs()
    assert seen == {"tenant": world.a.id, "members": {world.a.id}, "marker": "m1"}


def test_failed_job_is_recorded_and_retried(app, ctx, run_jobs):
    attempts = []

    def flaky() -> None:  # the disk is full the first time only
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("disk full")

    REGISTRY["test.flaky"] = flaky
    enqueue("test.flaky")
    db.session.commit()
    run_jobs()
    db.session.expire_all()
    [row] = _pending("test.flaky")
    assert len(attempts) == 1 and "disk full" in row.last_error and row.finished_at is None

    # rq holds the job for a retry a little later, with the retries it has left.
    from rq import SimpleWorker
    from rq.job import Job, JobStatus
    from rq.serializers import JSONSerializer

    row_id, q = row.id, queue(row.queue)
    job = Job.fetch(f"outbox-{row.id}-{row.attempts - 1}", connection=q.connection, serializer=JSONSerializer)
    assert job.get_status() == JobStatus.SCHEDULED and job.id in q.scheduled_job_registry.get_job_ids()
    assert job.retries_left == 2
    # Its time comes (moved forward rather than waited for); a worker with a scheduler runs it again.
    q.scheduled_job_registry.schedule(job, utcnow() - timedelta(seconds=1))
    SimpleWorker(app.config["RQ_QUEUES"], connection=q.connection, serializer=JSONSerializer).work(
        burst=True, with_scheduler=True)
    db.session.expire_all()
    assert len(attempts) == 2
    row = db.session.get(OutboxJob, row_id)
    assert row.finished_at is not None and row.last_error is None
    assert job.get_status() == JobStatus.FINISHED


def test_reaper_requeues_a_job_whose_worker_died(ctx, smtp, run_jobs):
    message = send("orphan@example.test", "Orphan", "worker was killed")
    db.session.commit()
    [row] = [r for r in _pending("mail.deliver") if r.enqueued_at is not None and r.args == [str(message.id)]]
    # Simulate a killed worker: rq lost the job, the row says it was pushed long ago.
    queue("mail").remove(f"outbox-{row.id}-{row.attempts - 1}")
    from rq.job import Job

    Job.fetch(f"outbox-{row.id}-{row.attempts - 1}", connection=queue("mail").connection).delete()
    db.session.execute(update(OutboxJob).where(OutboxJob.id == row.id)
                       .values(enqueued_at=utcnow() - timedelta(hours=1)))
    db.session.commit()
    assert reap() >= 1
    assert relay() >= 1
    run_jobs()
    assert len(smtp.to("orphan@example.test")) == 1


def test_reaper_requeues_a_job_rq_says_is_queued_but_no_queue_holds(ctx, smtp, run_jobs):
    """A worker killed as it took a job from its queue: rq's record still says "queued", no list holds it."""
    message = send("lost@example.test", "Lost", "taken by a worker that died")
    waiting = send("waiting@example.test", "Waiting", "still in its queue")
    db.session.commit()
    rows = {r.args[0]: r for r in _pending("mail.deliver") if r.enqueued_at is not None}
    lost, kept = rows[str(message.id)], rows[str(waiting.id)]
    queue("mail").connection.lrem(queue("mail").key, 0, f"outbox-{lost.id}-{lost.attempts - 1}")
    from rq.job import Job

    for row in (lost, kept):
        job = Job.fetch(f"outbox-{row.id}-{row.attempts - 1}", connection=queue("mail").connection)
        assert job.get_status() == "queued"
    db.session.execute(update(OutboxJob).where(OutboxJob.id.in_([lost.id, kept.id]))
                       .values(enqueued_at=utcnow() - timedelta(hours=1)))
    db.session.commit()
    reap()
    db.session.expire_all()
    assert db.session.get(OutboxJob, lost.id).enqueued_at is None  # given to the relay again
    assert db.session.get(OutboxJob, kept.id).enqueued_at is not None  # its worker will come: not twice
    run_jobs()
    assert len(smtp.to("lost@example.test")) == 1 and len(smtp.to("waiting@example.test")) == 1


def test_the_scheduler_enqueues_each_period_once_and_a_failed_tick_leaves_it_to_the_next(ctx, monkeypatch):
    import secrets
    from datetime import datetime, timedelta

    import pytest

    from workers import schedule

    # A moment of its own (the Redis keys outlive a test run), on the hour: every job is due.
    now = datetime(2090 + secrets.randbelow(900), 1 + secrets.randbelow(12), 3, secrets.randbelow(24))
    first = schedule.tick(now)
    assert first >= len(schedule.PERIODIC)  # the provider-wide digest, and each job for every active tenant
    assert schedule.tick(now) == 0  # a second tick in the same periods enqueues nothing

    later = now + timedelta(days=1)

    def outage(*args, **kwargs):
        raise RuntimeError("database gone")

    monkeypatch.setattr(schedule, "enqueue", outage)
    with pytest.raises(RuntimeError):
        schedule.tick(later)
    monkeypatch.undo()
    assert schedule.tick(later) == first  # the failed tick's periods were given back, none lost


def test_a_tick_killed_between_claiming_and_committing_leaves_its_periods_to_the_next(app, db_urls):
    """A hard kill (no exception handler runs) after the claims, before the commit: nothing is skipped."""
    import secrets
    import subprocess
    import sys
    from datetime import UTC, datetime

    from workers import schedule

    moment = datetime(2300 + secrets.randbelow(600), 2, 3, 4, 5, tzinfo=UTC)
    script = (
        "import os\n"
        "from portal import create_app\n"
        "app = create_app()\n"
        "with app.app_context():\n"
        "    from portal.extensions import db\n"
        "    from workers import schedule\n"
        "    db.session.commit = lambda: os._exit(9)  # the machine dies right before the commit\n"
        f"    schedule.tick(__import__('datetime').datetime.fromisoformat({moment.isoformat()!r}))\n"
    )
    env = portal_env(app, db_urls)
    killed = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, timeout=120)
    assert killed.returncode == 9, killed.stderr.decode()[-2000:]
    with app.app_context():
        assert schedule.tick(moment) >= len(schedule.PERIODIC)  # every period of that moment is still due
        assert schedule.tick(moment) == 0
