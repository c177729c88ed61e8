"""Intake on the vault's pages (panels) and the staff's "try again"."""

from __future__ import annotations

from flask import flash, g, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user

from portal.access import requires
from portal.documents import panels
from portal.documents.models import Document
from portal.intake import bp, services
from portal.intake.steps import KIND_LABELS
from tenants.models import Tenant
from tenants.policy import allowed


def _document_panel(doc: Document) -> panels.Panel | None:
    if not allowed(g.role, "tenant:intake.view"):
        return None
    record = services.record_of(doc)
    return panels.Panel("intake/_document.html", {"record": record, "why": services.why(record) if record and
                                                  record.state == "failed" else None, "kinds": KIND_LABELS})


def _documents_panel(tenant: Tenant) -> panels.Panel | None:
    if not allowed(g.role, "tenant:intake.view"):
        return None
    progress = services.progress()
    return panels.Panel("intake/_progress.html", {"progress": progress}) if progress.total else None


panels.register("document", _document_panel)
panels.register("documents", _documents_panel)


@bp.route("/t/<tenant_slug>/documents/<document_id>/intake/retry", methods=["POST"])
@requires("tenant:intake.retry")
def retry(tenant_slug: str, document_id: str) -> ResponseReturnValue:
    """Read a document that failed again, from the step that failed."""
    try:
        services.retry(current_user._get_current_object(), g.tenant, document_id, request.remote_addr)
    except services.IntakeError as exc:
        flash(str(exc), "error")
    else:
        flash(_("Reading this document again. This page shows the result when it is done."), "success")
    return redirect(url_for("documents.detail", tenant_slug=tenant_slug, document_id=document_id), 303)
