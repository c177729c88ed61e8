"""Work jobs: the day's recurring tasks of a tenant."""

from __future__ import annotations

from workers.jobs import job


@job("work.recurring")
def recurring(tenant_id: str) -> None:
    from portal.work.recurring import create_due_tasks

    create_due_tasks(tenant_id)
