"""Tenant isolation, enforced once, twice over.

1. The ORM: every query touching a ``TenantScoped`` model gets
   ``tenant_id IN (bound tenants)`` added by a ``do_orm_execute`` listener, which
   *raises* when no tenant is bound, unless the statement opts out with
   ``execution_options(rls_only=True)`` (then only row-level security decides:
   used for the few policies that also admit a user's own rows, such as their
   memberships). A ``before_flush`` listener stamps ``tenant_id`` on new rows and
   refuses rows of, or moves into, another tenant.
2. PostgreSQL: every tenant-owned table has FORCE'd row-level security on
   ``app.tenant_ids``; ``after_begin`` sets it with ``set_config(..., true)``
   (transaction-local, so a pooled connection never carries it over).
"""

from __future__ import annotations

import uuid

from sqlalchemy import ForeignKey, Uuid, event, text
from sqlalchemy.orm import (
    Mapped,
    ORMExecuteState,
    Session,
    declared_attr,
    mapped_column,
    with_loader_criteria,
)

from tenants.context import Scope, current_scope


class TenantContextMissing(RuntimeError):
    """A tenant-owned table was queried with no tenant bound: a programming error."""


class CrossTenantWrite(LookupError):
    """A write would create or move a row outside the bound tenants (answered as 404)."""


class TenantScoped:
    """Mixin for every tenant-owned model: an indexed, non-null ``tenant_id``."""

    @declared_attr
    def tenant_id(cls) -> Mapped[uuid.UUID]:  # noqa: N805
        return mapped_column(
            Uuid, ForeignKey("tenants.id", ondelete="RESTRICT"), index=True, nullable=False
        )


_SET_SCOPE = text(
    "select set_config('app.tenant_ids', :tenants, true), set_config('app.user_id', :user, true)"
)


def _scope_params(scope: Scope) -> dict[str, str]:
    return {
        "tenants": ",".join(sorted(str(t) for t in scope.tenant_ids)),
        "user": str(scope.user_id) if scope.user_id else "",
    }


@event.listens_for(Session, "after_begin")
def _set_rls_settings(session: Session, transaction, connection) -> None:  # noqa: ANN001
    connection.execute(_SET_SCOPE, _scope_params(current_scope()))


def apply_scope_to_open_transaction(scope: Scope) -> None:
    """Push a newly bound scope into the transaction already open on this app's session."""
    from flask import has_app_context

    if not has_app_context():
        return
    from portal.extensions import db

    session = db.session()
    if session.in_transaction():
        session.connection().execute(_SET_SCOPE, _scope_params(scope))


def _is_scoped(state: ORMExecuteState) -> bool:
    return any(issubclass(m.class_, TenantScoped) for m in state.all_mappers)


@event.listens_for(Session, "do_orm_execute")
def _scope_queries(state: ORMExecuteState) -> None:
    if state.is_column_load or state.is_relationship_load:
        return  # the criteria propagate from the parent query
    if not (state.is_select or state.is_update or state.is_delete):
        return
    if not _is_scoped(state) or state.execution_options.get("rls_only"):
        return
    tenant_ids = list(current_scope().tenant_ids)
    if not tenant_ids:
        raise TenantContextMissing("tenant-owned rows queried with no tenant bound")
    state.statement = state.statement.options(
        with_loader_criteria(
            TenantScoped, lambda cls: cls.tenant_id.in_(tenant_ids), include_aliases=True
        )
    )


@event.listens_for(Session, "before_flush")
def _stamp_and_check(session: Session, flush_context, instances) -> None:  # noqa: ANN001
    from sqlalchemy import inspect

    scope = current_scope()
    for obj in session.new:
        if not isinstance(obj, TenantScoped):
            continue
        if obj.tenant_id is None:
            if scope.tenant_id is None:
                raise TenantContextMissing(f"new {type(obj).__name__} with no tenant bound")
            obj.tenant_id = scope.tenant_id
        elif obj.tenant_id not in scope.tenant_ids:
            raise CrossTenantWrite(f"{type(obj).__name__} for a tenant that is not bound")
    for obj in session.dirty:
        if isinstance(obj, TenantScoped) and inspect(obj).attrs.tenant_id.history.has_changes():
            raise CrossTenantWrite(f"{type(obj).__name__} cannot move to another tenant")
