"""The outer boundary: characters no text column can hold are refused once, for every request.

PostgreSQL refuses a NUL byte in text, and psycopg cannot encode an unpaired surrogate
(U+D800..U+DFFF) to UTF-8; either one reaching a query answered 500, even before sign-in.
``refuse_unstorable`` runs before the gate (and before any view) and answers 400 naming
where the character was: the address, a query parameter, a header, a form field or a JSON
member (keys and values, nested). Werkzeug decodes bad percent-encoded UTF-8 to U+FFFD, so
a surrogate arrives mainly through JSON (``"\\ud800"``); a NUL arrives anywhere.

The bodies of the streamed uploads are not parsed here: their views read ``request.stream``
through ``portal/documents/multipart.py`` (which refuses such fields itself), and parsing the
form here would read and spool every file first.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from flask import Flask, abort, request
from flask_babel import gettext as _

from portal.security import shown, unstorable

# The views that read their multipart body as a stream (``multipart.iter_parts``).
STREAMED = frozenset({"documents.upload", "api_v1.upload_documents"})


def _json_items(value: object, prefix: str = "") -> Iterator[tuple[str, str]]:
    """(dotted name, text) of every key and string value of a JSON document."""
    if isinstance(value, dict):
        for key, item in value.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            yield name, str(key)
            yield from _json_items(item, name)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _json_items(item, f"{prefix}.{index}" if prefix else str(index))
    elif isinstance(value, str):
        yield prefix, value


def _pairs(items: Iterable[tuple[str, str]]) -> Iterator[tuple[str, str]]:
    for key, value in items:
        yield key, key
        yield key, value


def _first_bad(items: Iterable[tuple[str, str]]) -> str | None:
    return next((name for name, text in items if unstorable(text)), None)


def _form_is_safe_to_parse() -> bool:
    # A urlencoded body is small and parsed in memory; a multipart one only where the view
    # would have parsed it anyway (CSRF and WTForms do), not where it is streamed.
    return request.mimetype == "application/x-www-form-urlencoded" or (
        request.mimetype == "multipart/form-data" and request.endpoint not in STREAMED)


def refuse_unstorable() -> None:
    """Answer 400 if any part of the request holds a NUL byte or an unpaired surrogate."""
    if unstorable(request.path):
        abort(400, description=_("The request contains a character that is not allowed (a NUL byte or an "
                                 "unpaired surrogate) in its address. Remove it and try again."))
    sources: list[Iterable[tuple[str, str]]] = [_pairs(request.args.items(multi=True)), _pairs(request.headers)]
    if _form_is_safe_to_parse():
        sources.append(_pairs(request.form.items(multi=True)))
    if request.is_json:
        sources.append(_json_items(request.get_json(silent=True)))
    for source in sources:
        name = _first_bad(source)
        if name is not None:
            abort(400, description=_("The request contains a character that is not allowed (a NUL byte or an "
                                     "unpaired surrogate) in the field '%(name)s'. Remove it and try again.",
                                     name=shown(name)))


def init_app(app: Flask) -> None:
    app.before_request(refuse_unstorable)
