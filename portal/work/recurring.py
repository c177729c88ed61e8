"""Recurring work: templates per tenant turned into one task per period, exactly once.

The scheduler enqueues ``create_due_tasks`` for every tenant once a day. Each due
period's task is inserted with ``ON CONFLICT DO NOTHING`` on the tenant's unique
``recurrence_key`` ("<template>:<period>"), so a scheduler that runs twice, two
workers at once, or a catch-up after days of downtime create each period's task
once, and ``due_periods`` returns every missed period, so none is skipped.
"""

from __future__ import annotations

import uuid
from datetime import date

from flask_babel import gettext as _
from sqlalchemy import select

from portal.extensions import db
from portal.work.models import TaskTemplate
from portal.work.recurrence import Rule, due_periods, vietnam_calendar
from portal.work.services import PRIORITIES, WorkError, open_keyed_task, service_line
from tenants import audit
from tenants.models import Tenant, User
from tenants.zones import tenant_zone, today_in


def add_template(actor: User | None, tenant: Tenant, *, title: str, service_line_key: str, rule: dict,
                 since: date | None = None, lead_days: int = 7, priority: int = 3) -> TaskTemplate:
    """Add recurring work to the bound tenant (the rule is checked strictly, with a clear message)."""
    title = (title or "").strip()
    if not title or len(title) > 200:
        raise WorkError(_("Give the recurring task a title of at most 200 characters."))
    try:
        parsed = Rule.from_json(rule)
    except ValueError as exc:
        raise WorkError(_("The schedule is not valid: %(why)s", why=str(exc))) from None
    if not 0 <= lead_days <= 60 or priority not in PRIORITIES:
        raise WorkError(_("Open it 0 to 60 days before it is due, with a priority from 1 to 4."))
    template = TaskTemplate(tenant_id=tenant.id, title=title, service_line_id=service_line(service_line_key).id,
                            rule=parsed.to_json(), since=since or today_in(tenant_zone(tenant.id)), lead_days=lead_days,
                            priority=priority, created_by_id=actor.id if actor else None)
    db.session.add(template)
    db.session.flush()
    audit.record("task_template.created", audit.Actor.of(actor), tenant_id=tenant.id, object_type="task_template",
                 object_id=template.id, internal=True, data={"name": title, "rule": parsed.to_json()})
    db.session.commit()
    return template


def templates() -> list[TaskTemplate]:
    # Titles are sealed (tenants.fields): sorted here, not by the database.
    return sorted(db.session.scalars(select(TaskTemplate)), key=lambda t: (t.title.casefold(), str(t.id)))


def create_due_tasks(tenant_id: uuid.UUID | str, today: date | None = None) -> int:
    """Job: create every recurring task now due (or within its lead time), each period once; returns how many.

    "Now" is the tenant's own date: a task due on the 5th opens by the tenant's calendar, not UTC's.
    """
    today = today or today_in(tenant_zone(uuid.UUID(str(tenant_id))))
    created = 0
    for template in db.session.scalars(select(TaskTemplate).where(TaskTemplate.active.is_(True))):
        rule = Rule.from_json(template.rule)
        calendar = vietnam_calendar(range(min(template.since.year, today.year) - 1, today.year + 2))
        for period, due in due_periods(rule, calendar, since=template.since, today=today,
                                       lead_days=template.lead_days):
            if open_keyed_task(template.tenant_id, template.service_line, f"{template.id}:{period}",
                               title=f"{template.title} ({period})", source="recurring",
                               priority=template.priority, due=due, period=period) is not None:
                created += 1
    db.session.commit()
    return created
