"""Security headers on every response, and what text may hold at all.

``unstorable`` is the rule ``portal/boundary.py`` applies to every request and the streamed
upload parser (``portal/documents/multipart.py``) to its fields: no NUL byte (PostgreSQL refuses
it in text) and no unpaired surrogate (it cannot be encoded to UTF-8).
"""

from __future__ import annotations

import re

from flask import Flask, Response, request
from flask_login import current_user

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_NAME_MAX = 100


def unstorable(text: str) -> bool:
    """True when ``text`` holds a NUL or an unpaired surrogate."""
    return _UNSTORABLE.search(text) is not None


def shown(name: str) -> str:
    """``name`` fit to print in an answer: the offending characters escaped, never echoed raw."""
    name = _UNSTORABLE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), name)
    return name if len(name) <= _NAME_MAX else name[:_NAME_MAX] + "…"


CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)


def _headers(response: Response) -> Response:
    h = response.headers
    h.setdefault("Content-Security-Policy", CSP)
    h["X-Content-Type-Options"] = "nosniff"
    h["X-Frame-Options"] = "DENY"
    # Invite and reset links carry a token in the URL: never leak it in a Referer.
    h["Referrer-Policy"] = "no-referrer"
    h["Cross-Origin-Opener-Policy"] = "same-origin"
    h["Permissions-Policy"] = "camera=(self), microphone=(), geolocation=()"
    if request.is_secure:
        h["Strict-Transport-Security"] = "max-age=63072000; includeSubDomains"
    cache = response.cache_control
    # Asked in this order, so that an answer that chose already never loads the user (a 503 while the
    # database is down: loading it would fail again, portal.errors.answer_unavailable).
    if request.endpoint != "static" and not (cache.private or cache.no_store) \
            and current_user and current_user.is_authenticated:
        # People's data: no-store, unless the view chose a private caching of its own (a thumbnail never
        # changes). Whatever it chose, a shared cache never keeps it.
        h["Cache-Control"] = "no-store"
    return response


def init_app(app: Flask) -> None:
    app.after_request(_headers)
