"""Signed documents people keep (deletion certificates): a readable text with the signed statement inside.

A certificate is text a person can read, followed by the signed statement it
renders, between ``BEGIN``/``END`` markers. Only the statement counts: ``check``
takes the statement out of a certificate file (or a bare JSON envelope), verifies its
signature against this portal's published keys and returns what it states.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from tenants import signing
from tenants.keyring import app_keyring

BEGIN = "-----BEGIN SIGNED STATEMENT-----"
END = "-----END SIGNED STATEMENT-----"
_BLOCK = re.compile(re.escape(BEGIN) + r"\s*(\{.*\})\s*" + re.escape(END), re.DOTALL)
MAX_BYTES = 256 * 1024


class NotACertificate(ValueError):
    """The text holds no signed statement; the message says what was expected."""


def render(envelope: dict[str, Any], title: str, lines: Iterable[str]) -> str:
    """The certificate as text: a title, readable lines, then the signed statement."""
    statement = json.dumps(envelope, indent=1, sort_keys=True, ensure_ascii=False)
    return f"{title}\n{'=' * len(title)}\n\n" + "\n".join(lines) + f"\n\n{BEGIN}\n{statement}\n{END}\n"


def extract(text: str) -> dict[str, Any]:
    """The signed envelope inside a certificate's text, or a bare JSON envelope."""
    match = _BLOCK.search(text)
    raw = match.group(1) if match else text.strip()
    try:
        envelope = json.loads(raw)
    except ValueError:
        raise NotACertificate("No signed statement was found: upload the certificate file exactly as it was "
                              f"e-mailed, including the lines {BEGIN} and {END}.") from None
    if not isinstance(envelope, dict):
        raise NotACertificate("The signed statement is not a JSON object.")
    return envelope


def check(text: str, keys: Iterable[signing.PublicKey] | None = None) -> dict[str, Any]:
    """What the certificate states, once its signature verified; ``signing.BadSignature`` otherwise."""
    if len(text.encode()) > MAX_BYTES:
        raise NotACertificate("This file is too large to be a certificate.")
    return signing.verify(extract(text), list(keys) if keys is not None else signing.public_keys(app_keyring()))
