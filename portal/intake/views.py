"""Intake on the vault's pages (panels) and the staff's "try again"."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from flask import flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import format_decimal
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
    failed = record is not None and record.state == "failed"
    return panels.Panel("intake/_document.html", {
        "record": record, "why": services.why(record) if failed else None, "kinds": KIND_LABELS,
        "invoice": services.invoice_of(record) if record else None,
        "duplicate": services.duplicate_of(record) if record else None, "amount": _amount,
        "paired": services.paired_with(record) if record else None,
        "flags": services.flag_sentences})


def _amount(value: str | None) -> str:
    """An exact amount read from a file, grouped for the reader's language ("2,400,000" / "2.400.000")."""
    if value is None:
        return ""
    try:
        return format_decimal(Decimal(value), format="#,##0.######")
    except InvalidOperation:
        return value


def _documents_panel(tenant: Tenant) -> panels.Panel | None:
    if not allowed(g.role, "tenant:intake.view"):
        return None
    progress = services.progress(current_user._get_current_object())
    return panels.Panel("intake/_progress.html", {"progress": progress}) if progress.total else None


@bp.context_processor
def _helpers() -> dict:
    """The vault's page helpers (``may``, category names, dates): intake's pages are the vault's pages."""
    from portal.documents.views import _helpers as vault_helpers

    return vault_helpers()


panels.register("document", _document_panel)
panels.register("documents", _documents_panel)


@bp.route("/t/<tenant_slug>/search")
@requires("tenant:intake.view")
def search_page(tenant_slug: str) -> ResponseReturnValue:
    """The documents with every word asked for inside them (what intake read), best first."""
    query = (request.args.get("q") or "").strip()[:200]
    hits = services.search(current_user._get_current_object(), g.tenant, query, request.remote_addr) if query else None
    return render_template("intake/search.html", tenant=g.tenant, query=query, hits=hits)


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
