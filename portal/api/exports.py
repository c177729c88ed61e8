"""The API of exports: everything a client owns, as one encrypted archive (the same services as the pages)."""

from __future__ import annotations

from flask import g, request

from portal.access import requires
from portal.api import schemas
from portal.api.views import _caller, _links, _refusals, blp
from portal.documents.views import attachment
from portal.offboarding import export
from portal.offboarding.models import TenantExport


def export_json(item: TenantExport) -> dict:
    """An export as the API shows it."""
    return {"id": item.id, "state": item.state, "files_done": item.files_done, "files_total": item.files_total,
            "percent": item.percent, "size": item.size,
            "passphrase_available": item.state == "ready" and item.passphrase_shown_at is None,
            "created_at": item.created_at, "ready_at": item.ready_at, "expires_at": item.expires_at,
            "fetched_at": item.fetched_at}


@blp.route("/tenants/<tenant_slug>/exports")
@blp.response(200, schemas.ExportListSchema)
@_refusals(401, 403, 404)
@requires("tenant:export.manage")
def list_exports(tenant_slug: str) -> dict:
    """The tenant's exports

    The 20 newest, newest first.
    """
    return {"items": [export_json(e) for e in export.exports()]}


@blp.route("/tenants/<tenant_slug>/exports", methods=["POST"])
@blp.response(202, schemas.ExportSchema)
@_links(202, GetExport=("get", "/tenants/{tenant_slug}/exports/{export_id}", {"export_id": "$response.body#/id"}),
        TakePassphrase=("post", "/tenants/{tenant_slug}/exports/{export_id}/passphrase",
                        {"export_id": "$response.body#/id"}))
@_refusals(401, 403, 404, 409)
@requires("tenant:export.manage")
def create_export(tenant_slug: str) -> dict:
    """Prepare an export

    A job builds the archive; poll the export until its state is `ready`. One at a time (409).
    """
    return export_json(export.request_export(_caller(), g.tenant, ip=request.remote_addr))


@blp.route("/tenants/<tenant_slug>/exports/<export_id>")
@blp.response(200, schemas.ExportSchema)
@_refusals(401, 403, 404)
@requires("tenant:export.manage")
def get_export(tenant_slug: str, export_id: str) -> dict:
    """An export and its progress"""
    return export_json(export.get_export(export_id))


@blp.route("/tenants/<tenant_slug>/exports/<export_id>/passphrase", methods=["POST"])
@blp.response(200, schemas.PassphraseSchema)
@_refusals(401, 403, 404, 409)
@requires("tenant:export.manage")
def take_passphrase(tenant_slug: str, export_id: str) -> dict:
    """Take the archive's passphrase

    Answered once: the portal forgets it as it answers (409 afterwards). Recorded in the access log.
    """
    return {"passphrase": export.reveal_passphrase(_caller(), g.tenant, export_id, ip=request.remote_addr)}


@blp.route("/tenants/<tenant_slug>/exports/<export_id>/content")
@blp.doc(responses={"200": {"description": "The 7z archive (AES-256, names encrypted).",
                            "content": {"application/x-7z-compressed": {"schema": {"type": "string",
                                                                                   "format": "binary"}}}}})
@_refusals(401, 403, 404, 409)
@requires("tenant:export.manage")
def download_export(tenant_slug: str, export_id: str):  # noqa: ANN201
    """Download an export

    Once the whole archive has been sent it is deleted from the server (409 afterwards).
    """
    return attachment(export.download_export(_caller(), g.tenant, export_id, ip=request.remote_addr))
