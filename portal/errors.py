"""One error responder: ``application/problem+json`` for the API, a page otherwise.

No stack trace ever reaches a user; unexpected errors are logged with an id the
user can quote. A request that needed a dependency that is down (the database, Redis,
the object store: ``tenants.outages``) answers 503 with ``Retry-After``, on a page that
reads nothing from the database.
"""

from __future__ import annotations

import contextlib
import logging
import secrets

from flask import Flask, Response, current_app, g, jsonify, render_template, request, session
from flask_babel import force_locale
from flask_babel import gettext as _
from werkzeug.exceptions import HTTPException, InternalServerError, NotFound, default_exceptions

from portal.extensions import db
from portal.i18n import N_
from portal.logs import redact
from tenants.isolation import CrossTenantWrite
from tenants.outages import RETRY_AFTER, dependency_down

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
    503: N_("Briefly unavailable"),
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


def handle_http(exc: HTTPException) -> Response:
    # Flask wraps an error raised after the view (an after_request hook) in a 500 of its own.
    original = getattr(exc, "original_exception", None)
    if original is not None and (part := dependency_down(original)) is not None:
        return handle_outage(part, original)
    status = exc.code or 500
    detail = _detail(exc)
    if wants_json():
        extra = {}
        errors = getattr(exc, "data", {}).get("messages") if hasattr(exc, "data") else None
        if errors:
            extra["errors"] = errors
        response = problem(status, detail, **extra)
    else:
        response = Response(render_template("error.html", status=status, title=_(TITLES.get(status, "Error")),
                                            detail=detail), status, mimetype="text/html")
    # The exception's own headers: a 405's Allow, a 503's or 429's Retry-After, a 401's challenge.
    for name, value in exc.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    if status == 401 and wants_json():
        response.headers["WWW-Authenticate"] = 'Bearer realm="api"'
    return response


def _reader_locale() -> str:
    """select_locale's answer without the database (a signed-in user already loaded, the browser's choice,
    Accept-Language): asking flask-login for the user would load it, which is what just failed."""
    languages = list(current_app.config["LANGUAGES"])
    locale = None
    with contextlib.suppress(Exception):  # an expired user would be reloaded from the database
        user = g.get("_login_user")
        locale = user.locale if user is not None and user.is_authenticated else None
    if locale not in languages:
        locale = session.get("locale")
    if locale not in languages:
        locale = request.accept_languages.best_match(languages) or current_app.config["BABEL_DEFAULT_LOCALE"]
    return locale


def answer_unavailable(detail: str | None = None) -> Response:
    """503 with ``Retry-After``: a part the request needs is down; the same request works once it is back.

    The page stands alone (``unavailable.html`` reads nothing from the database, unlike the layout)."""
    locale = _reader_locale()
    with force_locale(locale):
        detail = detail or _("Part of the service is briefly unavailable. Nothing is wrong with what you did: "
                             "please try again in a minute.")
        if wants_json():
            response = problem(503, detail)
        else:
            try:  # the environment's own render: no context processors (flask-login's would load the user)
                body = current_app.jinja_env.get_template("unavailable.html").render(
                    lang=locale, title=_(TITLES[503]), detail=detail, retry=request.method in ("GET", "HEAD"))
            except Exception:  # a page that cannot render must not turn the 503 into a 500
                log.exception("the unavailable page failed")
                body = f"{_(TITLES[503])}. {detail}\n"
                response = Response(body, 503, mimetype="text/plain")
            else:
                response = Response(body, 503, mimetype="text/html")
    response.headers["Retry-After"] = str(RETRY_AFTER)
    response.headers["Cache-Control"] = "no-store"  # and portal.security need not load the user to say so
    return response


def handle_outage(part: str, exc: Exception) -> Response:
    """A dependency is down: one log line (no traceback: an outage fails every request alike), then 503."""
    log.warning("%s unavailable on %s %s: %s", part, request.method, redact(request.path), type(exc).__name__)
    with contextlib.suppress(Exception):  # the connection is gone: its transaction with it
        db.session.rollback()
    return answer_unavailable()


def handle_unexpected(exc: Exception) -> Response | tuple[str, int]:
    """Log the error with a reference and its traceback; answer 500 quoting the reference (503 for an outage)."""
    part = dependency_down(exc)
    if part is not None:
        return handle_outage(part, exc)
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
