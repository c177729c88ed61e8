"""The rq worker ``portal worker`` runs: rq's ``SimpleWorker``, each job timed, counted and tagged.

``SimpleWorker`` runs each job in the worker's own process (no fork per job): the app, its connection
pools and the keyring's cache stay warm between jobs. Around each job this class:

- records its duration and outcome (``portal_job_duration_seconds``, ``portal_job_failures_total``) by
  queue and job name (the outbox job's registered name; "other" for anything else, so a label never
  holds an id);
- tags every log line written meanwhile with the job's id and queue (``portal.logs.job_context``).

Shutdown is rq's: the first SIGTERM (or Ctrl+C) is a warm shutdown, the job in progress finishes and
the worker exits 0; a second one is a cold shutdown, the job is interrupted and left to the outbox's
reaper, which queues it again (workers/__init__.py).
"""

from __future__ import annotations

import time

from rq import SimpleWorker
from rq.job import Job, JobStatus
from rq.queue import Queue

from portal import metrics
from portal.logs import job_context


def job_name(job: Job) -> str:
    """The outbox job's registered name (``meta["name"]``), or "other"."""
    from workers.jobs import REGISTRY

    name = (job.meta or {}).get("name")
    return name if isinstance(name, str) and name in REGISTRY else "other"


class PortalWorker(SimpleWorker):
    """``SimpleWorker`` with job metrics and job-tagged log lines."""

    def execute_job(self, job: Job, queue: Queue) -> None:
        started = time.perf_counter()
        with job_context(job.id, queue.name):
            try:
                super().execute_job(job, queue)
            finally:
                # rq sets the status it saved on the job object: finished, or failed / queued again for a retry.
                status = job.get_status(refresh=False)
                metrics.job_done(queue.name, job_name(job), time.perf_counter() - started,
                                 failed=status != JobStatus.FINISHED)
