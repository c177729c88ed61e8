"""Opaque cursors for keyset pagination: url-safe base64 of the last row's sort key.

Clients must treat a cursor as opaque; the server checks its shape strictly and
answers 400 (problem+json) for anything it did not make. A cursor only moves
within the tenant the request is bound to, so it cannot reach other rows.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import datetime

from flask import abort
from flask_babel import gettext as _

MAX_CURSOR = 200


def encode_cursor(key: list[object]) -> str:
    """The cursor for sort key ``key`` (JSON-serialisable values)."""
    body = json.dumps(key, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(body).rstrip(b"=").decode()


def _bad() -> None:
    abort(400, description=_("The cursor is not valid. Use the next_cursor of a previous "
                             "response, or leave it out to start from the first page."))


def _decode(raw: str) -> list[object]:
    if len(raw) > MAX_CURSOR:
        _bad()
    try:
        body = base64.b64decode(raw + "=" * (-len(raw) % 4), altchars=b"-_", validate=True)
        key = json.loads(body)
    except (binascii.Error, ValueError):
        _bad()
    if not isinstance(key, list):
        _bad()
    return key


def decode_cursor(raw: str) -> list[object]:
    """The sort key of a cursor made by ``encode_cursor``; 400 when it is not one of ours."""
    return _decode(raw)


def decode_seq_cursor(raw: str | None) -> int | None:
    """The sequence number in a cursor made from ``[seq]``; 400 when malformed."""
    if raw is None:
        return None
    key = _decode(raw)
    if len(key) != 1 or type(key[0]) is not int or key[0] < 1:
        _bad()
    return key[0]


def decode_time_id_cursor(raw: str | None) -> tuple[datetime, uuid.UUID] | None:
    """The ``(created_at, id)`` in a cursor made from ``[iso time, uuid]``; 400 when malformed."""
    if raw is None:
        return None
    key = _decode(raw)
    if len(key) != 2 or not all(isinstance(part, str) for part in key):
        _bad()
    try:
        at, rid = datetime.fromisoformat(key[0]), uuid.UUID(key[1])
    except ValueError:
        _bad()
    if at.tzinfo is None:
        _bad()
    return at, rid
