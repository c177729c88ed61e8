"""Field-level encryption for small secrets (TOTP secrets, queued mail bodies).

``FIELD_KEY`` holds one or more Fernet keys, comma-separated, newest first;
``MultiFernet`` decrypts with any of them, so keys rotate without downtime.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, MultiFernet
from flask import current_app


def _fernet() -> MultiFernet:
    keys = current_app.config["FIELD_KEY"].split(",")
    return MultiFernet([Fernet(k.strip()) for k in keys if k.strip()])


def seal(plaintext: str) -> bytes:
    """Encrypt a small text field."""
    return _fernet().encrypt(plaintext.encode())


def unseal(token: bytes) -> str:
    """Decrypt a field sealed by ``seal``; raises ``cryptography.fernet.InvalidToken`` if altered."""
    return _fernet().decrypt(token).decode()
