"""Vault pages under /t/<tenant_slug>/: documents, upload, preview, download, requests.

Thin: the gate (``portal.access``) has bound the tenant and checked the action;
each view parses its input, calls a service and renders.
"""

from __future__ import annotations

from flask import Response, abort, flash, g, has_request_context, jsonify, redirect, render_template, request, url_for
from flask_babel import format_date, format_datetime
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf.csrf import CSRFError, validate_csrf
from wtforms import ValidationError

from portal.access import requires
from portal.api.pagination import decode_time_id_cursor, encode_cursor
from portal.documents import bp, panels, receive, requests, services, trash
from portal.documents.content import CATEGORY_LABELS
from portal.documents.forms import ConfirmForm, NotApplicableForm, RefileForm, RequestForm, TrashForm
from portal.documents.models import Document, DocumentRequest
from portal.extensions import csrf
from tenants.models import User
from tenants.outages import RETRY_AFTER
from tenants.policy import allowed, is_client

KIND_ICONS = {"pdf": "PDF", "image": "IMG", "csv": "CSV", "xlsx": "XLSX", "xml": "XML", "zip": "ZIP"}


def _actor() -> User:
    return current_user._get_current_object()  # type: ignore[attr-defined]


def human_size(n: int) -> str:
    """1536 → '1.5 KB'."""
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def category_label(category: str) -> str:
    """A category as the reader calls it, in their language."""
    return _(CATEGORY_LABELS[category]) if category in CATEGORY_LABELS else category


@bp.context_processor
def _helpers() -> dict:
    return {
        "may": lambda action: allowed(g.get("role"), action),
        "category_label": category_label,
        "categories": {value: category_label(value) for value in CATEGORY_LABELS},
        "kind_icon": lambda k: KIND_ICONS.get(k, k.upper()),
        "human_size": human_size,
        "format_datetime": format_datetime,
        "format_date": format_date,
    }


# --- documents -----------------------------------------------------------------------------

@bp.route("/t/<tenant_slug>/documents")
@requires("tenant:documents.view")
def index(tenant_slug: str):
    """The vault: upload zone, then the documents, newest first, with filters."""
    args = request.args
    try:
        page = services.browse(_actor(), g.tenant, request.remote_addr, category=args.get("category") or None,
                               period=services.parse_period(args.get("period")),
                               tag=args.get("tag") or None, q=args.get("q") or None,
                               after=decode_time_id_cursor(args.get("after") or None))
    except services.DocumentError as err:
        abort(400, description=str(err))
    used, quota = services.usage(g.tenant)
    filtered = any(args.get(k) for k in ("category", "period", "tag", "q"))
    next_cursor = encode_cursor([page.next_key[0].isoformat(), str(page.next_key[1])]) if page.next_key else None
    return render_template("documents/index.html", tenant=g.tenant, page=page, used=used, quota=quota,
                           filtered=filtered, next_cursor=next_cursor, limit=services.limit_for(used, quota),
                           panels=panels.panels("documents", g.tenant))


def _csrf_checker():  # noqa: ANN202
    """CSRF for a streamed upload: the X-CSRFToken header, or a csrf_token field before the first file."""
    seen = {"ok": False}
    header = request.headers.get("X-CSRFToken")
    if header:
        _validate(header)
        seen["ok"] = True

    def check(name: str, value: str) -> None:
        if name == "csrf_token":
            _validate(value)
            seen["ok"] = True
        elif name == "file" and not seen["ok"]:
            raise CSRFError(_("The form is missing its security token. Reload the page and try again."))

    return check


def _validate(token: str) -> None:
    try:
        validate_csrf(token)
    except ValidationError:
        raise CSRFError(_("The form has expired. Reload the page and try again.")) from None


def _wants_json() -> bool:
    return request.accept_mimetypes.best_match(["application/json", "text/html"]) == "application/json"


@bp.route("/t/<tenant_slug>/documents/upload", methods=["POST"])
@requires("tenant:documents.upload")
def upload(tenant_slug: str):
    """Receive one or more files (streamed); JSON per file for the upload widget, a page otherwise."""
    try:
        results = receive.receive(request, _actor(), g.tenant, check_field=_csrf_checker())
    except services.DocumentError as err:
        if _wants_json():
            return jsonify({"error": str(err)}), err.status
        flash(str(err), "error")
        return redirect(url_for("documents.index", tenant_slug=tenant_slug))
    status = 200 if any(r.ok for r in results) else 422
    if status == 422 and receive.unavailable(results):  # nothing stored, as a part the upload needs is down
        status = 503
    if _wants_json():
        response = jsonify({"results": [_result_json(r) for r in results]})
        response.status_code = status
    else:
        response = Response(render_template("documents/results.html", tenant=g.tenant, results=results), status,
                            mimetype="text/html")
    if status == 503:
        response.headers["Retry-After"] = str(RETRY_AFTER)
        response.headers["Cache-Control"] = "no-store"  # said here: the user, expired by the rollback, is not reloaded
    return response


# The body is a stream: Flask-WTF would parse (and spool) it to look for the token, so the
# view checks the header or the first field itself (``_csrf_checker``).
csrf.exempt(upload)


def _result_json(result: services.UploadResult) -> dict:
    doc = result.document
    return {"name": result.name, "status": result.status, "message": result.message, "code": result.code,
            "url": url_for("documents.detail", tenant_slug=g.tenant.slug, document_id=doc.id) if doc else None,
            "categories": [{"value": c, "label": category_label(c)} for c in result.categories]}


@bp.route("/t/<tenant_slug>/documents/<document_id>")
@requires("tenant:documents.view")
def detail(tenant_slug: str, document_id: str):
    """One document: its preview, versions, downloads, filing and removal (the view is in the access log).

    A document in the trash is shown, as in the trash with its purge day, to those who may see the
    trash; to anyone else it is not found.
    """
    doc = services.view_document(_actor(), g.tenant, document_id, request.remote_addr, with_trash=trash.sees_trash())
    return _detail_page(doc)


def _detail_page(doc: Document, *, form: RefileForm | None = None, trash_form: TrashForm | None = None) -> str:
    """A document's page; ``form`` and ``trash_form`` carry what was typed and their errors after a refusal."""
    if form is None:
        form = RefileForm(formdata=None, title=doc.title, category=doc.category,
                          period=doc.period.strftime("%Y-%m") if doc.period else "", tags=", ".join(doc.tags))
    return render_template("documents/detail.html", tenant=g.tenant, doc=doc, form=form,
                           trash_form=trash_form or TrashForm(formdata=None), confirm_form=ConfirmForm(formdata=None),
                           purge_on=trash.purge_date(doc), client_side=is_client(g.role),
                           limit=services.upload_limit(g.tenant),
                           panels=[] if doc.trashed_at else panels.panels("document", doc))


@bp.route("/t/<tenant_slug>/documents/<document_id>/refile", methods=["POST"])
@requires("tenant:documents.refile")
def refile(tenant_slug: str, document_id: str):
    """Rename a document, or change its category, month or tags."""
    doc = services.get_document(_actor(), document_id)  # another tenant's or a missing one: 404 before anything
    form = RefileForm()
    if not form.validate_on_submit():
        return _detail_page(doc, form=form), 422
    before = doc.title
    try:
        doc = services.refile(_actor(), g.tenant, document_id, title=form.title.data, category=form.category.data,
                              period=form.period.data, tags=form.tags.data, ip=request.remote_addr)
    except services.DocumentError as err:
        flash(str(err), "error")
        return _detail_page(doc, form=form), err.status
    if doc.title != before:
        flash(_("“%(before)s” is now called “%(title)s”, filed as %(category)s.", before=before, title=doc.title,
                category=category_label(doc.category)), "success")
    else:
        flash(_("“%(title)s” is now filed as %(category)s.", title=doc.title,
                category=category_label(doc.category)), "success")
    return redirect(url_for("documents.detail", tenant_slug=tenant_slug, document_id=doc.id))


# --- the trash -----------------------------------------------------------------------------

@bp.route("/t/<tenant_slug>/documents/trash")
@requires("tenant:documents.trash")
def trash_list(tenant_slug: str):
    """What was removed: who removed it, when, why, and the day it is deleted for good."""
    return render_template("documents/trash.html", tenant=g.tenant, documents=trash.trashed_documents(_actor()),
                           purge_date=trash.purge_date, retention=trash.retention_days(),
                           client_side=is_client(g.role), confirm_form=ConfirmForm(formdata=None))


@bp.route("/t/<tenant_slug>/documents/<document_id>/trash", methods=["POST"])
@requires("tenant:documents.trash")
def trash_document(tenant_slug: str, document_id: str):
    """Remove a document to the trash, with a reason."""
    doc = services.get_document(_actor(), document_id)  # another tenant's, a missing one: 404 before anything
    form = TrashForm()
    if not form.validate_on_submit():
        return _detail_page(doc, trash_form=form), 422
    try:
        done = trash.trash(_actor(), g.tenant, document_id, reason=form.reason.data, ip=request.remote_addr)
    except services.DocumentError as err:
        flash(str(err), "error")
        return _detail_page(doc, trash_form=form), err.status
    message = _("“%(title)s” is in the trash. It will be deleted for good on %(date)s; until then your provider "
                "can restore it.", title=done.document.title, date=format_date(done.purge_on))
    for item in done.reopened:
        message += " " + _("The requested document “%(item)s” is outstanding again.", item=item)
    flash(message, "success")
    return redirect(url_for("documents.index", tenant_slug=tenant_slug))


@bp.route("/t/<tenant_slug>/documents/<document_id>/restore", methods=["POST"])
@requires("tenant:documents.restore")
def restore_document(tenant_slug: str, document_id: str):
    """Bring a document back from the trash."""
    services.get_document(_actor(), document_id, trashed=None)  # another tenant's, a missing one: 404 first
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        doc = trash.restore(_actor(), g.tenant, document_id, ip=request.remote_addr)
    except services.DocumentError as err:
        flash(str(err), "error")
        return redirect(url_for("documents.trash_list", tenant_slug=tenant_slug))
    flash(_("“%(title)s” is restored, with all its versions.", title=doc.title), "success")
    return redirect(url_for("documents.detail", tenant_slug=tenant_slug, document_id=doc.id))


def attachment(download: services.Download) -> Response:
    """A streamed download: always an attachment, never sniffed, never cached."""
    response = Response(download.chunks, mimetype=download.mime, direct_passthrough=True)
    response.headers["Content-Length"] = str(download.size)
    response.headers.set("Content-Disposition", "attachment", filename=download.filename)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@bp.route("/t/<tenant_slug>/documents/<document_id>/download")
@requires("tenant:documents.view")
def download(tenant_slug: str, document_id: str):
    """Download a version (the latest unless ?version=N); written to the access log."""
    return attachment(services.download(_actor(), g.tenant, document_id, version=request.args.get("version"),
                                        ip=request.remote_addr))


@bp.url_defaults
def _thumbnail_in_page(endpoint: str, values: dict) -> None:
    """A thumbnail URL rendered into a page names its version and carries the reader's mark (``services.page_mark``).

    The page is in the access log (the list, a document's page), so fetching the thumbnails it shows is
    not logged again; and a numbered version's thumbnail can be cached, since it never changes.
    """
    if endpoint == "documents.preview" and "document_id" in values and "in_page" not in values \
            and has_request_context() and current_user.is_authenticated:
        values.update(services.thumbnail_query(_actor(), values["document_id"], values.get("version")))


@bp.route("/t/<tenant_slug>/documents/<document_id>/preview.png")
@requires("tenant:documents.view")
def preview(tenant_slug: str, document_id: str):
    """The thumbnail we rendered (PNG), or 404 while there is none; a cached one is answered 304, undecrypted."""
    version = request.args.get("version")
    thumb = services.preview(_actor(), g.tenant, document_id, version=version, ip=request.remote_addr,
                             mark=request.args.get("in_page"), held=request.if_none_match)
    if thumb is None:
        abort(404)
    response = Response(thumb.png, mimetype="image/png") if thumb.png is not None else Response(status=304)
    response.set_etag(thumb.etag)
    response.headers["X-Content-Type-Options"] = "nosniff"
    # A numbered version's thumbnail never changes. Without a number the URL follows the latest version, so
    # the browser asks each time it shows it (and gets a 304 while it is the same).
    response.headers["Cache-Control"] = (f"private, max-age={services.THUMBNAIL_MAX_AGE}, immutable"
                                         if version else "private, no-cache")
    return response


# --- document requests ---------------------------------------------------------------------

@bp.route("/t/<tenant_slug>/requests")
@requires("tenant:requests.view")
def request_list(tenant_slug: str):
    """Requests for documents: what is outstanding first; staff can ask for more here."""
    # The form to ask for more is built for those who may send it (the template shows it to them only).
    form = RequestForm(formdata=None) if allowed(g.role, "tenant:requests.manage") else None
    return render_template("documents/requests.html", tenant=g.tenant, requests=requests.list_requests(),
                           outstanding=requests.outstanding_items(), form=form)


@bp.route("/t/<tenant_slug>/requests", methods=["POST"])
@requires("tenant:requests.manage")
def request_create(tenant_slug: str):
    """Ask the client for documents (the client's people get an e-mail with a link)."""
    form = RequestForm()
    if not form.validate_on_submit():
        return render_template("documents/requests.html", tenant=g.tenant, requests=requests.list_requests(),
                               outstanding=requests.outstanding_items(), form=form), 422
    try:
        created = requests.create_request(_actor(), g.tenant, title=form.title.data, note=form.note.data,
                                          items=form.item_inputs(), ip=request.remote_addr)
    except services.DocumentError as err:
        flash(str(err), "error")
        return render_template("documents/requests.html", tenant=g.tenant, requests=requests.list_requests(),
                               outstanding=requests.outstanding_items(), form=form), err.status
    flash(_("Request sent: the client's people were e-mailed a link to “%(title)s”.", title=created.title),
          "success")
    return redirect(url_for("documents.request_detail", tenant_slug=tenant_slug, request_id=created.id))


@bp.route("/t/<tenant_slug>/requests/<request_id>")
@requires("tenant:requests.view")
def request_detail(tenant_slug: str, request_id: str):
    """A request's items: upload against each outstanding one, or answer it "not applicable"; see what
    was sent (or why not) for the others."""
    return _request_page(requests.get_request(request_id))


def _na_prefix(item_id: object) -> str:
    return f"na-{item_id}"  # one "not applicable" form per item on the page


def _request_page(req: DocumentRequest, *, refused: NotApplicableForm | None = None,
                  refused_item: object = None) -> str:
    """A request's page; ``refused`` is the "not applicable" form of ``refused_item`` with what was typed."""
    forms = {item.id: NotApplicableForm(formdata=None, prefix=_na_prefix(item.id)) for item in req.outstanding}
    if refused is not None:
        forms[refused_item] = refused
    return render_template("documents/request.html", tenant=g.tenant, req=req, na_forms=forms,
                           confirm_form=ConfirmForm(formdata=None), limit=services.upload_limit(g.tenant))


@bp.route("/t/<tenant_slug>/requests/<request_id>/items/<item_id>/not-applicable", methods=["POST"])
@requires("tenant:requests.answer")
def item_not_applicable(tenant_slug: str, request_id: str, item_id: str):
    """The client answers an item "we don't have this / not applicable", with a reason."""
    item = requests.get_item(request_id, item_id)  # another tenant's, a missing one: 404 before anything
    form = NotApplicableForm(prefix=_na_prefix(item.id))
    if not form.validate_on_submit():
        return _request_page(item.request, refused=form, refused_item=item.id), 422
    try:
        requests.mark_not_applicable(_actor(), g.tenant, request_id, item_id, reason=form.reason.data,
                                     ip=request.remote_addr)
    except services.DocumentError as err:
        flash(str(err), "error")
        return _request_page(item.request, refused=form, refused_item=item.id), err.status
    flash(_("“%(item)s” is answered as not applicable. Your provider sees your reason and can reopen it if they "
            "still need it.", item=item.description), "success")
    return redirect(url_for("documents.request_detail", tenant_slug=tenant_slug, request_id=item.request_id))


@bp.route("/t/<tenant_slug>/requests/<request_id>/items/<item_id>/reopen", methods=["POST"])
@requires("tenant:requests.manage")
def item_reopen(tenant_slug: str, request_id: str, item_id: str):
    """The provider reopens an item the client answered "not applicable"."""
    item = requests.get_item(request_id, item_id)  # another tenant's, a missing one: 404 before anything
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        requests.reopen_item(_actor(), g.tenant, request_id, item_id, ip=request.remote_addr)
    except services.DocumentError as err:
        flash(str(err), "error")
    else:
        flash(_("“%(item)s” is outstanding again: the client sees that it is still needed.", item=item.description),
              "success")
    return redirect(url_for("documents.request_detail", tenant_slug=tenant_slug, request_id=item.request_id))

