"""Work jobs: the day's recurring tasks of a tenant, and the tasks its filing calendar's deadlines open."""

from __future__ import annotations

from workers.jobs import job


@job("work.recurring")
def recurring(tenant_id: str) -> None:
    from portal.ledger.filing_services import open_due_tasks
    from portal.work.recurring import create_due_tasks

    create_due_tasks(tenant_id)
    open_due_tasks(tenant_id)  # the same open-once insert, keyed filing:<rule>:<period>
