"""Running the jobs a test queued, with a real rq worker, and setting aside those earlier tests left behind."""

from __future__ import annotations

import re
import signal

from flask import Flask


def drop_earlier_jobs(app: Flask, before: int) -> None:
    """Mark the outbox rows up to ``before`` that never finished as not run, and take their rq jobs off the
    queues. Tests that never run their jobs leave them behind (an alert mails every provider admin of the
    session): without this, a later test's ``run_jobs`` delivered thousands of their e-mails."""
    from sqlalchemy import func, update
    from sqlalchemy.orm import Session

    from portal.extensions import db
    from workers import queue
    from workers.models import OutboxJob

    with Session(db.engine) as session, session.begin():
        session.execute(update(OutboxJob).where(OutboxJob.id <= before, OutboxJob.finished_at.is_(None))
                        .values(finished_at=func.now(), last_error="not run: queued by an earlier test"))
    for name in app.config["RQ_QUEUES"]:
        waiting = queue(name)
        for job_id in waiting.get_job_ids():
            found = re.fullmatch(r"outbox-(\d+)-\d+", job_id)
            if found and int(found.group(1)) <= before:
                waiting.remove(job_id)


def run_queued(app: Flask, *, after: int | None = None) -> None:
    """Relay the outbox and run every queued job with a real worker (burst mode, JSON serializer), five rounds at
    most: jobs that queue jobs (an offboarding's e-mails) run too. ``after``: only the jobs queued after that
    outbox row (``drop_earlier_jobs``). Needs an app context."""
    from rq import SimpleWorker
    from rq.serializers import JSONSerializer

    from workers import redis_connection, relay

    # rq installs its own SIGINT/SIGTERM handlers in this (the test) process: put pytest's back after.
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        if after is not None:
            drop_earlier_jobs(app, after)
        for _round in range(5):
            relay()
            SimpleWorker(app.config["RQ_QUEUES"], connection=redis_connection(),
                         serializer=JSONSerializer).work(burst=True)
            if not relay():
                break
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
