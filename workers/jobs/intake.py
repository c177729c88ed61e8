"""Intake jobs: the chain over one document version, and the sweep for runs whose worker died."""

from __future__ import annotations

from workers.jobs import job


@job("intake.run")
def run(document_id: str, version: str, queue: str = "default") -> None:
    from portal.intake.chain import run

    run(document_id, version, queue)


@job("intake.resume")
def resume() -> None:
    """Every ten minutes, over every tenant: records whose run died or never started get their chain again."""
    from portal.intake.chain import resume_stale
    from tenants.audit import all_tenants_scope
    from tenants.context import bound

    with bound(all_tenants_scope()):
        resume_stale()
