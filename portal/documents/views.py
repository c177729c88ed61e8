"""Vault pages under /t/<tenant_slug>/: documents, upload, preview, download, requests.

Thin: the gate (``portal.access``) has bound the tenant and checked the action;
each view parses its input, calls a service and renders.
"""

from __future__ import annotations

from flask import Response, abort, flash, g, jsonify, redirect, render_template, request, url_for
from flask_babel import format_date, format_datetime
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf.csrf import CSRFError, validate_csrf
from wtforms import ValidationError

from portal.access import requires
from portal.api.pagination import decode_time_id_cursor, encode_cursor
from portal.documents import bp, receive, requests, services
from portal.documents.forms import RefileForm, RequestForm
from portal.extensions import csrf
from tenants.models import User, utcnow
from tenants.policy import allowed

CATEGORY_LABELS = {
    "invoice": _l("Invoice"),
    "receipt": _l("Receipt"),
    "bank_statement": _l("Bank statement"),
    "payroll_input": _l("Payroll input"),
    "contract": _l("Contract"),
    "other": _l("Other"),
}
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


@bp.context_processor
def _helpers() -> dict:
    return {
        "may": lambda action: allowed(g.get("role"), action),
        "category_label": lambda c: CATEGORY_LABELS.get(c, c),
        "categories": CATEGORY_LABELS,
        "kind_icon": lambda k: KIND_ICONS.get(k, k.upper()),
        "human_size": human_size,
        "format_datetime": format_datetime,
        "format_date": format_date,
        "today": lambda: utcnow().date(),
    }


# --- documents -----------------------------------------------------------------------------

@bp.route("/t/<tenant_slug>/documents")
@requires("tenant:documents.view")
def index(tenant_slug: str):
    """The vault: upload zone, then the documents, newest first, with filters."""
    args = request.args
    try:
        page = services.list_documents(_actor(), category=args.get("category") or None,
                                       period=services.parse_period(args.get("period")),
                                       tag=args.get("tag") or None, q=args.get("q") or None,
                                       after=decode_time_id_cursor(args.get("after") or None))
    except services.DocumentError as err:
        abort(400, description=str(err))
    used, quota = services.usage(g.tenant)
    filtered = any(args.get(k) for k in ("category", "period", "tag", "q"))
    next_cursor = encode_cursor([page.next_key[0].isoformat(), str(page.next_key[1])]) if page.next_key else None
    return render_template("documents/index.html", tenant=g.tenant, page=page, used=used, quota=quota,
                           filtered=filtered, next_cursor=next_cursor, limit=services.limit_for(used, quota))


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
    if _wants_json():
        return jsonify({"results": [_result_json(r) for r in results]}), status
    return render_template("documents/results.html", tenant=g.tenant, results=results), status


# The body is a stream: Flask-WTF would parse (and spool) it to look for the token, so the
# view checks the header or the first field itself (``_csrf_checker``).
csrf.exempt(upload)


def _result_json(result: services.UploadResult) -> dict:
    doc = result.document
    return {"name": result.name, "status": result.status, "message": result.message, "code": result.code,
            "url": url_for("documents.detail", tenant_slug=g.tenant.slug, document_id=doc.id) if doc else None}


@bp.route("/t/<tenant_slug>/documents/<document_id>")
@requires("tenant:documents.view")
def detail(tenant_slug: str, document_id: str):
    """One document: its preview, versions, downloads and filing (the view is in the access log)."""
    doc = services.view_document(_actor(), g.tenant, document_id, request.remote_addr)
    form = RefileForm(formdata=None, category=doc.category,
                      period=doc.period.strftime("%Y-%m") if doc.period else "", tags=", ".join(doc.tags))
    return render_template("documents/detail.html", tenant=g.tenant, doc=doc, form=form,
                           limit=services.upload_limit(g.tenant))


@bp.route("/t/<tenant_slug>/documents/<document_id>/refile", methods=["POST"])
@requires("tenant:documents.refile")
def refile(tenant_slug: str, document_id: str):
    """Change a document's category, month or tags."""
    services.get_document(_actor(), document_id)  # another tenant's or a missing one: 404 before anything
    form = RefileForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        doc = services.refile(_actor(), g.tenant, document_id, category=form.category.data,
                              period=form.period.data, tags=form.tags.data, ip=request.remote_addr)
    except services.DocumentError as err:
        flash(str(err), "error")
        return redirect(url_for("documents.detail", tenant_slug=tenant_slug, document_id=document_id))
    flash(_("“%(title)s” is now filed as %(category)s.", title=doc.title,
            category=CATEGORY_LABELS[doc.category]), "success")
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


@bp.route("/t/<tenant_slug>/documents/<document_id>/preview.png")
@requires("tenant:documents.view")
def preview(tenant_slug: str, document_id: str):
    """The thumbnail we rendered (PNG), or 404 while there is none."""
    png = services.preview(_actor(), g.tenant, document_id, version=request.args.get("version"),
                           ip=request.remote_addr)
    if png is None:
        abort(404)
    response = Response(png, mimetype="image/png")
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    return response


# --- document requests ---------------------------------------------------------------------

@bp.route("/t/<tenant_slug>/requests")
@requires("tenant:requests.view")
def request_list(tenant_slug: str):
    """Requests for documents: what is outstanding first; staff can ask for more here."""
    return render_template("documents/requests.html", tenant=g.tenant, requests=requests.list_requests(),
                           outstanding=requests.outstanding_items(), form=RequestForm(formdata=None))


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
    """A request's items: upload against each outstanding one; see what was sent for the others."""
    return render_template("documents/request.html", tenant=g.tenant, req=requests.get_request(request_id),
                           limit=services.upload_limit(g.tenant))

