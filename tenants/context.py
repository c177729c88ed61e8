"""The acting user and the tenants they are bound to, for a request or a job.

One ``ContextVar`` carries it; requests bind it in ``portal.access`` and jobs in
``workers.jobs``. ``tenants.isolation`` reads it to scope every ORM query and to
set PostgreSQL's ``app.tenant_ids`` for row-level security.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Scope:
    """Who acts, and which tenants' rows they may touch.

    ``tenant_ids`` holds one tenant for ordinary requests and jobs; the explicit
    cross-tenant path (``isolation.across_tenants``) binds several.
    """

    user_id: uuid.UUID | None = None
    tenant_ids: frozenset[uuid.UUID] = field(default_factory=frozenset)
    role: str | None = None

    @property
    def tenant_id(self) -> uuid.UUID | None:
        """The single bound tenant, or None when none or several are bound."""
        if len(self.tenant_ids) == 1:
            return next(iter(self.tenant_ids))
        return None


EMPTY = Scope()
_scope: ContextVar[Scope] = ContextVar("portal_scope", default=EMPTY)


def current_scope() -> Scope:
    """The scope bound to this request or job (an empty one when nothing is bound)."""
    return _scope.get()


def current_tenant_id() -> uuid.UUID | None:
    """The one tenant this request or job acts for, if exactly one is bound."""
    return _scope.get().tenant_id


def set_scope(scope: Scope) -> object:
    """Bind ``scope``; returns a token for ``reset_scope``.

    The database sees it from the next statement on (``tenants.isolation._sync``).
    """
    return _scope.set(scope)


def reset_scope(token: object) -> None:
    """Undo a ``set_scope``."""
    _scope.reset(token)  # type: ignore[arg-type]


@contextmanager
def bound(scope: Scope) -> Iterator[Scope]:
    """Run a block with ``scope`` bound, restoring the previous one afterwards."""
    token = set_scope(scope)
    try:
        yield scope
    finally:
        reset_scope(token)


def for_tenant(tenant_id: uuid.UUID, user_id: uuid.UUID | None = None):  # noqa: ANN201
    """Bind one tenant (and the acting user) for a block: CLI, console writes, jobs."""
    return bound(Scope(user_id=user_id, tenant_ids=frozenset({tenant_id})))
