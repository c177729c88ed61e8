"""Marshmallow schemas of the API: what the OpenAPI document describes and responses dump."""

from __future__ import annotations

from flask import current_app
from marshmallow import EXCLUDE, Schema, fields, validate

CLIENT_ROLES = ("client_admin", "client_approver", "client_member")


class ProblemSchema(Schema):
    """An RFC 9457 problem document: every error under /api is one."""

    type = fields.String(metadata={"description": "A URI for the problem type (about:blank)."})
    title = fields.String(metadata={"description": "A short summary of the problem."})
    status = fields.Integer(metadata={"description": "The HTTP status code."})
    detail = fields.String(metadata={"description": "What happened here and what to do."})
    errors = fields.Dict(metadata={"description": "Validation messages by location and field."})


class PageArgs(Schema):
    """Keyset pagination: pass back ``next_cursor`` until it is null."""

    cursor = fields.String(load_default=None, metadata={
        "description": "Opaque cursor from a previous response's next_cursor."})
    limit = fields.Integer(load_default=lambda: current_app.config["API_PAGE_SIZE"],
                           validate=validate.Range(min=1, max=100),
                           metadata={"description": "Items per page, 1 to 100 (default API_PAGE_SIZE, 50)."})


class AuditArgs(PageArgs):
    side = fields.String(load_default=None, validate=validate.OneOf(("provider", "client", "system")),
                         metadata={"description": "Only events by this side (provider: the provider's people)."})


class MeSchema(Schema):
    id = fields.UUID(required=True)
    email = fields.String(required=True)
    name = fields.String(required=True)
    locale = fields.String(required=True)
    tenant = fields.String(required=True, metadata={"description": "Slug of the token's tenant."})
    scope = fields.String(required=True, metadata={"description": "read or write."})


class TenantSchema(Schema):
    slug = fields.String(required=True)
    name = fields.String(required=True)
    currency = fields.String(required=True)
    timezone = fields.String(required=True)
    locale = fields.String(required=True)


class MemberSchema(Schema):
    id = fields.UUID(required=True, metadata={"description": "The membership id."})
    user_id = fields.UUID(required=True)
    email = fields.String(required=True)
    name = fields.String(required=True)
    role = fields.String(required=True, validate=validate.OneOf(CLIENT_ROLES))
    signed_up = fields.Boolean(required=True, metadata={"description": "False while the invitation is pending."})
    mfa = fields.Boolean(required=True, metadata={"description": "Has a second factor."})
    created_at = fields.DateTime(required=True)


class InviteSchema(Schema):
    """Invite a person to the tenant of the URL; any other field (tenant_id...) is ignored."""

    class Meta:
        unknown = EXCLUDE  # mass assignment: never read a tenant (or anything else) from the body

    email = fields.Email(required=True, validate=validate.Length(max=254))
    name = fields.String(load_default="", validate=validate.Length(max=200))
    role = fields.String(load_default="client_member", validate=validate.OneOf(CLIENT_ROLES))


class AuditEventSchema(Schema):
    id = fields.UUID(required=True)
    occurred_at = fields.DateTime(required=True)
    actor = fields.String(allow_none=True, metadata={"description": "Who: an e-mail, or system."})
    actor_side = fields.String(required=True, metadata={"description": "provider, client or system."})
    action = fields.String(required=True)
    object_type = fields.String(allow_none=True)
    object_id = fields.String(allow_none=True)
    ip = fields.String(allow_none=True)


def page_of(item: type[Schema], name: str) -> type[Schema]:
    """A page envelope schema: ``{"items": [...], "next_cursor": str | null}``."""
    return Schema.from_dict({
        "items": fields.List(fields.Nested(item), required=True),
        "next_cursor": fields.String(allow_none=True, required=True,
                                     metadata={"description": "Cursor of the next page; null on the last."}),
    }, name=name)


TenantPageSchema = page_of(TenantSchema, "TenantPage")
MemberPageSchema = page_of(MemberSchema, "MemberPage")
AuditEventPageSchema = page_of(AuditEventSchema, "AuditEventPage")
