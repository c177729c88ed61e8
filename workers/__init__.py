"""rq queues, enqueue-after-commit through the outbox, and the relay.

``enqueue(name, *ids, tenant_id=...)`` writes an ``OutboxJob`` row in the
caller's transaction: a rolled-back transaction enqueues nothing, and if Redis
is down at commit time the row waits for the relay. After a commit that wrote
jobs, the relay pushes them to rq at once; the worker's relay loop retries what
could not be pushed and re-queues jobs whose worker died (the reaper).
rq uses its JSON serializer (never pickle) and receives only ids.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from flask import Flask, current_app
from redis import Redis
from redis.backoff import NoBackoff
from redis.retry import Retry as RedisRetry
from rq import Queue, Retry
from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry
from rq.serializers import JSONSerializer
from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

from portal.extensions import db
from tenants.models import utcnow
from workers.models import OutboxJob

log = logging.getLogger(__name__)

JOB_TIMEOUT = 300
RETRY = Retry(max=3, interval=[10, 60, 300])
REAP_AFTER = timedelta(seconds=JOB_TIMEOUT * 2)
MAX_ATTEMPTS = 5


def make_redis(url: str) -> Redis:
    """A Redis client that fails fast: a commit must not hang on a Redis outage (the outbox
    keeps the job and the relay loop retries it)."""
    return Redis.from_url(url, socket_connect_timeout=1, socket_timeout=5, retry=RedisRetry(NoBackoff(), 1))


def redis_connection() -> Redis:
    """The Redis connection for this app (one per process)."""
    ext = current_app.extensions
    if "portal_redis" not in ext:
        ext["portal_redis"] = make_redis(current_app.config["REDIS_URL"])
    return ext["portal_redis"]


def queue(name: str = "default") -> Queue:
    return Queue(name, connection=redis_connection(), serializer=JSONSerializer)


def enqueue(name: str, *ids: object, tenant_id: uuid.UUID | None = None, queue_name: str = "default") -> None:
    """Schedule job ``name`` to run with ``ids`` once the current transaction commits."""
    db.session.add(OutboxJob(queue=queue_name, name=name, scope_tenant=str(tenant_id) if tenant_id else None,
                             args=[str(i) for i in ids]))
    db.session.info["outbox_dirty"] = True


def _push(job: OutboxJob) -> None:
    queue(job.queue).enqueue(
        "workers.jobs.run", job.id, job_id=f"outbox-{job.id}-{job.attempts}",
        job_timeout=JOB_TIMEOUT, retry=RETRY, meta={"tenant_id": job.scope_tenant, "name": job.name},
    )


def relay(batch: int = 200) -> int:
    """Push every pending outbox row to rq, ``batch`` rows a transaction; returns how many.

    Safe to run in several processes (rows are claimed with SKIP LOCKED). A scheduler tick
    enqueues a job per tenant: all of them go out now, not 200 every few seconds.
    """
    pushed = 0
    while True:
        done, stop = _relay_batch(batch)
        pushed += done
        if stop or done < batch:
            return pushed


def _relay_batch(limit: int) -> tuple[int, bool]:
    pushed = 0
    with Session(db.engine) as session, session.begin():
        rows = session.scalars(
            select(OutboxJob).where(OutboxJob.enqueued_at.is_(None), OutboxJob.finished_at.is_(None))
            .order_by(OutboxJob.id).limit(limit).with_for_update(skip_locked=True)
        ).all()
        for job in rows:
            try:
                _push(job)
            except Exception as exc:  # Redis down: the row stays pending for the next relay
                log.warning("relay could not enqueue outbox job %s: %s", job.id, exc)
                return pushed, True
            job.enqueued_at = utcnow()
            job.attempts += 1
            pushed += 1
    return pushed, False


def reap() -> int:
    """Re-queue jobs that were enqueued long ago, never finished, and are no longer in rq."""
    revived = 0
    cutoff = utcnow() - REAP_AFTER
    with Session(db.engine) as session, session.begin():
        rows = session.scalars(
            select(OutboxJob).where(OutboxJob.finished_at.is_(None), OutboxJob.enqueued_at < cutoff)
            .with_for_update(skip_locked=True)
        ).all()
        for job in rows:
            rq_job = Job.fetch_many([f"outbox-{job.id}-{job.attempts - 1}"], connection=redis_connection(),
                                    serializer=JSONSerializer)[0]
            status = rq_job.get_status(refresh=False) if rq_job else None
            if status in (JobStatus.STARTED, JobStatus.DEFERRED, JobStatus.SCHEDULED) or (
                    status == JobStatus.QUEUED and _in_a_queue(rq_job)):
                continue
            if job.attempts >= MAX_ATTEMPTS:
                job.finished_at = utcnow()
                job.last_error = (job.last_error or "") + "\ngave up after repeated failures"
                log.error("outbox job %s (%s) given up", job.id, job.name)
                continue
            job.enqueued_at = None  # the relay pushes it again
            revived += 1
    return revived


def recover_abandoned(queue_names: list[str], at: float | None = None) -> None:
    """Hand back the jobs of ``queue_names`` whose worker died while running them (SIGKILL, a lost node): rq's
    own check runs only at each worker's maintenance, every ten minutes, after the job's heartbeat ran out
    (its timeout plus a minute); run from the relay loop, a killed job waits for the heartbeat only. Each is
    retried when it has retries left (outbox jobs do), failed otherwise. ``at``: the time to judge by."""
    for name in queue_names:
        StartedJobRegistry(queue=queue(name)).cleanup(at)


def _in_a_queue(job: Job) -> bool:
    """Whether a job rq calls queued is in its queue, or being taken from it. A worker killed as it took the
    job leaves it "queued" in no list at all, where nothing would ever run it (tests/load saw one)."""
    waiting = queue(job.origin)
    return job.get_position() is not None or job.id in waiting.intermediate_queue.get_job_ids()


def mark_finished(job_id: int, error: str | None = None) -> None:
    """Record that an outbox job ran (or why it failed)."""
    values = {"last_error": error} if error else {"finished_at": utcnow(), "last_error": None}
    with db.engine.begin() as conn:
        conn.execute(update(OutboxJob).where(OutboxJob.id == job_id).values(**values))


@event.listens_for(Session, "after_commit")
def _relay_after_commit(session: Session) -> None:
    if session.info.pop("outbox_dirty", False):
        try:
            relay()
        except Exception:  # the worker's relay loop will pick the rows up
            log.exception("immediate relay failed")


def init_app(app: Flask) -> None:
    import workers.jobs  # noqa: F401  (registers the jobs)
