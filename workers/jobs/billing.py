"""Billing jobs: a tenant's statement of the month that ended on its clock."""

from __future__ import annotations

import uuid

from workers.jobs import job


@job("billing.statement")
def statement(tenant_id: str) -> None:
    """Issue last month's statement if it is not issued yet (daily: a failed day is tried again the next)."""
    from portal.billing.statements import run_for_tenant

    run_for_tenant(uuid.UUID(tenant_id))
