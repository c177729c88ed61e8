"""Thin jobs. ``run(outbox_id)`` is what rq executes: it loads the outbox row, binds
the tenant scope the way a request does, and calls the registered job with ids."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from contextlib import nullcontext
from contextvars import ContextVar

from flask import Flask, current_app, has_app_context
from rq import get_current_job

from tenants.context import Scope, bound

log = logging.getLogger(__name__)
REGISTRY: dict[str, Callable[..., None]] = {}
_app: Flask | None = None
_running: ContextVar[str | None] = ContextVar("rq_job", default=None)


def running_job() -> str | None:
    """The id of the rq job this code runs in, or None outside one. rq retries a job under the same id once
    its try has ended; an outbox job re-queued because rq lost track of it gets a new one."""
    return _running.get()


def job(name: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Register a job function under a stable name (used in the outbox)."""

    def register(fn: Callable[..., None]) -> Callable[..., None]:
        REGISTRY[name] = fn
        return fn

    return register


def _app_context():  # noqa: ANN202
    global _app
    if has_app_context():
        return nullcontext()
    if _app is None:
        from portal import create_app

        _app = create_app()
    return _app.app_context()


def run(outbox_id: int) -> None:
    """Execute outbox job ``outbox_id`` (idempotent: a finished job is not run again)."""
    from portal.extensions import db
    from workers import mark_finished
    from workers.models import OutboxJob

    with _app_context():
        row = db.session.get(OutboxJob, int(outbox_id))
        if row is None or row.finished_at is not None:
            return
        name, args = row.name, list(row.args)
        tenant = frozenset({uuid.UUID(row.scope_tenant)}) if row.scope_tenant else frozenset()
        db.session.rollback()
        running = _running.set(getattr(get_current_job(), "id", None))
        try:
            with bound(Scope(tenant_ids=tenant)):
                REGISTRY[name](*args)
                db.session.commit()
        except Exception as exc:
            db.session.rollback()
            mark_finished(outbox_id, error=f"{type(exc).__name__}: {exc}"[:2000])
            raise  # rq records the failure and retries
        finally:
            _running.reset(running)
            db.session.remove()
        mark_finished(outbox_id)
        current_app.logger.debug("job %s done", name)


from workers.jobs import audit, billing, documents, events, intake, mail, notify, offboarding, pay_runs, work  # noqa: E402,F401
