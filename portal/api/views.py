"""The /api/v1 endpoints. Bearer tokens only; the gate has checked the token, its tenant,
its scope and the declared action before any of these run.

Each view parses its input (marshmallow, through flask-smorest), calls the same
services as the pages, and returns a dict dumped by its response schema.
``@requires`` sits closest to the function: flask-smorest's wrappers copy the
function's attributes (``functools.wraps``), so the gate still finds ``_action``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from http import HTTPStatus
from typing import TypeVar

from flask import Response, abort, g, request
from flask_smorest import Blueprint

from portal.access import requires
from portal.api import schemas
from portal.api.pagination import decode_seq_cursor, decode_time_id_cursor, encode_cursor
from portal.auth.services import visible_tenants
from portal.clients import services
from portal.errors import problem
from tenants.audit import AuditEvent
from tenants.models import ApiToken, Membership, User

F = TypeVar("F", bound=Callable)

blp = Blueprint("api_v1", __name__, url_prefix="/api/v1",
                description="The portal's JSON API. Authenticate with a personal access token: "
                            "`Authorization: Bearer bop_...`. A token works in one tenant only.")


@blp.after_request
def _no_store(response: Response) -> Response:
    # Answers carry people's data: no shared cache may keep them.
    response.headers["Cache-Control"] = "no-store"
    return response


def _refusals(*codes: int) -> Callable[[F], F]:
    """Document the problem+json answers an endpoint may give besides its success."""

    def decorate(view: F) -> F:
        for code in codes:
            view = blp.alt_response(code, HTTPStatus(code).name)(view)
        return view

    return decorate


def _links(status: int, **links: tuple[str, str, dict[str, str]]) -> Callable[[F], F]:
    """Document OpenAPI links from the operation's ``status`` answer to the operations that take what it gives:
    ``Name=(method, path under /api/v1, {parameter: runtime expression})``. A client (and the contract test's
    stateful phase) follows them from a thing created or listed to reading it and acting on it; the tenant is
    always the request's own (``$request.path.tenant_slug``)."""

    def ref(method: str, path: str) -> str:
        pointer = (blp.url_prefix + path).replace("~", "~0").replace("/", "~1")
        return f"#/paths/{pointer}/{method}"

    return blp.doc(responses={status: {"links": {
        name: {"operationRef": ref(method, path),
               "parameters": {"tenant_slug": "$request.path.tenant_slug", **parameters}}
        for name, (method, path, parameters) in links.items()}}})


def _token() -> ApiToken:
    return g.api_token


def _caller() -> User:
    return _token().user


def _member(m: Membership) -> dict:
    return {"id": m.id, "user_id": m.user_id, "email": m.user.email, "name": m.user.name,
            "role": m.role, "signed_up": m.user.password_hash is not None,
            "mfa": m.user.has_mfa, "created_at": m.created_at}


def _event(e: AuditEvent) -> dict:
    return {"id": e.id, "occurred_at": e.occurred_at, "actor": e.who,
            "actor_side": e.actor_side, "action": e.action, "object_type": e.object_type,
            "object_id": e.object_id, "ip": e.address}


@blp.route("/me")
@blp.response(200, schemas.MeSchema)
@_refusals(401)
@requires("account:manage")
def me() -> dict:
    """The token's owner

    Who the token acts for, and the tenant and scope it is limited to.
    """
    token, user = _token(), _caller()
    return {"id": user.id, "email": user.email, "name": user.name, "locale": user.locale,
            "tenant": token.tenant.slug, "scope": token.scope}


@blp.route("/tenants")
@blp.response(200, schemas.TenantPageSchema)
@_refusals(401)
@requires("account:manage")
def tenants() -> dict:
    """Tenants the caller can open

    A token is scoped to one tenant: the list holds at most that one.
    """
    token = _token()
    items = [t for t in visible_tenants(_caller()) if t.id == token.tenant_id]
    return {"items": items, "next_cursor": None}


@blp.route("/tenants/<tenant_slug>/users")
@blp.arguments(schemas.PageArgs, location="query", as_kwargs=True)
@blp.response(200, schemas.MemberPageSchema)
@_refusals(400, 401, 403, 404)
@requires("tenant:users.view")
def list_users(tenant_slug: str, cursor: str | None, limit: int) -> dict:
    """The tenant's users

    In the order they joined. Pass `next_cursor` back as `cursor` until it is null.
    """
    rows = services.members(after=decode_time_id_cursor(cursor), limit=limit + 1)
    page = rows[:limit]
    next_cursor = encode_cursor([page[-1].created_at.isoformat(), str(page[-1].id)]) if len(rows) > limit else None
    return {"items": [_member(m) for m in page], "next_cursor": next_cursor}


@blp.route("/tenants/<tenant_slug>/users", methods=["POST"])
@blp.arguments(schemas.InviteSchema, example={"email": "lan.nguyen@example.vn", "name": "Nguyễn Thị Lan",
                                             "role": "client_member"})
@blp.response(201, schemas.MemberSchema)
@_links(201, ResendInvitation=("post", "/tenants/{tenant_slug}/users/{membership_id}/resend-invitation",
                               {"membership_id": "$response.body#/id"}))
@_refusals(401, 403, 404, 409)
@requires("tenant:users.manage")
def invite_user(body: dict, tenant_slug: str) -> dict:
    """Invite a user

    The person receives a single-use link by e-mail and is pending (`signed_up`
    false) until they set a password. Needs a token with write scope.
    """
    try:
        membership = services.invite_member(_caller(), g.tenant, body["email"], body["name"],
                                            body["role"], request.remote_addr)
    except services.ClientError as err:
        abort(err.status, description=str(err))
    return _member(membership)


@blp.route("/tenants/<tenant_slug>/users/<membership_id>/resend-invitation", methods=["POST"])
@blp.response(200, schemas.MemberSchema)
@_refusals(401, 403, 404, 409, 429)
@requires("tenant:users.manage")
def resend_invitation(tenant_slug: str, membership_id: str) -> dict:
    """Resend a user's invitation

    E-mails a person still pending (`signed_up` false) a fresh single-use link, in their
    language; the link sent before stops working. 409 when they have signed up already (or
    are disabled), 429 (with `Retry-After`) within a minute of the last invitation. Needs a
    token with write scope.
    """
    try:
        membership = services.resend_invitation(_caller(), g.tenant, membership_id, request.remote_addr)
    except services.TooSoon as err:
        answer = problem(err.status, str(err))
        answer.headers["Retry-After"] = str(err.retry_after)
        abort(answer)
    except services.ClientError as err:
        abort(err.status, description=str(err))
    return _member(membership)


@blp.route("/tenants/<tenant_slug>/audit-events")
@blp.arguments(schemas.AuditArgs, location="query", as_kwargs=True)
@blp.response(200, schemas.AuditEventPageSchema)
@_refusals(400, 401, 403, 404, 422)
@requires("tenant:audit.view")
def audit_events(tenant_slug: str, cursor: str | None, limit: int, side: str | None, kind: str | None,
                 since: date | None, until: date | None) -> dict:
    """The tenant's access log

    Newest first; `side=provider` keeps only what the provider's people did, `kind` one kind of event,
    `from` and `to` the days between (both included, in the tenant's time zone). A client's token never
    sees internal events.
    """
    try:
        page = services.audit_events(before=decode_seq_cursor(cursor), side=side, kind=kind, since=since,
                                     until=until, limit=limit)
    except services.ClientError as err:
        abort(err.status, description=str(err))
    next_cursor = encode_cursor([page.next_before]) if page.next_before else None
    return {"items": [_event(e) for e in page.events], "next_cursor": next_cursor}
