"""Data entry's pages under /t/<tenant_slug>/data-entry: the templates, the keying page (the document on the
left, the form on the right, keyboard only), the records with their export, and a panel on the document's
page. Thin: the rules are in ``services``; each form keeps what was typed and shows every error at once."""

from __future__ import annotations

import uuid

from flask import flash, g, make_response, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.exceptions import NotFound

from portal.access import requires
from portal.dataentry import bp, fields, forms, services
from portal.dataentry.models import Record, Template
from portal.documents import panels
from portal.documents import services as vault
from portal.documents.models import Document
from tenants.policy import allowed

PAGES_SHOWN = 5  # pages of a document shown beside the form (the rest: open the document)


def _actor():  # noqa: ANN202 - the signed-in User
    return current_user._get_current_object()


def _locale() -> str:
    return str(get_locale() or "en")


@bp.context_processor
def _helpers() -> dict:
    from portal.documents.views import _helpers as vault_helpers

    if not g.get("tenant"):
        return vault_helpers()
    currency, locale = g.tenant.currency, _locale()

    def shown(field: fields.Field, value: object) -> str:
        return fields.shown(field, value, currency=currency, locale=locale)

    def rules(field: fields.Field) -> str:
        return fields.rules_sentence(field, currency=currency, locale=locale)

    return {**vault_helpers(), "shown": shown, "rules": rules, "currency": currency, "locale": locale,
            "type_labels": fields.TYPE_LABELS}


def _document_panel(doc: Document) -> panels.Panel | None:
    """The records keyed from a document, and the templates it can still be keyed with."""
    if not allowed(g.role, "tenant:dataentry.view"):
        return None
    records = services.document_records(doc)
    to_key: list[Template] = []
    if allowed(g.role, "tenant:dataentry.key") and not doc.trashed_at:
        done = {r.template_id for r in records}
        to_key = [t for t in services.templates() if t.id not in done]
    if not records and not to_key:
        return None
    return panels.Panel("dataentry/_document.html", {"records": records, "to_key": to_key, "document": doc})


panels.register("document", _document_panel)


# --- templates ------------------------------------------------------------------------------------------

@bp.route("/t/<tenant_slug>/data-entry")
@requires("tenant:dataentry.view")
def index(tenant_slug: str) -> ResponseReturnValue:
    """The tenant's templates, with how many records each has and (for those who key) how many documents
    are left to key."""
    active, archived = services.templates(), services.templates(archived=True)
    may_key = allowed(g.role, "tenant:dataentry.key")
    left = services.queues(_actor(), active) if may_key else {}
    return render_template("dataentry/index.html", tenant=g.tenant, active=active, archived=archived,
                           counts=services.record_counts(), left=left)


def _template_page(template: Template | None, typed: dict | None = None, errors: dict | None = None,
                   status: int = 200) -> ResponseReturnValue:
    """The template's form: what was typed (after a refusal), else the template's fields, else empty rows."""
    if typed is None:
        rows = [fields.rule_inputs(f, currency=g.tenant.currency, locale=_locale())
                for f in (services.definition(template) if template else [])]
        rows += [{}] * (1 if template else forms.ROWS_SHOWN)
        typed = {"name": template.name if template else "", "description": (template.description or "")
                 if template else "", "field_count": str(len(rows))}
        for n, row in enumerate(rows, start=1):
            typed.update({f"field-{n}-{part}": value for part, value in row.items()})
    has_records = bool(template and services.record_counts().get(template.id))
    return render_template("dataentry/template.html", tenant=g.tenant, template=template, typed=typed,
                           errors=errors or {}, count=forms.field_count(typed), has_records=has_records), status


@bp.route("/t/<tenant_slug>/data-entry/new")
@requires("tenant:dataentry.setup")
def new_template(tenant_slug: str) -> ResponseReturnValue:
    return _template_page(None)


@bp.route("/t/<tenant_slug>/data-entry", methods=["POST"])
@requires("tenant:dataentry.setup")
def create_template(tenant_slug: str) -> ResponseReturnValue:
    return _save_template(tenant_slug, None)


@bp.route("/t/<tenant_slug>/data-entry/<template_id>/edit")
@requires("tenant:dataentry.setup")
def edit_template(tenant_slug: str, template_id: str) -> ResponseReturnValue:
    return _template_page(services.get_template(template_id))


@bp.route("/t/<tenant_slug>/data-entry/<template_id>/edit", methods=["POST"])
@requires("tenant:dataentry.setup")
def update_template(tenant_slug: str, template_id: str) -> ResponseReturnValue:
    return _save_template(tenant_slug, services.get_template(template_id))


def _save_template(tenant_slug: str, template: Template | None) -> ResponseReturnValue:
    form = request.form.to_dict()
    if form.get("then") == "add_field":
        form["field_count"] = str(forms.field_count(form) + 1)
        return _template_page(template, form)
    try:
        saved = services.save_template(_actor(), g.tenant, name=form.get("name", ""),
                                       description=form.get("description"), rows=forms.field_rows(form),
                                       locale=_locale(), template_id=template.id if template else None,
                                       ip=request.remote_addr)
    except services.DataEntryError as exc:
        flash(str(exc), "error")
        return _template_page(services.get_template(template.id) if template else None, form, exc.errors, 422)
    flash(_("“%(name)s” saved with %(count)d fields.", name=saved.name, count=len(saved.fields)), "success")
    return redirect(url_for("dataentry.index", tenant_slug=tenant_slug), 303)


@bp.route("/t/<tenant_slug>/data-entry/<template_id>/archive", methods=["POST"])
@requires("tenant:dataentry.setup")
def archive_template(tenant_slug: str, template_id: str) -> ResponseReturnValue:
    archived = request.form.get("archived") != "0"
    try:
        template = services.set_archived(_actor(), g.tenant, template_id, archived, ip=request.remote_addr)
    except services.DataEntryError as exc:
        flash(str(exc), "error")
    else:
        flash(_("“%(name)s” is archived: nothing new is keyed with it; its records stay.", name=template.name)
              if archived else _("“%(name)s” is in use again.", name=template.name), "success")
    return redirect(url_for("dataentry.index", tenant_slug=tenant_slug), 303)


# --- keying ---------------------------------------------------------------------------------------------

def _visible_document(document_id: object) -> Document | None:
    """A document the signed-in person may see and that is not in the trash, or None."""
    try:
        return vault.get_document(_actor(), str(document_id))
    except NotFound:
        return None


def _preview(document: Document | None) -> dict:
    """What the page shows of a document beside the form: its pages as images (as intake's fields panel shows
    them), or why not."""
    if document is None:
        return {"pages": []}
    from portal.documents.previews import PREVIEW_KINDS
    from portal.intake import services as intake

    obj = document.latest.object
    if obj.kind not in PREVIEW_KINDS:
        return {"pages": [], "no_preview": True}
    record = intake.record_of(document)
    count = record.pages if record is not None and record.pages else 1
    return {"pages": list(range(1, min(count, PAGES_SHOWN) + 1)), "more": max(count - PAGES_SHOWN, 0)}


def _key_page(template: Template, document: Document | None, *, typed: dict | None = None,
              errors: dict | None = None, submission: str | None = None, status: int = 200,
              alone: bool = False) -> ResponseReturnValue:
    actor = _actor()
    queue = services.queue(actor, template)
    skip = services.next_document(actor, template, after=document) if document is not None else None
    return render_template("dataentry/key.html", tenant=g.tenant, template=template,
                           fields=services.definition(template), document=document, preview=_preview(document),
                           typed=typed or {}, errors=errors or {}, queue=queue, skip=skip, alone=alone,
                           submission=submission or str(uuid.uuid4())), status


@bp.route("/t/<tenant_slug>/data-entry/<template_id>/key")
@requires("tenant:dataentry.key")
def key(tenant_slug: str, template_id: str) -> ResponseReturnValue:
    """The keying page: ``?document=<id>`` (else the queue's first), or ``?document=none`` for a record from
    no document. A document keyed already opens its record."""
    template = services.get_template(template_id)
    if template.archived:
        flash(_("“%(name)s” is archived: nothing new is keyed with it.", name=template.name), "error")
        return redirect(url_for("dataentry.records", tenant_slug=tenant_slug, template_id=template.id), 303)
    wanted = request.args.get("document") or ""
    if wanted == "none":
        return _key_page(template, None, alone=True)
    if wanted:
        document = vault.view_document(_actor(), g.tenant, wanted, request.remote_addr)
        keyed = services.record_for(template, document)
        if keyed is not None:
            flash(_("%(document)s has record %(number)d of “%(name)s” already: correct it here.",
                    document=document.title, number=keyed.number, name=template.name), "info")
            return redirect(url_for("dataentry.record", tenant_slug=tenant_slug, template_id=template.id,
                                    record_id=keyed.id), 303)
    else:
        document = services.next_document(_actor(), template)
        if document is not None:
            vault.view_document(_actor(), g.tenant, str(document.id), request.remote_addr)
    return _key_page(template, document)


@bp.route("/t/<tenant_slug>/data-entry/<template_id>/key", methods=["POST"])
@requires("tenant:dataentry.key")
def save_keyed(tenant_slug: str, template_id: str) -> ResponseReturnValue:
    """Save what was keyed, then open the queue's next document with an empty form; a refusal shows the same
    document with what was typed and every error."""
    template = services.get_template(template_id)
    form = request.form
    typed = forms.record_values(form, services.definition(template))
    document_id = form.get("document_id") or None
    try:
        saved = services.save_record(_actor(), g.tenant, template.id, typed, locale=_locale(),
                                     document_id=document_id, submission=services.submission_of(
                                         form.get("submission")), ip=request.remote_addr)
    except services.AlreadyKeyed as exc:
        flash(str(exc), "error")
        return redirect(url_for("dataentry.record", tenant_slug=tenant_slug, template_id=template.id,
                                record_id=exc.record.id), 303)
    except services.DataEntryError as exc:
        flash(str(exc), "error")
        if not exc.errors:  # not the values: the template was archived meanwhile
            return redirect(url_for("dataentry.records", tenant_slug=tenant_slug, template_id=template.id), 303)
        template = services.get_template(template_id)
        return _key_page(template, _visible_document(document_id) if document_id else None, typed=typed,
                         errors=exc.errors, submission=form.get("submission"), status=422, alone=not document_id)
    record = saved.record
    if record.document_id is not None:
        document = _visible_document(record.document_id)
        flash(_("Record %(number)d saved for %(document)s", number=record.number,
                document=document.title if document else ""), "success")
    else:
        document = None
        flash(_("Record %(number)d saved.", number=record.number), "success")
    following = services.next_document(_actor(), services.get_template(template_id), after=document)
    if following is None and document is None:
        return redirect(url_for("dataentry.key", tenant_slug=tenant_slug, template_id=template.id,
                                document="none"), 303)
    return redirect(url_for("dataentry.key", tenant_slug=tenant_slug, template_id=template.id,
                            document=following.id if following else None), 303)


# --- records --------------------------------------------------------------------------------------------

@bp.route("/t/<tenant_slug>/data-entry/<template_id>/records")
@requires("tenant:dataentry.view")
def records(tenant_slug: str, template_id: str) -> ResponseReturnValue:
    """The template's records, newest first, keyed between two days; CSV and XLSX of the same."""
    template = services.get_template(template_id)
    since, until, wrong = forms.typed_days(request.args)
    status, rows = 200, []
    if wrong:
        flash(_("Choose the days with the calendar, or type them as year-month-day."), "error")
        status = 422
    try:
        rows = services.records(template, since=since, until=until)
    except services.DataEntryError as exc:
        flash(str(exc), "error")
        status = 422
    return render_template("dataentry/records.html", tenant=g.tenant, template=template,
                           fields=services.definition(template), rows=[(r, services.values_of(r)) for r in rows],
                           since=since, until=until, limit=services.PAGE), status


@bp.route("/t/<tenant_slug>/data-entry/<template_id>/records.<fmt>")
@requires("tenant:dataentry.view")
def export(tenant_slug: str, template_id: str, fmt: str) -> ResponseReturnValue:
    """The records (keyed between the days asked for) as CSV or XLSX; recorded in the access log."""
    template = services.get_template(template_id)
    since, until, wrong = forms.typed_days(request.args)
    try:
        if wrong:
            raise services.DataEntryError(_("Choose the days with the calendar, or type them as year-month-day."))
        out = services.export(_actor(), g.tenant, template, fmt, since=since, until=until, ip=request.remote_addr)
    except services.DataEntryError as exc:
        flash(str(exc), "error")
        return redirect(url_for("dataentry.records", tenant_slug=tenant_slug, template_id=template.id), 303)
    response = make_response(out.content)
    response.headers["Content-Type"] = out.mimetype
    response.headers.set("Content-Disposition", "attachment", filename=out.filename)
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _record_page(template: Template, record: Record, *, typed: dict | None = None, errors: dict | None = None,
                 status: int = 200) -> ResponseReturnValue:
    document = _visible_document(record.document_id) if record.document_id else None
    definition = services.definition(template)
    values = services.values_of(record)
    if typed is None:
        typed = {f.key: fields.typed_text(f, values.get(f.key), currency=g.tenant.currency, locale=_locale())
                 for f in definition}
    return render_template("dataentry/record.html", tenant=g.tenant, template=template, record=record,
                           fields=definition, values=values, document=document, preview=_preview(document),
                           typed=typed, errors=errors or {}), status


@bp.route("/t/<tenant_slug>/data-entry/<template_id>/records/<record_id>")
@requires("tenant:dataentry.view")
def record(tenant_slug: str, template_id: str, record_id: str) -> ResponseReturnValue:
    """One record beside its document; those who key correct it here."""
    template = services.get_template(template_id)
    return _record_page(template, services.get_record(record_id, template=template))


@bp.route("/t/<tenant_slug>/data-entry/<template_id>/records/<record_id>", methods=["POST"])
@requires("tenant:dataentry.key")
def save_record(tenant_slug: str, template_id: str, record_id: str) -> ResponseReturnValue:
    """A record corrected (audited); a refusal shows what was typed and every error."""
    template = services.get_template(template_id)
    record = services.get_record(record_id, template=template)
    typed = forms.record_values(request.form, services.definition(template))
    try:
        saved = services.save_record(_actor(), g.tenant, template.id, typed, locale=_locale(), record_id=record.id,
                                     ip=request.remote_addr)
    except services.DataEntryError as exc:
        flash(str(exc), "error")
        template = services.get_template(template_id)
        return _record_page(template, services.get_record(record_id, template=template), typed=typed,
                            errors=exc.errors, status=422)
    flash(_("Record %(number)d saved.", number=saved.record.number), "success")
    return redirect(url_for("dataentry.records", tenant_slug=tenant_slug, template_id=template.id), 303)


@bp.route("/t/<tenant_slug>/data-entry/<template_id>/records/<record_id>/delete", methods=["POST"])
@requires("tenant:dataentry.key")
def delete_record(tenant_slug: str, template_id: str, record_id: str) -> ResponseReturnValue:
    template = services.get_template(template_id)
    gone = services.delete_record(_actor(), g.tenant, record_id, template=template, ip=request.remote_addr)
    flash(_("Record %(number)d deleted. Its document is back in the queue.", number=gone.number)
          if gone.from_document else _("Record %(number)d deleted.", number=gone.number), "success")
    return redirect(url_for("dataentry.records", tenant_slug=tenant_slug, template_id=template.id), 303)
