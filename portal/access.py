"""The one gate every request passes: who is calling, which tenant, may they.

Each view declares one action from ``tenants.policy.TABLE`` with ``@requires``
(or ``@public``). ``_gate`` runs before every request: it identifies the caller
(session cookie for pages, bearer token for ``/api``), resolves the tenant of
``/t/<tenant_slug>/...`` (or ``/api/v1/tenants/<tenant_slug>/...``) to the
caller's role in it, checks the action, and binds the scope that
``tenants.isolation`` uses to scope every query. A tenant the caller cannot see
answers exactly like one that does not exist: 404, and the refusal is audited.
A view without a declared action is refused (and fails the test suite).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from flask import Flask, abort, g, redirect, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import and_, bindparam, select

from portal.extensions import db
from tenants import audit
from tenants.context import EMPTY, Scope, set_scope
from tenants.models import Assignment, Membership, Tenant, User
from tenants.policy import SEES_ALL_TENANTS, Role, allowed, scope_of

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable)
PUBLIC = "public"


def requires(action: str) -> Callable[[F], F]:
    """Declare the action a view performs; the gate checks it before the view runs."""

    def mark(view: F) -> F:
        view._action = action  # type: ignore[attr-defined]
        return view

    return mark


def public(view: F) -> F:
    """Declare a view open to anyone (sign-in, invite links, health)."""
    view._action = PUBLIC  # type: ignore[attr-defined]
    return view


def action_of(app: Flask, endpoint: str) -> str | None:
    """The action declared by the view behind ``endpoint`` (None when undeclared)."""
    if endpoint == "static":
        return PUBLIC
    view = app.view_functions.get(endpoint)
    return getattr(view, "_action", None)


@dataclass(frozen=True)
class TenantAccess:
    tenant: Tenant
    role: Role


# Built once: this runs on every tenant request, and building a statement costs as much as running it.
_TENANT_ROLE = (
    select(Tenant, Membership.role, Assignment.id)
    .outerjoin(Membership, and_(Membership.tenant_id == Tenant.id, Membership.user_id == bindparam("user_id")))
    .outerjoin(Assignment, and_(Assignment.tenant_id == Tenant.id, Assignment.user_id == bindparam("user_id")))
    .where(Tenant.slug == bindparam("slug"))
    .execution_options(rls_only=True)
)


def tenant_role(user: User, slug: str) -> TenantAccess | None:
    """The caller's role in the tenant ``slug``, or None if they may not see it.

    Client users see the tenants they are members of; provider admins see all;
    managers and staff see the tenants they are assigned to. Memberships and
    assignments are read through row-level security's "own rows" clause, so the
    query needs no tenant bound yet (only the user).
    """
    row = db.session.execute(_TENANT_ROLE, {"user_id": user.id, "slug": slug}).first()
    if row is None or row[0].is_gone:  # an offboarded tenant is not there for anyone
        return None
    tenant, membership_role, assignment_id = row
    if membership_role:
        return TenantAccess(tenant, Role(membership_role))
    if user.provider_role in SEES_ALL_TENANTS:
        return TenantAccess(tenant, Role(user.provider_role))
    if user.provider_role and assignment_id:
        return TenantAccess(tenant, Role(user.provider_role))
    return None


def refuse_not_found(user: User | None, what: str) -> None:
    """Answer 404 (the same as for something that does not exist) and audit the refusal."""
    audit.record("access.refused", audit.Actor.of(user), ip=request.remote_addr,
                 data={"path": request.path[:300], "method": request.method, "what": what})
    db.session.commit()
    abort(404)


def _principal() -> User | None:
    if request.blueprint and request.blueprint.startswith("api"):
        from portal.api.tokens import authenticate_bearer

        return authenticate_bearer()
    return current_user if current_user.is_authenticated else None


def _gate() -> object | None:
    set_scope(EMPTY)
    g.tenant = None
    g.role = None
    if request.endpoint is None:
        return None  # 404/405 follows
    action = action_of(_app(), request.endpoint)
    if action is None:
        log.error("route %s declares no authorisation rule", request.endpoint)
        abort(403)
    if action == PUBLIC:
        # Public pages may still show a signed-in user's own things (their workspaces).
        if "_user_id" in session and current_user.is_authenticated:
            set_scope(Scope(user_id=current_user.id))
        return None

    user = _principal()
    if user is None:
        if request.blueprint and request.blueprint.startswith("api"):
            abort(401, description=_("Send a valid personal access token as 'Authorization: Bearer <token>'. "
                                     "Create one on a workspace's API tokens page."))
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    set_scope(Scope(user_id=user.id))

    kind = scope_of(action)
    if kind == "account":
        return None  # any signed-in user, on their own account only
    if kind == "provider":
        if not user.provider_role:
            refuse_not_found(user, "provider area")
        if not allowed(user.provider_role, action):
            abort(403)
        g.role = Role(user.provider_role)
        return None

    slug = (request.view_args or {}).get("tenant_slug")
    access = tenant_role(user, slug) if slug else None
    token = getattr(g, "api_token", None)
    if access is None or (token is not None and token.tenant_id != access.tenant.id):
        refuse_not_found(user, f"tenant {slug}")
    if not access.tenant.is_active and access.role not in SEES_ALL_TENANTS:
        abort(403, description="This workspace is suspended. Contact your provider.")
    if not allowed(access.role, action):
        abort(403)
    if token is not None and token.scope == "read" and request.method not in ("GET", "HEAD"):
        abort(403, description="This token is read-only; create a token with write scope.")
    g.tenant, g.role = access.tenant, access.role
    set_scope(Scope(user_id=user.id, tenant_ids=frozenset({access.tenant.id}), role=access.role))
    return None


def _app() -> Flask:
    from flask import current_app

    return current_app._get_current_object()  # type: ignore[attr-defined]


def _clear(_exc: BaseException | None) -> None:
    set_scope(EMPTY)


def init_app(app: Flask) -> None:
    app.before_request(_gate)
    app.teardown_request(_clear)
