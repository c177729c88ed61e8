"""Prometheus metrics, read at ``/metrics`` with ``Authorization: Bearer <METRICS_TOKEN>``.

Counted as things happen (in every process, summed over processes at a scrape):

- ``portal_http_request_duration_seconds{endpoint,method,status}``: every request, by the Flask endpoint's
  name (``documents.download``), never its path: ids in paths would make a series per document;
- ``portal_job_duration_seconds{queue,job,outcome}`` and ``portal_job_failures_total{queue,job}``: every rq
  job, in the worker (workers/runner.py); ``job`` is the outbox job's registered name;
- ``portal_signin_failures_total{step}``: a wrong password or a wrong second-factor code (portal/auth).

Read at each scrape (``StateCollector``), each with one statement or command, over every tenant:

- ``portal_queue_depth{queue}``: jobs waiting in each rq queue (Redis);
- ``portal_outbox_pending``: jobs written by a commit and not yet handed to rq (Redis was down, or the relay
  is behind);
- ``portal_intake_records{state}``: document versions in each intake state;
- ``portal_statements{payment_state}``: statements in force (every one issued; ``payment_state="paid"``
  those paid);
- ``portal_storage_orphans``, ``portal_storage_orphan_bytes``, ``portal_storage_orphans_checked_timestamp_seconds``:
  what the last sweep of the store left (the daily check or an operator's, ``portal.documents.orphans``, kept in
  Redis); absent until one has run;
- ``portal_scrape_ok{part}``: 0 when the database or Redis could not be read for this scrape.

Several processes: gunicorn's workers (and rq workers sharing a host) write their values to files in
``PROMETHEUS_MULTIPROC_DIR`` (infra/gunicorn.conf.py sets it up) and a scrape sums them; without that
variable a process's own values are answered. An rq worker answers its own at ``WORKER_METRICS_PORT``.
"""

from __future__ import annotations

import hmac
import logging
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

from flask import Flask, Response, abort, current_app, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric

log = logging.getLogger(__name__)

# Multi-process: each process writes its values there; a folder named in a shared environment but not made
# for this process (a worker beside the web tier) is made here, before the first value is written.
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Pages answer in milliseconds; uploads, exports and PDFs take seconds (gunicorn's timeout is 60 s).
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# Jobs: from an e-mail (tens of ms) to the OCR of a long scan (minutes; the job timeout is 300 s).
JOB_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)

REQUEST_SECONDS = Histogram("portal_http_request_duration_seconds",
                            "Time to answer a request, by Flask endpoint name, method and status.",
                            ["endpoint", "method", "status"], buckets=REQUEST_BUCKETS)
JOB_SECONDS = Histogram("portal_job_duration_seconds", "Time an rq job ran, by queue, job name and outcome.",
                        ["queue", "job", "outcome"], buckets=JOB_BUCKETS)
JOB_FAILURES = Counter("portal_job_failures", "rq jobs that failed (each attempt), by queue and job name.",
                       ["queue", "job"])
SIGNIN_FAILURES = Counter("portal_signin_failures",
                          "Sign-in attempts refused: a wrong password (or unknown account), a wrong second-factor "
                          "code.", ["step"])

INTAKE_STATES = ("waiting", "running", "done", "failed")
PAYMENT_STATES = ("unpaid", "partly_paid", "paid", "failed", "refunded", "disputed")
SCRAPE_STATEMENT_TIMEOUT_MS = 3000
ORPHANS_KEY = "portal:storage:orphans"  # the last sweep's figures (a Redis hash): shared by every process


def multiprocess_dir() -> str | None:
    """Where each process writes its values when several serve together (prometheus_client's variable)."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


# --- counting as things happen ---------------------------------------------------------------------------

def _redis_of(app: Flask) -> Any:
    """The metrics' own Redis client: fails fast, never retries (a scrape or a count must not hang on it)."""
    from redis import Redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    if "portal_metrics_redis" not in app.extensions:
        app.extensions["portal_metrics_redis"] = Redis.from_url(
            app.config["REDIS_URL"], socket_connect_timeout=1, socket_timeout=2, retry=Retry(NoBackoff(), 0))
    return app.extensions["portal_metrics_redis"]


def storage_swept(orphans: int, size: int) -> None:
    """Keep what a sweep of the store left (``portal.documents.orphans``) for the scrapes, with the time; a Redis
    outage loses only that (the time then shows how old the last figures are)."""
    from redis.exceptions import RedisError

    try:
        _redis_of(current_app).hset(ORPHANS_KEY, mapping={"orphans": orphans, "bytes": size,
                                                          "checked_at": time.time()})
    except RedisError as exc:
        log.warning("metrics: the store's orphans could not be kept (%s)", type(exc).__name__)


def signin_failed(step: str) -> None:
    """Count a refused sign-in step: "password" or "second_factor"."""
    SIGNIN_FAILURES.labels(step=step).inc()


def job_done(queue: str, job: str, seconds: float, *, failed: bool) -> None:
    """Record one run of a job (workers/runner.py)."""
    JOB_SECONDS.labels(queue=queue, job=job, outcome="failed" if failed else "finished").observe(seconds)
    if failed:
        JOB_FAILURES.labels(queue=queue, job=job).inc()


def _start_timer() -> None:
    g.metrics_started = time.perf_counter()


def _observe(response: Response) -> Response:
    started = g.pop("metrics_started", None)
    if started is not None:
        method = request.method if request.method in METHODS else "other"
        REQUEST_SECONDS.labels(endpoint=request.endpoint or "none", method=method,
                               status=str(response.status_code)).observe(time.perf_counter() - started)
    return response


# --- read at a scrape -----------------------------------------------------------------------------------

class StateCollector:
    """Queue depths, outbox backlog, intake states and statements, read when Prometheus scrapes."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        ok = GaugeMetricFamily("portal_scrape_ok", "1 when this part could be read for this scrape, else 0.",
                               labels=["part"])
        for part, read in (("redis", self._redis), ("database", self._database)):
            try:
                families = list(read())
            except Exception as exc:  # the rest of the scrape still answers
                log.warning("metrics: %s could not be read (%s)", part, type(exc).__name__)
                ok.add_metric([part], 0)
                continue
            ok.add_metric([part], 1)
            yield from families
        yield ok

    def _redis(self) -> Iterator[Metric]:
        redis = _redis_of(self.app)
        names = list(self.app.config["RQ_QUEUES"])
        pipe = redis.pipeline(transaction=False)
        for name in names:
            pipe.llen(f"rq:queue:{name}")  # what rq's Queue.count reads
        pipe.hgetall(ORPHANS_KEY)
        *counts, orphans = pipe.execute()
        depth = GaugeMetricFamily("portal_queue_depth", "Jobs waiting in each rq queue.", labels=["queue"])
        for name, count in zip(names, counts, strict=True):
            depth.add_metric([name], count)
        yield depth
        if orphans:
            yield from _orphan_check({key.decode(): float(value) for key, value in orphans.items()})

    def _database(self) -> Iterator[Metric]:
        from sqlalchemy import func, select, text

        from portal.billing.models import Statement
        from portal.extensions import db
        from portal.intake.models import IntakeRecord
        from tenants.audit import all_tenants_scope
        from tenants.context import bound
        from workers.models import OutboxJob

        with self.app.app_context():
            try:
                db.session.execute(text(f"set local statement_timeout = {SCRAPE_STATEMENT_TIMEOUT_MS}"))
                pending = db.session.scalar(select(func.count()).select_from(OutboxJob).where(
                    OutboxJob.enqueued_at.is_(None), OutboxJob.finished_at.is_(None)))
                # Over every tenant, as the system's other sweeps read (the audit checkpoints, intake's resume):
                # every tenant bound, so row-level security lets the counts through and nothing else.
                intake: dict[str, int] = {}
                statements: dict[str, int] = {}
                everyone = all_tenants_scope()
                if everyone.tenant_ids:  # no tenant yet: nothing to count (and nothing may be queried unbound)
                    with bound(everyone):
                        intake = dict(db.session.execute(
                            select(IntakeRecord.state, func.count()).group_by(IntakeRecord.state)).all())
                        statements = dict(db.session.execute(
                            select(Statement.payment_state, func.count()).where(Statement.superseded_at.is_(None))
                            .group_by(Statement.payment_state)).all())
            finally:
                db.session.rollback()
                db.session.remove()
        outbox = GaugeMetricFamily("portal_outbox_pending", "Jobs committed and not yet handed to rq.")
        outbox.add_metric([], pending or 0)
        yield outbox
        yield _by_label("portal_intake_records", "Document versions in each intake state.", "state",
                        INTAKE_STATES, intake)
        yield _by_label("portal_statements", "Statements in force (issued), by payment state.", "payment_state",
                        PAYMENT_STATES, statements)


def _orphan_check(last: dict[str, float]) -> Iterator[Metric]:
    for name, key, doc in (
            ("portal_storage_orphans", "orphans",
             "Stored objects no document names, past the grace period (a day), left by the last sweep: the "
             "daily check, or `portal documents orphans [--remove]`."),
            ("portal_storage_orphan_bytes", "bytes", "Their size in bytes."),
            ("portal_storage_orphans_checked_timestamp_seconds", "checked_at",
             "When that sweep ended (Unix time).")):
        family = GaugeMetricFamily(name, doc)
        family.add_metric([], last.get(key, 0))
        yield family


def _by_label(name: str, doc: str, label: str, known: tuple[str, ...], counts: dict[str, int]) -> Metric:
    family = GaugeMetricFamily(name, doc, labels=[label])
    for value in (*known, *sorted(set(counts) - set(known))):
        family.add_metric([value], counts.get(value, 0))
    return family


class _Union:
    """A collector yielding what other collectors (or registries) yield."""

    def __init__(self, *sources: Any) -> None:
        self.sources = sources

    def collect(self) -> Iterator[Metric]:
        for source in self.sources:
            yield from source.collect()


def exposition(app: Flask | None = None) -> bytes:
    """The text a scrape gets: this process's (or, multi-process, every process's) metrics, and, with ``app``,
    the state read now."""
    registry = CollectorRegistry()
    path = multiprocess_dir()
    if path:
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry, path=path)
    else:
        registry.register(_Union(REGISTRY))
    if app is not None:
        registry.register(StateCollector(app))
    return generate_latest(registry)


# --- who may read them -----------------------------------------------------------------------------------

def authorised(config: Any, authorization: str | None) -> bool | None:
    """True: answer; False: 401 (a token is set and this is not it); None: 404 (no token set, and not opened
    for development with METRICS_OPEN)."""
    token = config.get("METRICS_TOKEN")
    if not token:
        return True if (config.get("METRICS_OPEN") and not config.get("PRODUCTION")) else None
    scheme, _, sent = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(sent.strip().encode(), str(token).encode())


def UNAUTHORISED() -> Response:  # noqa: N802 - a constant answer, made per request
    return Response("a valid metrics token is required\n", 401, {"WWW-Authenticate": 'Bearer realm="metrics"'},
                    mimetype="text/plain")


def scrape() -> Response:
    """The answer of ``/metrics`` for the current request."""
    allowed = authorised(current_app.config, request.headers.get("Authorization"))
    if allowed is None:
        abort(404)
    if not allowed:
        return UNAUTHORISED()
    response = Response(exposition(current_app._get_current_object()), content_type=CONTENT_TYPE_LATEST)
    response.headers["Cache-Control"] = "no-store"
    return response


def serve(app: Flask, port: int, host: str = "0.0.0.0") -> threading.Thread:  # noqa: S104 - scraped from outside
    """Answer ``GET /metrics`` (this process's metrics, same token) on ``port`` in a daemon thread: the rq
    worker's own endpoint (``WORKER_METRICS_PORT``), which has no web server of its own."""
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    def metrics_app(environ: dict, start_response: Any) -> list[bytes]:
        if environ.get("PATH_INFO") != "/metrics" or environ.get("REQUEST_METHOD") not in {"GET", "HEAD"}:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found\n"]
        allowed = authorised(app.config, environ.get("HTTP_AUTHORIZATION"))
        if allowed is None:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found\n"]
        if not allowed:
            start_response("401 Unauthorized", [("Content-Type", "text/plain"),
                                                ("WWW-Authenticate", 'Bearer realm="metrics"')])
            return [b"a valid metrics token is required\n"]
        start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST), ("Cache-Control", "no-store")])
        return [exposition()]

    class Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
            pass  # a scrape every few seconds is not news

    server = make_server(host, port, metrics_app, handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, name="metrics", daemon=True)
    thread.start()
    return thread


def init_app(app: Flask) -> None:
    """Time every request (registered right after the request id, so the time covers the other hooks)."""
    app.before_request(_start_timer)
    app.after_request(_observe)
