"""Which tenants a person can reach, and the one explicit path for reading several at once."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app, g, has_request_context
from sqlalchemy import Interval, Select, bindparam, func, select
from sqlalchemy.dialects.postgresql import insert

from portal.extensions import db
from tenants import audit
from tenants.audit import AuditReadMark
from tenants.context import Scope, bound, current_scope
from tenants.models import LIVE_STATUSES, Assignment, Membership, Tenant, User
from tenants.policy import SEES_ALL_TENANTS


@dataclass(frozen=True, slots=True)
class Reachable:
    """A tenant as the reach lists it: plain values, read once, which a commit later in the
    request (an audited read commits its audit row) cannot expire into one reload per tenant."""

    id: uuid.UUID
    slug: str
    name: str
    status: str
    currency: str
    timezone: str
    locale: str

    @property
    def is_active(self) -> bool:
        return self.status == "active"


# Built once: the header's workspace switcher runs one of these on every page.
_COLUMNS = (select(Tenant.id, Tenant.slug, Tenant.name, Tenant.status, Tenant.currency, Tenant.timezone,
                   Tenant.locale).where(Tenant.status.in_(LIVE_STATUSES)).order_by(Tenant.name)
            .execution_options(rls_only=True))
_ALL = _COLUMNS
_ASSIGNED = (_COLUMNS.join(Assignment, Assignment.tenant_id == Tenant.id)
             .where(Assignment.user_id == bindparam("user_id")))
_MEMBER_OF = (_COLUMNS.join(Membership, Membership.tenant_id == Tenant.id)
              .where(Membership.user_id == bindparam("user_id")))


def own_rows(user: User) -> AbstractContextManager[object]:
    """Bind ``user`` to read their own rows (row-level security's "own rows" clause needs only them).

    When the request already bound this user (with its tenant), that scope is kept: rebinding
    would cost two round trips to change the settings and back.
    """
    return nullcontext() if current_scope().user_id == user.id else bound(Scope(user_id=user.id))


SWITCHER_LIMIT = 10  # the header's switcher: every page carries it, so it must not grow with the clients
_FIRST = {q: q.limit(SWITCHER_LIMIT + 1) for q in (_ALL, _ASSIGNED, _MEMBER_OF)}


def _reach_query(user: User) -> Select:
    if user.provider_role in SEES_ALL_TENANTS:
        return _ALL
    return _ASSIGNED if user.provider_role else _MEMBER_OF


def switcher_tenants(user: User) -> tuple[list[Reachable], bool]:
    """The first ``SWITCHER_LIMIT`` tenants of ``user``'s reach by name, and whether there are more (the
    workspaces page lists and searches them all): what the header's switcher shows on every page."""
    cached = g.get("_visible_tenants", {}).get(user.id) if has_request_context() else None
    if cached is None:
        with own_rows(user):
            cached = [Reachable(*row) for row in db.session.execute(_FIRST[_reach_query(user)],
                                                                    {"user_id": user.id})]
    return list(cached[:SWITCHER_LIMIT]), len(cached) > SWITCHER_LIMIT


LISTED = 100  # pages listing workspaces: past that many, a search finds one faster than scrolling


def search(tenants: list[Reachable], q: str, limit: int = LISTED) -> tuple[list[Reachable], int]:
    """The first ``limit`` of ``tenants`` whose name or short name contains ``q`` (any case; all for an empty
    ``q``), and how many match."""
    needle = q.strip().casefold()
    found = [t for t in tenants if needle in t.name.casefold() or needle in t.slug] if needle else tenants
    return found[:limit], len(found)


def visible_tenants(user: User) -> list[Reachable]:
    """Tenants ``user`` may open: memberships, every tenant for provider admins, assignments otherwise.

    Memberships and assignments are read through row-level security's "own rows" clause,
    for which the user is bound while reading.
    """
    # Read once per request: the header's switcher, a page's filters and its cross-tenant
    # read all ask. Never cached beyond a request, so a removed assignment counts at once.
    cache = g.setdefault("_visible_tenants", {}) if has_request_context() else {}
    if user.id in cache:
        return list(cache[user.id])
    with own_rows(user):
        tenants = [Reachable(*row) for row in db.session.execute(_reach_query(user), {"user_id": user.id})]
    cache[user.id] = tenants
    return list(tenants)


@contextmanager
def across_tenants(user: User, reason: str, only: Iterable[uuid.UUID] | None = None,
                   ip: str | None = None, *, record: bool = True) -> Iterator[frozenset[uuid.UUID]]:
    """Bind every tenant ``user`` can reach (narrowed to ``only``) for one cross-tenant read.

    The single path for views over several tenants (a manager's overview, a staff
    member's work across assigned tenants). Never more than the user's own reach,
    whatever ``only`` asks for; the read is recorded in the platform log when the block
    ends without an error (once per person, reason and set of tenants in each
    ``CROSS_TENANT_AUDIT_WINDOW_SECONDS``), and the caller commits after the block.

    ``record=False`` is for a write whose one result is recorded in its own tenant's
    log instead (taking the next task of a queue): the platform chain's lock would
    otherwise serialise every taker.
    """
    reach = {t.id for t in visible_tenants(user)}
    ids = frozenset(reach if only is None else reach & set(only))
    with bound(Scope(user_id=user.id, tenant_ids=ids)):
        yield ids
    if record and _due(user, reason, ids):
        # After the read, in the caller's transaction (it commits, or a failure rolls back both): the
        # platform chain's lock is then held from here to the commit, not through the whole read,
        # so people reading across their clients at the same moment do not queue behind each other.
        audit.record("cross_tenant.read", audit.Actor.of(user), ip=ip,
                     data={"reason": reason, "tenants": sorted(str(t) for t in ids),
                           "covers_seconds": current_app.config["CROSS_TENANT_AUDIT_WINDOW_SECONDS"]})


# Built once: "my work" and every overview run it on each request, and building it cost more than running it.
_MARK_READ = (insert(AuditReadMark)
              .values(user_id=bindparam("user_id"), reason=bindparam("reason"), scope_hash=bindparam("scope_hash"),
                      recorded_at=func.now())
              .on_conflict_do_update(index_elements=[AuditReadMark.user_id, AuditReadMark.reason,
                                                     AuditReadMark.scope_hash],
                                     set_={"recorded_at": func.now()},
                                     where=AuditReadMark.recorded_at < func.now() - bindparam("window", type_=Interval))
              .returning(AuditReadMark.user_id))


def _due(user: User, reason: str, ids: frozenset[uuid.UUID]) -> bool:
    """Whether this read is the first of its kind in the window (then it is written to the log).

    One upsert: the mark moves, and the read is logged, only when the window since the last
    logged read of the same kind has passed; the same read at the same moment logs once.
    """
    window = int(current_app.config["CROSS_TENANT_AUDIT_WINDOW_SECONDS"])
    if window <= 0:
        return True
    digest = hashlib.sha256(",".join(sorted(str(t) for t in ids)).encode()).digest()
    params = {"user_id": user.id, "reason": reason[:80], "scope_hash": digest,
              "window": timedelta(seconds=window)}
    return db.session.execute(_MARK_READ, params).first() is not None
