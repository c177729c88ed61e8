"""E-mail in over /api/v1: the intake address and its rotation, the registered senders, the quarantine.

The same services as the pages; the gate has checked the token, its tenant and scope, and the action:
the address is seen by whoever may upload (``tenant:mailin.view``); rotating it and the senders are the
client admin's or the provider admin's (``tenant:mailin.manage``); the quarantine is the client admin's
alone (``tenant:mailin.quarantine``). Another tenant's ids answer 404, like ids that do not exist.
"""

from __future__ import annotations

from flask import abort, g, request
from marshmallow import Schema, fields, validate

from portal.access import requires
from portal.api.views import _caller, _links, _refusals, blp
from portal.errors import problem
from portal.intake.mail import addresses, quarantine, senders
from portal.intake.mail.models import IntakeMail

REASON_CODES = list(quarantine.REASONS)


class AddressSchema(Schema):
    address = fields.String(allow_none=True, metadata={
        "description": "Where to mail documents; null until the client admin makes one (POST .../rotate)."})


class SenderSchema(Schema):
    id = fields.UUID(allow_none=True, metadata={"description": "Set for an added address (DELETE it by this id); "
                                                               "null for a user of the workspace."})
    email = fields.String(required=True)
    name = fields.String(allow_none=True)
    kind = fields.String(required=True, metadata={"enum": ["user", "added"]})


class SenderListSchema(Schema):
    items = fields.List(fields.Nested(SenderSchema), required=True)


class NewSenderSchema(Schema):
    email = fields.String(required=True, validate=validate.Length(min=3, max=254),
                          metadata={"example": "scanner@your-company.vn"})


class FileSchema(Schema):
    name = fields.String(required=True)
    size = fields.Integer(required=True)
    status = fields.String(metadata={"description": "Once released: stored, version, duplicate or refused."})
    message = fields.String(metadata={"description": "Once released: what happened to it, in a sentence."})
    document_id = fields.UUID(metadata={"description": "Once released: the document it is in."})


class HeldSchema(Schema):
    id = fields.UUID(required=True)
    sender = fields.String(required=True, metadata={"description": "The From address (empty when there was "
                                                                   "not exactly one)."})
    subject = fields.String(allow_none=True)
    reason = fields.String(required=True, metadata={"enum": REASON_CODES})
    reason_text = fields.String(required=True, metadata={"description": "The reason, in a sentence."})
    received_at = fields.DateTime(required=True)
    size = fields.Integer(required=True, metadata={"description": "Bytes of the whole message."})
    state = fields.String(required=True, metadata={"enum": ["held", "releasing", "released", "dropped"]})
    attachments = fields.List(fields.Nested(FileSchema), required=True)


class HeldListSchema(Schema):
    items = fields.List(fields.Nested(HeldSchema), required=True)


def _held_json(mail: IntakeMail) -> dict:
    return {"id": mail.id, "sender": mail.sender, "subject": mail.subject, "reason": mail.reason,
            "reason_text": str(quarantine.REASONS.get(mail.reason or "", mail.reason or "")),
            "received_at": mail.received_at, "size": mail.size, "state": mail.state,
            "attachments": quarantine.files_of(mail)}


@blp.route("/tenants/<tenant_slug>/mail-in/address")
@blp.response(200, AddressSchema)
@_refusals(401, 403, 404)
@requires("tenant:mailin.view")
def get_mail_address(tenant_slug: str) -> dict:
    """The workspace's intake address

    Mail sent here from a registered sender is stored like an upload (each attachment a document, read
    by intake); mail from anyone else waits in the quarantine.
    """
    return {"address": addresses.address_of(addresses.current(g.tenant))}


@blp.route("/tenants/<tenant_slug>/mail-in/address/rotate", methods=["POST"])
@blp.response(201, AddressSchema)
@_refusals(401, 403, 404, 409)
@requires("tenant:mailin.manage")
def rotate_mail_address(tenant_slug: str) -> tuple[dict, int]:
    """Make the intake address, or replace it

    The old address stops working at once (mail to it is refused with 550). Audited. 409 when mail-in is
    not configured on this portal (no `INTAKE_MAIL_DOMAIN`).
    """
    if not addresses.domain():
        abort(problem(409, "E-mail in is not configured on this portal (INTAKE_MAIL_DOMAIN)."))
    return {"address": addresses.rotate(_caller(), g.tenant, request.remote_addr)}, 201


@blp.route("/tenants/<tenant_slug>/mail-in/senders")
@blp.response(200, SenderListSchema)
@_refusals(401, 403, 404)
@requires("tenant:mailin.manage")
def list_mail_senders(tenant_slug: str) -> dict:
    """The registered senders

    The workspace's active users (kind `user`), then the addresses added (kind `added`).
    """
    return {"items": [{"id": s.id, "email": s.email, "name": s.name, "kind": "user" if s.is_person else "added"}
                      for s in senders.registered(g.tenant)]}


@blp.route("/tenants/<tenant_slug>/mail-in/senders", methods=["POST"])
@blp.arguments(NewSenderSchema, example={"email": "scanner@your-company.vn"})
@blp.response(201, SenderSchema)
@_links(201, RemoveSender=("delete", "/tenants/{tenant_slug}/mail-in/senders/{sender_id}",
                           {"sender_id": "$response.body#/id"}))
@_refusals(401, 403, 404, 422)
@requires("tenant:mailin.manage")
def add_mail_sender(body: dict, tenant_slug: str) -> tuple[dict, int]:
    """Register another sender address

    Its mail goes straight into the documents (attributed to the address in the access log). 422 for
    an address that is not one, or one already registered. Audited.
    """
    try:
        row = senders.add(_caller(), g.tenant, body["email"], request.remote_addr)
    except senders.SenderError as err:
        abort(problem(422, str(err)))
    return {"id": row.id, "email": row.email, "name": None, "kind": "added"}, 201


@blp.route("/tenants/<tenant_slug>/mail-in/senders/<sender_id>", methods=["DELETE"])
@blp.response(204)
@_refusals(401, 403, 404)
@requires("tenant:mailin.manage")
def remove_mail_sender(tenant_slug: str, sender_id: str) -> None:
    """Remove an added sender address

    Its mail waits in the quarantine from now on. Audited.
    """
    senders.remove(_caller(), g.tenant, sender_id, request.remote_addr)


@blp.route("/tenants/<tenant_slug>/mail-in/quarantine")
@blp.response(200, HeldListSchema)
@_refusals(401, 403, 404)
@requires("tenant:mailin.quarantine")
def list_quarantine(tenant_slug: str) -> dict:
    """The held messages, oldest first

    Held until the client admin releases or drops them.
    """
    return {"items": [_held_json(m) for m in quarantine.held(g.tenant)]}


@blp.route("/tenants/<tenant_slug>/mail-in/quarantine/<mail_id>/release", methods=["POST"])
@blp.response(200, HeldSchema)
@_refusals(401, 403, 404)
@requires("tenant:mailin.quarantine")
def release_mail(tenant_slug: str, mail_id: str) -> dict:
    """Release a held message

    Its attachments are stored as if it had been accepted, by the caller on the sender's behalf; each
    attachment's `status`, `message` and `document_id` say what happened. The message itself is deleted.
    Audited. 404 for a message that is not held (decided already, or not there).
    """
    return _held_json(quarantine.release(_caller(), g.tenant, mail_id, request.remote_addr).mail)


@blp.route("/tenants/<tenant_slug>/mail-in/quarantine/<mail_id>/drop", methods=["POST"])
@blp.response(200, HeldSchema)
@_refusals(401, 403, 404)
@requires("tenant:mailin.quarantine")
def drop_mail(tenant_slug: str, mail_id: str) -> dict:
    """Drop a held message

    It is deleted for good; who sent which subject, and why it was held, stay in the access log. Audited.
    """
    return _held_json(quarantine.drop(_caller(), g.tenant, mail_id, request.remote_addr))
