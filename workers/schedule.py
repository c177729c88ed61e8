"""The scheduler: periodic work, enqueued through the outbox once per period.

``tick`` runs in the worker's relay loop every few seconds. A Redis key per
period (``SET NX``) makes the whole fleet enqueue each period's jobs once, and the
jobs themselves are idempotent (they claim rows atomically), so a tick that runs
twice, or a worker that was down for a while and catches up, sends nothing twice.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from portal.extensions import db
from tenants.models import Tenant, utcnow
from workers import enqueue, redis_connection

# name → period format: the job runs once per distinct value of now.strftime(format)
PERIODIC = {"documents.reminders": "%Y-%m-%dT%H",  # hourly
            "work.recurring": "%Y-%m-%d",  # daily: recurring tasks of every tenant
            "work.due_soon": "%Y-%m-%d",  # daily: tasks due tomorrow or overdue, to their assignees
            "work.digest": "%Y-%m-%d"}  # daily: one e-mail per person on the digest
# Jobs over every tenant at once: enqueued once per period with no tenant bound (they bind what
# they need; a person's digest covers all of their tenants).
PROVIDER_WIDE = frozenset({"work.digest"})


def tick(now: datetime | None = None) -> int:
    """Enqueue the periodic jobs whose period has not run yet; returns how many were enqueued."""
    now = now or utcnow()
    count = 0
    claimed: list[str] = []
    tenant_ids: list | None = None  # read once, when a per-tenant job first needs them
    try:
        for name, fmt in PERIODIC.items():
            key = f"portal:schedule:{name}:{now.strftime(fmt)}"
            if not redis_connection().set(key, "1", nx=True, ex=7 * 24 * 3600):
                continue
            claimed.append(key)
            if name in PROVIDER_WIDE:
                enqueue(name)
                count += 1
                continue
            # One job per active tenant, each bound to its own tenant like a request.
            if tenant_ids is None:
                tenant_ids = list(db.session.scalars(select(Tenant.id).where(Tenant.status == "active")))
            for tenant_id in tenant_ids:
                enqueue(name, tenant_id, tenant_id=tenant_id)
                count += 1
        db.session.commit()
    except BaseException:
        # Nothing was enqueued: give the periods back, so the next tick enqueues them.
        db.session.rollback()
        if claimed:
            redis_connection().delete(*claimed)
        raise
    return count
