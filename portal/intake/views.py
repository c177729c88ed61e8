"""Intake on the vault's pages (panels) and the staff's "try again"."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from flask import abort, flash, g, make_response, redirect, render_template, request, url_for
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
        "searchable": doc.latest.object.searchable_id is not None,
        "invoice": services.invoice_of(record) if record else None,
        "duplicate": services.duplicate_of(record) if record else None, "amount": _amount,
        "paired": services.paired_with(record) if record else None,
        "flags": services.flag_sentences})


def _fields_panel(doc: Document) -> panels.Panel | None:
    """The invoice fields read from the document, over its page, for checking (and correcting, for staff)."""
    if not allowed(g.role, "tenant:intake.view"):
        return None
    record = services.record_of(doc)
    rows = services.field_rows(record) if record is not None and record.state == "done" else None
    if not rows:
        return None
    return panels.Panel("intake/_fields.html", {
        "record": record, "fields": rows, "typed": g.get("intake_fields_typed") or {},
        "errors": g.get("intake_fields_errors") or {},
        "pages": sorted({row.read["page"] for row in rows if row.read}) or [1]})


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
panels.register("document", _fields_panel)
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


@bp.route("/t/<tenant_slug>/documents/<document_id>/intake/fields", methods=["POST"])
@requires("tenant:intake.correct")
def correct_fields(tenant_slug: str, document_id: str) -> ResponseReturnValue:
    """Staff's corrections of the invoice fields read from a document; a refusal shows the page again with
    what was typed and every error."""
    from portal.documents import services as vault
    from portal.documents.views import _detail_page

    typed = {name: request.form.get(name, "") for name in services.FIELD_LABELS}
    try:
        changed = services.correct_fields(current_user._get_current_object(), g.tenant, document_id, typed,
                                          request.remote_addr)
    except services.FieldErrors as exc:
        g.intake_fields_typed, g.intake_fields_errors = typed, exc.errors
        flash(str(exc), "error")
        return _detail_page(vault.get_document(current_user._get_current_object(), document_id)), 422
    except services.IntakeError as exc:
        flash(str(exc), "error")
    else:
        if changed:
            flash(_("Saved. Corrected: %(fields)s. What was read stays shown beside it.",
                    fields=", ".join(str(services.FIELD_LABELS[name]) for name in changed)), "success")
        else:
            flash(_("Nothing was changed: every field already says what you typed."), "info")
    return redirect(url_for("documents.detail", tenant_slug=tenant_slug, document_id=document_id,
                            _anchor="fields"), 303)


@bp.route("/t/<tenant_slug>/documents/<document_id>/intake/searchable.pdf")
@requires("tenant:documents.view")
def searchable_copy(tenant_slug: str, document_id: str) -> ResponseReturnValue:
    """The searchable copy of a scanned PDF: the same pages, with their text selectable and findable."""
    doc, data = services.searchable_copy(current_user._get_current_object(), g.tenant, document_id,
                                         request.remote_addr)
    response = make_response(data)
    response.headers["Content-Type"] = "application/pdf"
    response.headers.set("Content-Disposition", "attachment", filename=_searchable_name(doc.title))
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _searchable_name(title: str) -> str:
    stem = title[:-4] if title.lower().endswith(".pdf") else title
    return _("%(name)s (searchable).pdf", name=stem)


@bp.route("/t/<tenant_slug>/documents/<document_id>/intake/page-<page>.png")
@requires("tenant:intake.view")
def page_image(tenant_slug: str, document_id: str, page: str) -> ResponseReturnValue:
    """A page of the document, large enough to check the fields highlighted over it (never cached)."""
    if not page.isdigit() or not 1 <= int(page) <= 10_000:
        abort(404)
    png = services.page_image(current_user._get_current_object(), g.tenant, document_id, int(page),
                              request.remote_addr)
    if png is None:
        abort(404)
    response = make_response(png)
    response.headers["Content-Type"] = "image/png"
    response.headers["Cache-Control"] = "private, no-store"
    return response
