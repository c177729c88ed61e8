"""Offboarding jobs: build a client's export, purge expired exports, offboard a tenant."""

from __future__ import annotations

from workers.jobs import job


@job("offboarding.export")
def build(export_id: str) -> None:
    from portal.offboarding.export import build_export

    build_export(export_id)


@job("offboarding.purge_exports")
def purge() -> None:
    from portal.offboarding.export import purge_expired

    purge_expired()


@job("offboarding.run")
def run(tenant_id: str, actor_id: str) -> None:
    import uuid

    from portal.extensions import db
    from portal.offboarding.procedure import offboard
    from tenants.context import EMPTY, bound
    from tenants.models import Tenant, User

    with bound(EMPTY):  # the procedure binds the tenant step by step, as the system
        offboard(db.session.get(Tenant, uuid.UUID(tenant_id)), db.session.get(User, uuid.UUID(actor_id)),
                 via="from the provider console")
