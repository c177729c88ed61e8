"""One error responder: ``application/problem+json`` for the API, a page otherwise.

No stack trace ever reaches a user; unexpected errors are logged with an id the
user can quote.
"""

from __future__ import annotations

import logging
import secrets

from flask import Flask, Response, jsonify, render_template, request
from flask_babel import gettext as _
from werkzeug.exceptions import HTTPException, InternalServerError, NotFound, default_exceptions

from portal.extensions import db
from portal.i18n import N_
from portal.logs import redact
from tenants.isolation import CrossTenantWrite

log = logging.getLogger(__name__)

# Titles stay English in problem documents (API clients match on them); pages translate them.
TITLES = {
    400: N_("The request could not be understood"),
    401: N_("Sign-in required"),
    403: N_("Not allowed"),
    404: N_("Not found"),
    405: N_("Method not allowed"),
    409: N_("Conflict"),
    410: N_("No longer available"),
    413: N_("Too large"),
    422: N_("Some fields need attention"),
    429: N_("Too many requests"),
    500: N_("Something went wrong on our side"),
    502: N_("The stored file could not be read"),
}


def wants_json() -> bool:
    """True for API calls and clients that prefer JSON over HTML."""
    if request.path.startswith("/api/"):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def problem(status: int, detail: str | None = None, **extra: object) -> Response:
    """An RFC 9457 problem document."""
    body = {"type": "about:blank", "title": TITLES.get(status, "Error"), "status": status}
    if detail:
        body["detail"] = detail
    body.update(extra)
    response = jsonify(body)
    response.status_code = status
    response.mimetype = "application/problem+json"
    return response


def _detail(exc: HTTPException) -> str | None:
    # Werkzeug's stock descriptions are generic; ours (abort(..., description=)) are specific.
    default = type(exc).description
    return exc.description if exc.description and exc.description != default else None


def handle_http(exc: HTTPException) -> Response | tuple[str, int]:
    status = exc.code or 500
    detail = _detail(exc)
    if wants_json():
        extra = {}
        errors = getattr(exc, "data", {}).get("messages") if hasattr(exc, "data") else None
        if errors:
            extra["errors"] = errors
        response = problem(status, detail, **extra)
    else:
        response = render_template("error.html", status=status,
                                   title=_(TITLES.get(status, "Error")), detail=detail), status
    if status == 401 and wants_json():
        response.headers["WWW-Authenticate"] = 'Bearer realm="api"'
    return response


def handle_unexpected(exc: Exception) -> Response | tuple[str, int]:
    """Log the error with a reference and its traceback; answer 500 quoting the reference."""
    ref = secrets.token_hex(4)
    log.exception("unhandled error %s on %s %s", ref, request.method, redact(request.path))
    # A failed statement leaves the transaction aborted, and the page's header reads the database
    # (workspaces, notifications): without a rollback the error page itself would fail.
    try:
        db.session.rollback()
    except Exception:  # the connection is gone too; the page may still render
        log.exception("rollback after error %s failed", ref)
    err = InternalServerError(
        description=_("Please try again. If it keeps happening, quote reference %(ref)s.", ref=ref))
    try:
        return handle_http(err)
    except Exception:  # the page could not be rendered (the database is down): the reference still goes out
        log.exception("error page for error %s failed", ref)
        return Response(f"{_(TITLES[500])}. {err.description}\n", 500, mimetype="text/plain")


def answer_refusals(app: Flask, *errors: type[Exception]) -> None:
    """Answer these service refusals, raised anywhere below a view (pages and API alike), with their
    ``status`` and their sentence, which says what to do."""
    for error in errors:
        app.register_error_handler(
            error, lambda e: handle_http(default_exceptions[getattr(e, "status", 422)](description=str(e))))


def init_app(app: Flask) -> None:
    app.register_error_handler(HTTPException, handle_http)
    app.register_error_handler(CrossTenantWrite, lambda e: handle_http(NotFound()))
    app.register_error_handler(Exception, handle_unexpected)
