"""The provider's view of a month of statements over the clients a person may see."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date
from zoneinfo import ZoneInfo

from sqlalchemy import select

from portal.billing.models import Statement, StatementRun
from portal.extensions import db
from portal.work.kpi import Month
from tenants.models import Tenant, User
from tenants.reach import across_tenants
from tenants.zones import today_in


@dataclass(frozen=True)
class Row:
    tenant_id: uuid.UUID
    slug: str
    name: str
    statement_id: uuid.UUID | None
    currency: str | None
    total: int
    paid: int
    due_on: date | None
    payment_state: str | None
    approval: str | None
    run_state: str | None  # issued | skipped | failed | None (not run yet)
    run_error: str | None
    overdue: bool  # unpaid after its due day, on the client's clock


@dataclass(frozen=True)
class Overview:
    month: Month
    rows: list[Row] = field(default_factory=list)

    def totals(self) -> dict[str, tuple[int, int]]:
        """Per currency: (total billed, still due)."""
        out: dict[str, tuple[int, int]] = {}
        for row in self.rows:
            if row.currency:
                billed, due = out.get(row.currency, (0, 0))
                out[row.currency] = (billed + row.total, due + max(0, row.total - row.paid))
        return out

    @property
    def failed(self) -> list[Row]:
        return [r for r in self.rows if r.run_state == "failed"]


def month_overview(actor: User, month: Month, *, ip: str | None = None) -> Overview:
    """Each client the person sees, with its statement of ``month`` in force and its run outcome."""
    with across_tenants(actor, "statements of a month", ip=ip) as reach:
        tenants = list(db.session.execute(select(Tenant.id, Tenant.slug, Tenant.name, Tenant.timezone)
                                          .where(Tenant.id.in_(reach)).order_by(Tenant.name)))
        statements = {s.tenant_id: s for s in db.session.scalars(
            select(Statement).where(Statement.month == month.start, Statement.superseded_at.is_(None)))}
        runs = {r.tenant_id: r for r in db.session.scalars(select(StatementRun)
                                                           .where(StatementRun.month == month.start))}
        rows = []
        for tenant_id, slug, name, zone in tenants:
            s, run = statements.get(tenant_id), runs.get(tenant_id)
            overdue = bool(s and s.due > 0 and s.due_on < today_in(ZoneInfo(zone)))
            rows.append(Row(tenant_id, slug, name, s.id if s else None, s.currency if s else None,
                            s.total if s else 0, s.paid if s else 0, s.due_on if s else None,
                            s.payment_state if s else None, s.approval if s else None,
                            run.state if run else None, run.error if run else None, overdue))
    return Overview(month, rows)
