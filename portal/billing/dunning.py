"""Dunning: reminders for overdue statements at set days, and suspending uploads only where the provider said so.

``run(tenant_id)`` is the daily job of each tenant (``billing.dunning``, on the tenant's own day). The
tenant's stage is how many of ``BILLING_DUNNING_DAYS`` (default 3, 7 and 14 days) have passed since the
due day of its oldest statement still unpaid (unpaid, partly paid or with a failed card payment; a
disputed statement waits for the dispute). Reaching a new stage sends one reminder (a notification, in
the portal and by e-mail, to the client's admins and the provider's admins: a link, never an amount);
each stage goes out once, however often the job runs. After the last stage, and only if the tenant's
``BillingAccount.suspend_on_nonpayment`` is on, the tenant's uploads are suspended: billing sets
``Tenant.uploads_suspended_reason`` and the vault reads it (it never imports billing). Paying (Stripe's
webhook, or the next daily run after a transfer is recorded) brings the stage back down and lifts it.

Everything runs with the tenant bound; ``evaluate`` does not commit (the webhook calls it inside its own
transaction), ``run`` does.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import date

from flask import current_app
from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert

from portal.billing.models import BillingAccount, Statement
from portal.extensions import db
from tenants import audit
from tenants.context import for_tenant
from tenants.models import Membership, Tenant, User, new_id
from tenants.policy import Role
from tenants.zones import tenant_zone, today_in

UNPAID = ("unpaid", "partly_paid", "failed")
SUSPENDED_FOR_NONPAYMENT = "nonpayment"


def account(tenant_id: uuid.UUID) -> BillingAccount:
    """The bound tenant's billing account, made on first use (one per tenant, whoever asks first)."""
    db.session.execute(insert(BillingAccount).values(id=new_id(), tenant_id=tenant_id)
                       .on_conflict_do_nothing(index_elements=[BillingAccount.tenant_id]))
    found = db.session.scalar(select(BillingAccount).where(BillingAccount.tenant_id == tenant_id))
    assert found is not None  # noqa: S101 - inserted or already there, in a bound tenant
    return found


def set_pause_on_nonpayment(actor: User, tenant: Tenant, on: bool, *, ip: str | None = None) -> bool:
    """Switch whether the bound tenant's uploads pause after the last reminder of an overdue statement
    (the provider's choice per client, off unless switched on); audited, takes effect now. Commits."""
    acct = account(tenant.id)
    if acct.suspend_on_nonpayment == on:
        return False
    acct.suspend_on_nonpayment = on
    audit.record("tenant.nonpayment_pause_set", audit.Actor.of(actor), tenant_id=tenant.id, object_type="tenant",
                 object_id=tenant.id, ip=ip, data={"on": on})
    evaluate(tenant)  # already past the last reminder: pause now; switched off: resume now
    db.session.commit()
    return True


def notify_billing(tenant: Tenant, kind: str) -> int:
    """Tell the tenant's client admins and the provider's admins that ``kind`` happened (portal and e-mail).

    The notification carries no task and no amount: the e-mail says what happened and links to the portal.
    Runs in the caller's transaction; returns how many people were notified.
    """
    from portal.work.notify import notify_people

    client_admins = select(Membership.user_id).where(Membership.tenant_id == tenant.id,
                                                      Membership.role == Role.CLIENT_ADMIN.value)
    people = db.session.scalars(select(User.id).where(User.id.in_(client_admins)
                                                      | (User.provider_role == Role.PROVIDER_ADMIN.value)))
    return len(notify_people(tenant.id, kind, people))


def overdue(today: date) -> list[Statement]:
    """The bound tenant's statements in force that are past their due day with money still due, oldest first."""
    return list(db.session.scalars(
        select(Statement).where(Statement.superseded_at.is_(None), Statement.payment_state.in_(UNPAID),
                                Statement.total > Statement.paid, Statement.due_on < today)
        .order_by(Statement.due_on, Statement.id)))


def stage_on(due_dates: Iterable[date], today: date, days: tuple[int, ...]) -> int:
    """How many dunning days have passed since the oldest due day (0 with nothing overdue)."""
    oldest = min(due_dates, default=None)
    if oldest is None:
        return 0
    late = (today - oldest).days
    return sum(1 for d in days if late >= d)


def evaluate(tenant: Tenant, today: date | None = None) -> int:
    """Bring the bound tenant's dunning up to date: remind at a new stage, suspend or lift; returns the stage.

    Does not commit. Serialised per tenant (an advisory lock), so two runs at once remind once.
    """
    db.session.execute(text("select pg_advisory_xact_lock(hashtextextended(:key, 0))"),
                       {"key": f"billing.dunning:{tenant.id}"})
    today = today or today_in(tenant_zone(tenant.id))
    days: tuple[int, ...] = tuple(current_app.config["BILLING_DUNNING_DAYS"])
    acct = account(tenant.id)
    late = overdue(today)
    stage = stage_on((s.due_on for s in late), today, days)
    if stage > acct.dunning_stage:
        notify_billing(tenant, "statement_overdue")
        audit.record("statement.dunning_reminder", audit.SYSTEM, tenant_id=tenant.id, object_type="tenant",
                     object_id=tenant.id, data={"stage": stage, "of": len(days),
                                                "statements": [str(s.id) for s in late]})
        acct.last_dunning_on = today
    acct.dunning_stage = stage  # down again once paid: a later overdue statement starts from the first stage
    set_suspension(tenant, bool(days) and stage >= len(days) and acct.suspend_on_nonpayment)
    return stage


def set_suspension(tenant: Tenant, suspended: bool) -> bool:
    """Suspend or lift the tenant's uploads for non-payment (audited, people told); True when it changed.

    Never touches a suspension set for another reason.
    """
    current = tenant.uploads_suspended_reason
    if suspended and current is None:
        tenant.uploads_suspended_reason = SUSPENDED_FOR_NONPAYMENT
        audit.record("tenant.uploads_suspended", audit.SYSTEM, tenant_id=tenant.id, object_type="tenant",
                     object_id=tenant.id, data={"reason": SUSPENDED_FOR_NONPAYMENT})
        notify_billing(tenant, "uploads_suspended")
        return True
    if not suspended and current == SUSPENDED_FOR_NONPAYMENT:
        tenant.uploads_suspended_reason = None
        audit.record("tenant.uploads_resumed", audit.SYSTEM, tenant_id=tenant.id, object_type="tenant",
                     object_id=tenant.id, data={"reason": SUSPENDED_FOR_NONPAYMENT})
        return True
    return False


def run(tenant_id: uuid.UUID | str, today: date | None = None) -> int:
    """The daily job of one tenant: ``evaluate`` and commit; returns the stage (0 for a tenant not active)."""
    tid = uuid.UUID(str(tenant_id))
    with for_tenant(tid):
        tenant = db.session.get(Tenant, tid)
        if tenant is None or not tenant.is_active:
            return 0
        stage = evaluate(tenant, today)
        db.session.commit()
        return stage
