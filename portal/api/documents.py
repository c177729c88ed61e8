"""The vault's API endpoints: documents (list, upload, read, re-file, download, trash, restore) and requests.

Same services as the pages (``portal.documents``); the gate has checked the token,
its tenant and scope, and the action, before any of these run.
"""

from __future__ import annotations

from flask import abort, g, request
from flask_babel import gettext as _
from werkzeug.exceptions import ServiceUnavailable

from portal.access import requires
from portal.api import schemas
from portal.api.pagination import decode_time_id_cursor, encode_cursor
from portal.api.views import _caller, _links, _refusals, blp
from portal.documents import receive, requests, services, trash
from portal.documents.models import Document, DocumentRequest, RequestItem
from portal.documents.requests import ItemInput
from portal.documents.views import attachment
from tenants.outages import RETRY_AFTER


def document_json(doc: Document, *, versions: bool = True) -> dict:
    """A document as the API shows it (versions newest first)."""
    out = {"id": doc.id, "title": doc.title, "category": doc.category,
           "period": doc.period.strftime("%Y-%m") if doc.period else None, "tags": list(doc.tags),
           "current_version": doc.current_version, "preview": doc.latest.object.preview,
           "created_at": doc.created_at, "trash": None}
    if doc.trashed_at is not None:
        out["trash"] = {"trashed_at": doc.trashed_at, "reason": doc.trash_reason, "purge_on": trash.purge_date(doc),
                        "trashed_by": doc.trashed_by.name if doc.trashed_by else None}
    if versions:
        out["versions"] = [{"number": v.number, "filename": v.filename, "size": v.object.size,
                            "mime": v.object.mime, "sha256": v.object.sha256, "uploaded_at": v.created_at,
                            "uploaded_by": v.uploaded_by.name if v.uploaded_by else None} for v in doc.versions]
    return out


def _item_state(item: RequestItem) -> str:
    return "received" if item.fulfilled_at else "not_applicable" if item.not_applicable_at else "outstanding"


def _request_json(req: DocumentRequest) -> dict:
    return {"id": req.id, "title": req.title, "note": req.note, "created_at": req.created_at,
            "items": [{"id": i.id, "description": i.description, "category": i.category, "due_date": i.due_date,
                       "fulfilled_at": i.fulfilled_at, "document_id": i.document_id, "state": _item_state(i),
                       "not_applicable_at": i.not_applicable_at, "not_applicable_reason": i.not_applicable_reason}
                      for i in req.items]}


@blp.route("/tenants/<tenant_slug>/documents")
@blp.arguments(schemas.DocumentArgs, location="query", as_kwargs=True)
@blp.response(200, schemas.DocumentPageSchema)
@_links(200, GetDocument=("get", "/tenants/{tenant_slug}/documents/{document_id}",
                          {"document_id": "$response.body#/items/0/id"}),
        DownloadDocument=("get", "/tenants/{tenant_slug}/documents/{document_id}/content",
                          {"document_id": "$response.body#/items/0/id"}),
        GetIntake=("get", "/tenants/{tenant_slug}/documents/{document_id}/intake",
                   {"document_id": "$response.body#/items/0/id"}))
@_refusals(400, 401, 403, 404)
@requires("tenant:documents.view")
def list_documents(tenant_slug: str, cursor: str | None, limit: int, category: str | None,
                   period: str | None, tag: str | None, q: str | None) -> dict:
    """The tenant's documents

    Newest first. A client member's token sees only that member's own uploads.
    """
    page = services.list_documents(_caller(), category=category, period=services.parse_period(period),
                                   tag=tag, q=q, after=decode_time_id_cursor(cursor), limit=limit)
    key = page.next_key
    return {"items": [document_json(d, versions=False) for d in page.documents],
            "next_cursor": encode_cursor([key[0].isoformat(), str(key[1])]) if key else None}


UPLOAD_BODY = {
    "required": True,
    "content": {"multipart/form-data": {"schema": {
        "type": "object",
        "description": "Fields first, then one or more `file` parts; each file is streamed, sniffed, "
                       "encrypted and stored on its own. Fields apply to the files after them.",
        "properties": {
            "category": {"type": "string", "enum": list(schemas.CATEGORIES)},
            "period": {"type": "string", "description": "Month, YYYY-MM."},
            "tags": {"type": "string", "description": "Comma-separated."},
            "document": {"type": "string", "format": "uuid", "description": "Upload a new version of it."},
            "item": {"type": "string", "format": "uuid", "description": "Fulfil this document request item."},
            "file": {"type": "array", "items": {"type": "string", "format": "binary"}},
        },
        "required": ["file"],
    }}},
}


@blp.route("/tenants/<tenant_slug>/documents", methods=["POST"])
@blp.doc(requestBody=UPLOAD_BODY)
@blp.response(201, schemas.UploadAnswerSchema)
@_refusals(400, 401, 403, 404, 413, 422, 503)
@requires("tenant:documents.upload")
def upload_documents(tenant_slug: str) -> tuple[dict, int]:
    """Upload documents

    Answers 201 when at least one file was stored (or linked to an identical one),
    422 when every file was refused; each result says what happened and why. 503 (with
    `Retry-After`) when no file was stored because a part of the service was briefly down:
    nothing was kept, send the files again. A file not stored for that reason among stored ones
    has the code `unavailable`.
    """
    results = receive.receive(request, _caller(), g.tenant)
    answer = {"results": [{"name": r.name, "status": r.status, "message": r.message, "code": r.code,
                           "document": document_json(r.document) if r.document else None} for r in results]}
    if not any(r.ok for r in results):
        if receive.unavailable(results):
            why = next(r.message for r in results if r.code == receive.UNAVAILABLE)
            raise ServiceUnavailable(description=_("No file was stored: %(why)s", why=why), retry_after=RETRY_AFTER)
        abort(422, description=_("No file was stored: %(why)s", why=results[0].message))
    return answer, 201


@blp.route("/tenants/<tenant_slug>/documents/<document_id>")
@blp.response(200, schemas.DocumentSchema)
@_refusals(401, 403, 404)
@requires("tenant:documents.view")
def get_document(tenant_slug: str, document_id: str) -> dict:
    """A document and its versions

    Reading it is written to the tenant's access log. A document in the trash is found only by
    those who may see the trash (its `trash` says until when); for anyone else it is a 404.
    """
    return document_json(services.view_document(_caller(), g.tenant, document_id, request.remote_addr,
                                                with_trash=trash.sees_trash()))


@blp.route("/tenants/<tenant_slug>/documents/<document_id>", methods=["PATCH"])
@blp.arguments(schemas.RefileSchema, example={"title": "Hoá đơn điện tháng 5", "category": "invoice",
                                             "period": "2026-05", "tags": ["electricity"]})
@blp.response(200, schemas.DocumentSchema)
@_refusals(401, 403, 404, 422)
@requires("tenant:documents.refile")
def refile_document(body: dict, tenant_slug: str, document_id: str) -> dict:
    """Rename or re-file a document

    Set its title, category, month or tags; fields left out stay as they are.
    """
    doc = services.refile(_caller(), g.tenant, document_id, ip=request.remote_addr,
                          **{k: body[k] for k in ("title", "category", "period", "tags") if k in body})
    return document_json(doc)


@blp.route("/tenants/<tenant_slug>/documents/<document_id>", methods=["DELETE"])
@blp.arguments(schemas.TrashArgs, location="query", as_kwargs=True)
@blp.response(200, schemas.DocumentSchema)
@_refusals(401, 403, 404, 409, 422)
@requires("tenant:documents.trash")
def trash_document(tenant_slug: str, document_id: str, reason: str) -> dict:
    """Remove a document to the trash

    Give the reason as the `reason` query parameter (required, 1 to 300 characters): a DELETE
    carries no body. The document leaves the lists, downloads and previews at once and is deleted
    for good on `trash.purge_on` (after `TRASH_RETENTION_DAYS`, 90 by default) unless the provider
    restores it. A request item it fulfilled is outstanding again. 409 while it is the work product
    of a task not finished yet, or once it was approved as one (the answer names the task). Client
    members may not remove documents.
    """
    return document_json(trash.trash(_caller(), g.tenant, document_id, reason=reason, ip=request.remote_addr).document)


@blp.route("/tenants/<tenant_slug>/documents/<document_id>/restore", methods=["POST"])
@blp.response(200, schemas.DocumentSchema)
@_refusals(401, 403, 404, 409)
@requires("tenant:documents.restore")
def restore_document(tenant_slug: str, document_id: str) -> dict:
    """Restore a document from the trash

    The provider's managers and admins, until its purge day. It comes back with all its versions;
    409 when it is not in the trash.
    """
    return document_json(trash.restore(_caller(), g.tenant, document_id, ip=request.remote_addr))


@blp.route("/tenants/<tenant_slug>/documents/<document_id>/content")
@blp.arguments(schemas.DownloadArgs, location="query", as_kwargs=True)
@blp.doc(responses={"200": {"description": "The file, as an attachment, with the type its content was found to be "
                                           "(the version's `mime`).",
                            "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}}})
@_refusals(401, 403, 404, 410, 502)
@requires("tenant:documents.view")
def download_document(tenant_slug: str, document_id: str, version: int | None):  # noqa: ANN201
    """Download a document

    The latest version, or `?version=N` (404 for a version it does not have). Written to the tenant's
    access log. A stored copy that fails its integrity check answers 502 (410: its key was destroyed)
    before any byte. A file over the server's verify limit (`DOWNLOAD_VERIFY_MAX_MB`, 16 MiB by default) is
    streamed as it is authenticated: if a later part fails, the connection is dropped before
    `Content-Length` bytes arrived, so treat a short body as a failed download.
    """
    return attachment(services.download(_caller(), g.tenant, document_id, version=version, ip=request.remote_addr))


@blp.route("/tenants/<tenant_slug>/document-requests")
@blp.response(200, schemas.DocumentRequestListSchema)
@_links(200, GetDocumentRequest=("get", "/tenants/{tenant_slug}/document-requests/{request_id}",
                                 {"request_id": "$response.body#/items/0/id"}))
@_refusals(401, 403, 404)
@requires("tenant:requests.view")
def list_document_requests(tenant_slug: str) -> dict:
    """Document requests

    Newest first, with their items and whether each was fulfilled.
    """
    return {"items": [_request_json(r) for r in requests.list_requests()]}


@blp.route("/tenants/<tenant_slug>/document-requests", methods=["POST"])
@blp.arguments(schemas.DocumentRequestInput, example={
    "title": "Year-end papers 2026", "note": "Everything for the annual accounts, please.",
    "items": [{"description": "December bank statement", "category": "bank_statement", "due_date": "2027-01-10"},
              {"description": "Stock count sheet", "category": "other"}]})
@blp.response(201, schemas.DocumentRequestSchema)
@_links(201, GetDocumentRequest=("get", "/tenants/{tenant_slug}/document-requests/{request_id}",
                                 {"request_id": "$response.body#/id"}),
        ItemNotApplicable=("post", "/tenants/{tenant_slug}/document-requests/{request_id}/items/{item_id}"
                                   "/not-applicable", {"request_id": "$response.body#/id",
                                                       "item_id": "$response.body#/items/0/id"}),
        ItemReopen=("post", "/tenants/{tenant_slug}/document-requests/{request_id}/items/{item_id}/reopen",
                    {"request_id": "$response.body#/id", "item_id": "$response.body#/items/0/id"}))
@_refusals(401, 403, 404, 422)
@requires("tenant:requests.manage")
def create_document_request(body: dict, tenant_slug: str) -> dict:
    """Ask the client for documents

    The client's people get an e-mail with a link (no document names in it).
    """
    items = [ItemInput(i["description"], i["category"], i["due_date"].isoformat() if i.get("due_date") else None)
             for i in body["items"]]
    created = requests.create_request(_caller(), g.tenant, title=body["title"], note=body.get("note"),
                                      items=items, ip=request.remote_addr)
    return _request_json(created)


@blp.route("/tenants/<tenant_slug>/document-requests/<request_id>")
@blp.response(200, schemas.DocumentRequestSchema)
@_refusals(401, 403, 404)
@requires("tenant:requests.view")
def get_document_request(tenant_slug: str, request_id: str) -> dict:
    """A document request"""
    return _request_json(requests.get_request(request_id))


@blp.route("/tenants/<tenant_slug>/document-requests/<request_id>/items/<item_id>/not-applicable", methods=["POST"])
@blp.arguments(schemas.NotApplicableInput, example={"reason": "We had no stock at the year end."})
@blp.response(200, schemas.DocumentRequestSchema)
@_refusals(401, 403, 404, 409, 422)
@requires("tenant:requests.answer")
def item_not_applicable(body: dict, tenant_slug: str, request_id: str, item_id: str) -> dict:
    """Answer an item "not applicable"

    The client says they do not have this document, with a `reason` (required, 1 to 300
    characters) that the provider reads. The item is then resolved: not outstanding, never
    overdue, no reminders. 409 when it was received or answered already.
    """
    item = requests.mark_not_applicable(_caller(), g.tenant, request_id, item_id, reason=body["reason"],
                                        ip=request.remote_addr)
    return _request_json(item.request)


@blp.route("/tenants/<tenant_slug>/document-requests/<request_id>/items/<item_id>/reopen", methods=["POST"])
@blp.response(200, schemas.DocumentRequestSchema)
@_refusals(401, 403, 404, 409)
@requires("tenant:requests.manage")
def item_reopen(tenant_slug: str, request_id: str, item_id: str) -> dict:
    """Reopen an item answered "not applicable"

    The provider still needs the document: the item is outstanding again. 409 when it is not
    answered "not applicable".
    """
    item = requests.reopen_item(_caller(), g.tenant, request_id, item_id, ip=request.remote_addr)
    return _request_json(item.request)
