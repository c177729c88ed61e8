"""Marshmallow schemas of the API: what the OpenAPI document describes and responses dump."""

from __future__ import annotations

from flask import current_app
from marshmallow import EXCLUDE, Schema, fields, validate

from portal.api.pagination import MAX_CURSOR
from portal.documents.content import CATEGORIES
from portal.work import quality

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

    # Its limits are checked with the rest of its shape (400, "the cursor is not valid"); stated here too.
    cursor = fields.String(load_default=None, metadata={
        "description": "Opaque cursor from a previous response's next_cursor; leave it out for the first page.",
        "minLength": 1, "maxLength": MAX_CURSOR})
    limit = fields.Integer(load_default=lambda: current_app.config["API_PAGE_SIZE"],
                           validate=validate.Range(min=1, max=100),
                           metadata={"description": "Items per page, 1 to 100 (default API_PAGE_SIZE, 50)."})


class AuditArgs(PageArgs):
    side = fields.String(load_default=None, validate=validate.OneOf(("provider", "client", "system")),
                         metadata={"description": "Only events by this side (provider: the provider's people)."})
    kind = fields.String(load_default=None, metadata={
        "description": "Only one kind of event: documents, work, people, security or workspace."})
    since = fields.Date(data_key="from", load_default=None, metadata={
        "description": "Only events on or after this day (YYYY-MM-DD), in the tenant's time zone."})
    until = fields.Date(data_key="to", load_default=None, metadata={
        "description": "Only events on or before this day (YYYY-MM-DD, the whole day), in the tenant's time zone; "
                       "not before `from`."})


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


# --- documents ------------------------------------------------------------------------------



class DocumentArgs(PageArgs):
    category = fields.String(load_default=None, validate=validate.OneOf(CATEGORIES))
    period = fields.String(load_default=None, metadata={"description": "Month, YYYY-MM."})
    tag = fields.String(load_default=None)
    q = fields.String(load_default=None, metadata={"description": "Part of the document's name."})


class VersionSchema(Schema):
    number = fields.Integer(required=True)
    filename = fields.String(required=True, metadata={"description": "Sanitised name, for display only."})
    size = fields.Integer(required=True, metadata={"description": "Bytes of the plaintext."})
    mime = fields.String(required=True, metadata={"description": "Type decided from the content."})
    sha256 = fields.String(required=True)
    uploaded_at = fields.DateTime(required=True)
    uploaded_by = fields.String(allow_none=True)


class TrashInfoSchema(Schema):
    """Where a document in the trash stands: who removed it, when, why, and when it goes for good."""

    trashed_at = fields.DateTime(required=True)
    trashed_by = fields.String(allow_none=True, metadata={"description": "Who removed it (their name)."})
    reason = fields.String(required=True, metadata={"description": "Why it was removed."})
    purge_on = fields.Date(required=True, metadata={
        "description": "The day it is deleted for good (in the tenant's time zone) unless the provider restores "
                       "it before then."})


class DocumentSchema(Schema):
    id = fields.UUID(required=True)
    title = fields.String(required=True)
    category = fields.String(required=True, validate=validate.OneOf(CATEGORIES))
    period = fields.String(allow_none=True, metadata={"description": "Month, YYYY-MM."})
    tags = fields.List(fields.String(), required=True)
    current_version = fields.Integer(required=True)
    preview = fields.String(required=True, metadata={"description": "pending, ready, none or failed."})
    created_at = fields.DateTime(required=True)
    versions = fields.List(fields.Nested(VersionSchema), metadata={"description": "Newest first."})
    trash = fields.Nested(TrashInfoSchema, allow_none=True, metadata={
        "description": "Set while the document is in the trash (only those who may see the trash find it then)."})


class RefileSchema(Schema):
    class Meta:
        unknown = EXCLUDE  # a tenant_id (or anything else) in the body is ignored

    # A partial update: fields left out stay as they are.
    title = fields.String(validate=validate.Length(min=1, max=200), metadata={
        "description": "Rename it: 1 to 200 characters, trimmed (spaces alone are refused)."})
    category = fields.String(validate=validate.OneOf(CATEGORIES))
    period = fields.String(allow_none=True, metadata={"description": "Month, YYYY-MM; null clears it."})
    tags = fields.List(fields.String(validate=validate.Length(max=40)))


class TrashArgs(Schema):
    # Checked by the service once the document is found, so another tenant's document is a 404 whatever it says.
    reason = fields.String(load_default="", metadata={
        "description": "Why it is removed: required, 1 to 300 characters. Both sides read it."})


class DownloadArgs(Schema):
    version = fields.Integer(load_default=None, validate=validate.Range(min=1), metadata={
        "description": "The version to download (its `number`); the latest when left out."})


class UploadResultSchema(Schema):
    name = fields.String(required=True)
    status = fields.String(required=True, metadata={"description": "stored, version, duplicate or refused."})
    message = fields.String(required=True)
    code = fields.String(allow_none=True, metadata={"description": "Why a file was refused, e.g. type_not_allowed."})
    document = fields.Nested(DocumentSchema, allow_none=True)


class UploadAnswerSchema(Schema):
    results = fields.List(fields.Nested(UploadResultSchema), required=True)


class RequestItemSchema(Schema):
    id = fields.UUID(required=True)
    description = fields.String(required=True)
    category = fields.String(required=True)
    due_date = fields.Date(allow_none=True)
    fulfilled_at = fields.DateTime(allow_none=True)
    document_id = fields.UUID(allow_none=True)
    state = fields.String(required=True, metadata={
        "description": "outstanding, received, or not_applicable (answered without a document, with a reason)."})
    not_applicable_at = fields.DateTime(allow_none=True)
    not_applicable_reason = fields.String(allow_none=True, metadata={
        "description": "Why the client does not have it (set while the state is not_applicable)."})


class DocumentRequestSchema(Schema):
    id = fields.UUID(required=True)
    title = fields.String(required=True)
    note = fields.String(allow_none=True)
    created_at = fields.DateTime(required=True)
    items = fields.List(fields.Nested(RequestItemSchema), required=True)


class RequestItemInput(Schema):
    class Meta:
        unknown = EXCLUDE

    description = fields.String(required=True, validate=validate.Length(min=1, max=300))
    category = fields.String(load_default="other", validate=validate.OneOf(CATEGORIES))
    due_date = fields.Date(load_default=None, allow_none=True)


class NotApplicableInput(Schema):
    class Meta:
        unknown = EXCLUDE

    # Checked by the service once the item is found, so another tenant's item is a 404 whatever the body.
    reason = fields.String(load_default="", metadata={
        "description": "Why the client does not have this document: required, 1 to 300 characters."})


class DocumentRequestInput(Schema):
    class Meta:
        unknown = EXCLUDE

    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    note = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=2000))
    items = fields.List(fields.Nested(RequestItemInput), required=True, validate=validate.Length(min=1, max=30))


DocumentPageSchema = page_of(DocumentSchema, "DocumentPage")
DocumentRequestListSchema = Schema.from_dict({"items": fields.List(fields.Nested(DocumentRequestSchema))},
                                             name="DocumentRequestList")


# --- work ---------------------------------------------------------------------------------

class TaskCommentSchema(Schema):
    id = fields.UUID(required=True)
    author = fields.String(allow_none=True)
    body = fields.String(required=True)
    kind = fields.String(required=True, metadata={"description": "comment, question or answer."})
    internal = fields.Boolean(required=True, metadata={"description": "Staff only; never in a client's answer."})
    created_at = fields.DateTime(required=True)


class ServiceLineSchema(Schema):
    key = fields.String(required=True, metadata={"description": "What `service_line` and `line` take."})
    name = fields.String(required=True)
    needs_approval = fields.Boolean(required=True, metadata={
        "description": "Its tasks go to the client for approval after review."})


ServiceLineListSchema = Schema.from_dict({"items": fields.List(fields.Nested(ServiceLineSchema), required=True)},
                                         name="ServiceLineList")


class TaskSchema(Schema):
    id = fields.UUID(required=True)
    title = fields.String(required=True)
    description = fields.String(allow_none=True)
    service_line = fields.String(required=True)
    state = fields.String(required=True)
    state_label = fields.String(required=True, metadata={"description": "The state in words for the caller."})
    priority = fields.Integer(required=True)
    due_date = fields.Date(allow_none=True)
    allowed_moves = fields.List(fields.String(), required=True,
                                metadata={"description": "Moves the caller can make now."})
    comments = fields.List(fields.Nested(TaskCommentSchema))
    product = fields.Dict(allow_none=True, metadata={
        "description": "The work product to approve: document_id, version, sha256, approved."})


class TaskInput(Schema):
    class Meta:
        unknown = EXCLUDE  # a tenant_id in the body is ignored: the tenant is the URL's

    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    description = fields.String(load_default=None, allow_none=True)
    service_line = fields.String(required=True)
    priority = fields.Integer(load_default=3, validate=validate.Range(min=1, max=4))
    due_date = fields.Date(load_default=None, allow_none=True)
    assignee_id = fields.UUID(load_default=None, allow_none=True)
    reviewer_id = fields.UUID(load_default=None, allow_none=True)


class MoveInput(Schema):
    class Meta:
        unknown = EXCLUDE

    # Checked by the service after the task is found, so another tenant's task is a 404 whatever the body.
    move = fields.String(load_default="", metadata={
        "description": "start, submit, ask_client, answer, approve, request_changes, client_approve, "
                       "client_reject, cancel"})
    reason = fields.String(load_default=None, allow_none=True)
    seen_sha256 = fields.String(load_default=None, allow_none=True, metadata={
        "description": "client_approve: the SHA-256 of the work product version approved (from the task)."})


class CommentInput(Schema):
    class Meta:
        unknown = EXCLUDE

    body = fields.String(load_default="", metadata={"description": "1 to 5000 characters."})
    internal = fields.Boolean(load_default=False)


class TaskArgs(PageArgs):
    state = fields.String(load_default=None, metadata={"description": "Only tasks in this state, e.g. `open`."})
    line = fields.String(load_default=None, metadata={"description": "Only this service line, e.g. `payroll`."})
    unassigned = fields.Boolean(load_default=False, metadata={
        "description": "Only tasks nobody has taken: with `state=open`, the line's queue."})


TaskPageSchema = page_of(TaskSchema, "TaskPage")


class ExportSchema(Schema):
    """An export of everything the client owns: one 7z archive, encrypted with a passphrase shown once."""

    id = fields.UUID(required=True)
    state = fields.String(required=True, metadata={
        "description": "queued, building, ready, fetched (downloaded and deleted), expired (deleted) or failed."})
    files_done = fields.Integer(required=True)
    files_total = fields.Integer(required=True)
    percent = fields.Integer(required=True)
    size = fields.Integer(allow_none=True, metadata={"description": "Bytes of the archive, once ready."})
    passphrase_available = fields.Boolean(required=True, metadata={
        "description": "Whether the passphrase can still be taken (once) from POST …/passphrase."})
    created_at = fields.DateTime(required=True)
    ready_at = fields.DateTime(allow_none=True)
    expires_at = fields.DateTime(allow_none=True, metadata={"description": "Deleted then if not downloaded."})
    fetched_at = fields.DateTime(allow_none=True)


class ExportListSchema(Schema):
    items = fields.List(fields.Nested(ExportSchema), required=True)


class PassphraseSchema(Schema):
    passphrase = fields.String(required=True, metadata={"description": "Shown this once; not kept by the portal."})


# --- quality checks ------------------------------------------------------------------------------

QUALITY_FINDINGS = tuple(quality.FINDINGS)
QUALITY_KINDS = tuple(quality.KINDS)


class QualityCheckSchema(Schema):
    """A finished task drawn at random for a second check (the provider's people only)."""

    id = fields.UUID(required=True)
    task_id = fields.UUID(required=True)
    state = fields.String(required=True, metadata={"description": "open (waiting or being checked) or done."})
    percent = fields.Float(required=True, metadata={"description": "The sampling rate it was drawn at, in percent."})
    drawn_at = fields.DateTime(required=True)
    checker = fields.String(allow_none=True, metadata={"description": "Who is checking (or checked) it."})
    taken_at = fields.DateTime(allow_none=True)
    finding = fields.String(allow_none=True, metadata={"description": "none, minor or major, once done."})
    kind = fields.String(allow_none=True, metadata={"description": ", ".join(QUALITY_KINDS)})
    note = fields.String(allow_none=True, metadata={"description": "Internal: never shown to the client."})
    checked_at = fields.DateTime(allow_none=True)
    reworked = fields.Boolean(required=True, metadata={"description": "The check sent the work back."})


QualityCheckPageSchema = page_of(QualityCheckSchema, "QualityCheckPage")


class QualityCheckArgs(PageArgs):
    state = fields.String(load_default="open", validate=validate.OneOf(("open", "done")), metadata={
        "description": "open: the checks waiting or being done (the queue, oldest first); done: the finished."})


class QualityTakeSchema(Schema):
    check = fields.Nested(QualityCheckSchema, allow_none=True, required=True, metadata={
        "description": "The check now yours, or null when none waits for you."})


class FindingsInput(Schema):
    class Meta:
        unknown = EXCLUDE

    # Checked by the service after the task and its check are found (another tenant's task: 404 whatever the body).
    finding = fields.String(load_default="", metadata={"description": ", ".join(QUALITY_FINDINGS)})
    kind = fields.String(load_default=None, allow_none=True, metadata={
        "description": "With findings: " + ", ".join(QUALITY_KINDS)})
    note = fields.String(load_default=None, allow_none=True, metadata={
        "description": "What was wrong (required with findings; up to 2000 characters)."})
    rework = fields.Boolean(load_default=False, metadata={
        "description": "Send the work back to whoever holds it (with findings, and while the task is done)."})


class QualityRateSchema(Schema):
    service_line = fields.String(required=True)
    provider_percent = fields.Float(allow_none=True, metadata={"description": "The rate for every client."})
    tenant_percent = fields.Float(allow_none=True, metadata={"description": "This tenant's own rate, if any."})
    effective_percent = fields.Float(required=True, metadata={"description": "The rate its finished tasks are "
                                                                             "drawn at."})


QualityRateListSchema = Schema.from_dict({"items": fields.List(fields.Nested(QualityRateSchema), required=True)},
                                         name="QualityRateList")


class QualityRateInput(Schema):
    class Meta:
        unknown = EXCLUDE

    percent = fields.Decimal(load_default=None, allow_none=True, metadata={
        "description": "0 to 100, two decimals at most; null: use the rate for every client again."})
