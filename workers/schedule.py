"""The scheduler: periodic work, enqueued through the outbox once per period.

``tick`` runs in the worker's relay loop every few seconds. Each period of each job is
claimed by a row in ``schedule_runs`` (unique on job and period) written in the same
transaction as the jobs it enqueues: a tick that runs twice, two workers at once, or a
worker that catches up after being down enqueue each period once, and a tick that dies
before its commit (an exception, or a hard kill) leaves the period unclaimed for the
next tick. The jobs themselves are idempotent too (they claim their rows atomically),
so nothing is ever sent twice.

A per-tenant job is claimed per tenant (``<job>:<tenant id>``), for one period of that
tenant: an hour, or the tenant's own day (its recurring tasks open, and its due-date
reminders go out, when its day begins in its time zone, not UTC's). The claims of all
tenants are one statement.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import String, cast, delete, func, literal, select
from sqlalchemy.dialects.postgresql import insert

from portal.extensions import db
from tenants.models import Tenant, utcnow
from workers import enqueue
from workers.models import ScheduleRun

Period = Callable[[datetime], str]


def every(minutes: int) -> Period:
    """Periods of ``minutes`` minutes within the hour (UTC)."""
    return lambda now: f"{now:%Y-%m-%dT%H}:{now.minute // minutes * minutes:02d}"


HOURLY: Period = lambda now: f"{now:%Y-%m-%dT%H}"  # noqa: E731
DAILY: Period = lambda now: f"{now:%Y-%m-%d}"  # noqa: E731
LOCAL_DAY = None  # a per-tenant job's period is the tenant's own date


@dataclass(frozen=True)
class Periodic:
    """A periodic job: once per ``period`` for every active tenant, or once for the provider."""

    period: Period | None  # None: LOCAL_DAY
    per_tenant: bool = True


PERIODIC: dict[str, Periodic] = {
    "documents.reminders": Periodic(HOURLY),  # requested documents due soon or late, to the client
    "work.recurring": Periodic(LOCAL_DAY),  # the day's recurring tasks
    "work.due_soon": Periodic(LOCAL_DAY),  # tasks due tomorrow or overdue, to their assignees
    "documents.purge_trash": Periodic(LOCAL_DAY),  # documents whose time in the trash is over, deleted for good
    "billing.statement": Periodic(LOCAL_DAY),  # last month's statement, once it has ended on the tenant's clock
    "billing.dunning": Periodic(LOCAL_DAY),  # reminders for overdue statements at BILLING_DUNNING_DAYS
    # Over every tenant at once: enqueued once per period with no tenant bound (they bind what they
    # need; a person's digest covers all of their tenants).
    "work.digest": Periodic(DAILY, per_tenant=False),  # one e-mail per person on the digest
    "audit.checkpoint": Periodic(every(10), per_tenant=False),  # signed chain heads, to object storage
    "offboarding.purge_exports": Periodic(HOURLY, per_tenant=False),  # exports not fetched in time, deleted
    "intake.resume": Periodic(every(10), per_tenant=False),  # intake runs whose worker died, picked up again
    "documents.check_orphans": Periodic(DAILY, per_tenant=False),  # stored objects no row names, counted
}
KEEP_CLAIMS = timedelta(days=8)


def _claim(name: str, period: str) -> bool:
    # A concurrent tick's uncommitted claim makes this wait for it, then see the conflict.
    stmt = insert(ScheduleRun).values(name=name, period=period).on_conflict_do_nothing().returning(ScheduleRun.name)
    return db.session.execute(stmt).first() is not None


def _claim_tenants(name: str, job: Periodic, now: datetime) -> list[str]:
    """Claim this period of ``name`` for every active tenant whose claim is new; returns their ids."""
    if job.period is LOCAL_DAY:
        period = func.to_char(func.timezone(Tenant.timezone, literal(now)), "YYYY-MM-DD")
    else:
        period = literal(job.period(now))
    rows = select(literal(f"{name}:") + cast(Tenant.id, String), period).where(Tenant.status == "active")
    stmt = (insert(ScheduleRun).from_select(["name", "period"], rows).on_conflict_do_nothing()
            .returning(ScheduleRun.name))
    return [claimed.rsplit(":", 1)[1] for claimed in db.session.scalars(stmt)]


def tick(now: datetime | None = None) -> int:
    """Enqueue the periodic jobs whose period has not run yet; returns how many were enqueued."""
    now = now or utcnow()
    count = 0
    try:
        for name, job in PERIODIC.items():
            if not job.per_tenant:
                if _claim(name, job.period(now)):
                    enqueue(name)
                    count += 1
                continue
            # One job per tenant, each bound to its own tenant like a request.
            for tenant_id in _claim_tenants(name, job, now):
                enqueue(name, tenant_id, tenant_id=tenant_id)
                count += 1
        if _claim("schedule.prune", DAILY(now)):
            # By the database's clock, which stamped the claims (a tick may be given another ``now``).
            db.session.execute(delete(ScheduleRun).where(ScheduleRun.claimed_at < func.now() - KEEP_CLAIMS))
        db.session.commit()
    except BaseException:
        db.session.rollback()  # the claims go with the jobs: the next tick enqueues these periods
        raise
    return count
