"""Signed statements: what the portal vouches for, verifiable by anyone with its published keys.

Audit-log checkpoints and deletion certificates are *statements* (JSON objects) signed
with Ed25519 by the provider's signing key, which the keyring holds outside the
database (``tenants.keyring.SIGNING_OWNER``). A signed statement is an *envelope*::

    {"statement": {...}, "signature": {"alg": "Ed25519", "key_id": "portal-signing-v1", "value": "<base64>"}}

The signature covers the statement's canonical JSON: keys sorted, no spaces, UTF-8
(``canonical``). The public keys are published (``/keys`` and ``/keys.json``), so a client
can check a certificate without trusting the portal's own verifier, e.g. with OpenSSL::

    openssl pkeyutl -verify -pubin -inkey portal-signing-v1.pem -rawin -in statement.json -sigfile signature.bin
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from tenants.keyring import Keyring

ALGORITHM = "Ed25519"
_KEY_ID = re.compile(r"^portal-signing-v([1-9][0-9]{0,8})$")


class BadSignature(ValueError):
    """A signed statement that does not verify; the message says why."""


@dataclass(frozen=True)
class PublicKey:
    """One published verification key."""

    key_id: str
    pem: str
    fingerprint: str  # SHA-256 of the raw 32-byte public key, hex

    def load(self) -> Ed25519PublicKey:
        key = serialization.load_pem_public_key(self.pem.encode())
        if not isinstance(key, Ed25519PublicKey):
            raise BadSignature(f"{self.key_id} is not an Ed25519 key")
        return key


def key_id(version: int) -> str:
    """The published name of a signing key version."""
    return f"portal-signing-v{version}"


def canonical(statement: Mapping[str, Any]) -> bytes:
    """The exact bytes that are signed: JSON with sorted keys, no spaces, UTF-8."""
    return json.dumps(statement, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign(keyring: Keyring, statement: Mapping[str, Any]) -> dict[str, Any]:
    """Sign ``statement`` with the current signing key; returns the envelope."""
    version, seed = keyring.signing_seed()
    value = Ed25519PrivateKey.from_private_bytes(seed).sign(canonical(statement))
    return {"statement": dict(statement),
            "signature": {"alg": ALGORITHM, "key_id": key_id(version), "value": base64.b64encode(value).decode()}}


def _public(seed: bytes, version: int) -> PublicKey:
    raw_key = Ed25519PrivateKey.from_private_bytes(seed).public_key()
    raw = raw_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    pem = raw_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return PublicKey(key_id(version), pem.decode(), hashlib.sha256(raw).hexdigest())


def public_keys(keyring: Keyring) -> list[PublicKey]:
    """Every signing key version's public key, oldest first (all of them verify what they signed)."""
    return [_public(keyring.signing_seed(v)[1], v) for v in keyring.signing_versions()]


def verify(envelope: Any, keys: Iterable[PublicKey]) -> dict[str, Any]:
    """The statement of ``envelope`` if its signature verifies under one of ``keys``; else ``BadSignature``."""
    if not isinstance(envelope, Mapping) or not isinstance(envelope.get("statement"), Mapping) \
            or not isinstance(envelope.get("signature"), Mapping):
        raise BadSignature("this is not a signed statement: it needs a 'statement' and a 'signature'")
    signature = envelope["signature"]
    if signature.get("alg") != ALGORITHM:
        raise BadSignature(f"unknown signature algorithm {signature.get('alg')!r}")
    wanted = str(signature.get("key_id", ""))
    key = next((k for k in keys if k.key_id == wanted), None)
    if key is None or not _KEY_ID.match(wanted):
        raise BadSignature(f"signed with {wanted!r}, which is not one of this portal's published keys")
    try:
        value = base64.b64decode(str(signature.get("value", "")), validate=True)
        key.load().verify(value, canonical(envelope["statement"]))
    except (InvalidSignature, ValueError):
        raise BadSignature("the signature does not match the statement: it was altered or forged") from None
    return dict(envelope["statement"])
