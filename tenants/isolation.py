"""Tenant isolation, enforced once, twice over.

1. The ORM: every query touching a ``TenantScoped`` model gets
   ``tenant_id IN (bound tenants)`` added by a ``do_orm_execute`` listener, which
   *raises* when no tenant is bound, unless the statement opts out with
   ``execution_options(rls_only=True)`` (then only row-level security decides:
   used for the few policies that also admit a user's own rows, such as their
   memberships). A ``before_flush`` listener stamps ``tenant_id`` on new rows and
   refuses rows of, or moves into, another tenant.
2. PostgreSQL: every tenant-owned table has FORCE'd row-level security on
   ``app.tenant_ids``, which ``_sync`` sets with ``set_config(..., true)`` before
   any statement of the session runs (transaction-local, so a pooled connection
   never carries it over).
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


# What a transaction starts with: settings made with set_config(..., true) end with the
# transaction, so a new one reads them as unset, which every policy treats as "nothing".
_UNSET = {"tenants": "", "user": ""}


@event.listens_for(Session, "after_begin")
def _new_transaction(session: Session, transaction, connection) -> None:  # noqa: ANN001
    session.info["rls_params"] = _UNSET


def _sync(session: Session) -> None:
    """Make the transaction's RLS settings match the bound scope before a statement runs.

    The scope (``tenants.context``) is the one source of truth; it is copied into the
    transaction lazily, right before the next statement or flush, and only when it
    differs from what the transaction carries, so binding costs no round trip of its own.
    """
    params = _scope_params(current_scope())
    carried = session.info.get("rls_params", _UNSET) if session.in_transaction() else _UNSET
    if carried != params:
        session.connection().execute(_SET_SCOPE, params)  # begins the transaction if needed
        session.info["rls_params"] = params


def note_user_setting(session: Session, user_id: uuid.UUID) -> None:
    """Record that a statement of the caller's already set ``app.user_id`` in this transaction."""
    session.info["rls_params"] = {**session.info.get("rls_params", _UNSET), "user": str(user_id)}


def _is_scoped(state: ORMExecuteState) -> bool:
    return any(issubclass(m.class_, TenantScoped) for m in state.all_mappers)


@event.listens_for(Session, "do_orm_execute")
def _scope_queries(state: ORMExecuteState) -> None:
    _sync(state.session)
    if state.is_column_load or state.is_relationship_load:
        return  # the criteria propagate from the parent query
    if not (state.is_select or state.is_update or state.is_delete) or state.execution_options.get("rls_only"):
        return
    if not _is_scoped(state):
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

    _sync(session)
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
