"""Field-level encryption: small secrets and the free text of a tenant's rows.

Two kinds:

* Provider-wide secrets that belong to people, not tenants (TOTP secrets, queued
  mail bodies): ``seal``/``unseal`` with ``FIELD_KEY``, one or more Fernet keys,
  comma-separated, newest first; ``MultiFernet`` decrypts with any of them, so keys
  rotate without downtime.
* A tenant's free text (task titles and descriptions, comments, request texts, time
  notes, token names, audit details): sealed with the tenant's own field key
  (``tenants.keyring``, wrapped under the tenant key), so that destroying the tenant's
  key on offboarding leaves every copy unreadable: live rows, dead rows, WAL and
  backups. Columns declare it with the ``Sealed`` type; the tenant is the one bound
  when the row is written (``tenants.context``), and it travels in the sealed bytes,
  so reading needs nothing but the value. A value is::

      b"\\x00\\x01" || tenant id (16) || nonce (12) || AES-256-GCM(field key, text, aad) || tag (16)
      aad = b"portal-field:v1|" || tenant id || purpose ("tasks.title", ...)

  The purpose in the associated data keeps a value from being moved to another column
  or tenant unnoticed. Text can never start with a NUL byte (the boundary refuses it and
  PostgreSQL cannot store it), so rows written before a column was sealed read as plain
  UTF-8 until ``portal data seal`` rewrites them.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import uuid
from collections.abc import Iterable
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet, MultiFernet
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import current_app
from sqlalchemy import LargeBinary
from sqlalchemy import cast as sa_cast
from sqlalchemy.types import TypeDecorator

from tenants.context import current_scope
from tenants.isolation import TenantContextMissing
from tenants.keyring import app_keyring
from tenants.sealed import IntegrityError

MAGIC = b"\x00\x01"
_NONCE = 12
_HEAD = len(MAGIC) + 16 + _NONCE


def _fernet() -> MultiFernet:
    keys = current_app.config["FIELD_KEY"].split(",")
    return MultiFernet([Fernet(k.strip()) for k in keys if k.strip()])


def seal(plaintext: str) -> bytes:
    """Encrypt a small provider-wide secret."""
    return _fernet().encrypt(plaintext.encode())


def unseal(token: bytes) -> str:
    """Decrypt a field sealed by ``seal``; raises ``cryptography.fernet.InvalidToken`` if altered."""
    return _fernet().decrypt(token).decode()


# --- a tenant's free text ----------------------------------------------------------------------

def _aad(tenant_id: uuid.UUID, purpose: str) -> bytes:
    return b"portal-field:v1|" + tenant_id.bytes + purpose.encode()


def seal_for(tenant_id: uuid.UUID, purpose: str, plaintext: bytes) -> bytes:
    """Seal ``plaintext`` under ``tenant_id``'s field key for the column ``purpose``."""
    nonce = os.urandom(_NONCE)
    key = app_keyring().field_key(tenant_id)
    return MAGIC + tenant_id.bytes + nonce + AESGCM(key).encrypt(nonce, plaintext, _aad(tenant_id, purpose))


BLIND_TOKEN_BYTES = 12  # 96 bits: no two words of a tenant meet by chance


def blind_tokens(tenant_id: uuid.UUID, purpose: str, terms: Iterable[str]) -> list[bytes]:
    """Keyed hashes of ``terms`` under the tenant's field key, for finding rows by a word without the word.

    HMAC-SHA256 with a key derived from the field key for ``purpose``, cut to 12 bytes. The database
    can match equal tokens (an index over them) but never learns a word; once the tenant's key is
    destroyed (offboarding), no one can ever compute a token again, so copies in backups say nothing.
    """
    key = hmac.new(app_keyring().field_key(tenant_id), b"portal-blind:v1|" + purpose.encode(), hashlib.sha256)
    derived = key.digest()
    return [hmac.new(derived, term.encode(), hashlib.sha256).digest()[:BLIND_TOKEN_BYTES] for term in terms]


def is_sealed(value: bytes | None) -> bool:
    """Whether ``value`` was written by ``seal_for`` (else it is legacy plain UTF-8)."""
    return value is not None and bytes(value[:len(MAGIC)]) == MAGIC


def tenant_of(value: bytes) -> uuid.UUID:
    """The tenant whose key sealed ``value``."""
    return uuid.UUID(bytes=bytes(value[len(MAGIC):len(MAGIC) + 16]))


def unseal_for(purpose: str, value: bytes) -> bytes:
    """The plaintext of a value sealed for ``purpose``; legacy plain values are returned as they are.

    ``KeyUnavailable`` once the tenant's key was destroyed; ``IntegrityError`` if altered or moved.
    """
    value = bytes(value)
    if not is_sealed(value):
        return value
    if len(value) < _HEAD + 16:
        raise IntegrityError(f"a sealed {purpose} value is truncated")
    tenant_id = tenant_of(value)
    nonce = value[len(MAGIC) + 16:_HEAD]
    try:
        return AESGCM(app_keyring().field_key(tenant_id)).decrypt(nonce, value[_HEAD:], _aad(tenant_id, purpose))
    except InvalidTag:
        raise IntegrityError(f"a sealed {purpose} value was altered or does not belong here") from None


def bound_tenant(purpose: str) -> uuid.UUID:
    """The one tenant a sealed column is written for: the bound one (several bound is refused)."""
    tenant_id = current_scope().tenant_id
    if tenant_id is None:
        raise TenantContextMissing(f"{purpose} is sealed with a tenant's key: bind exactly one tenant to write it")
    return tenant_id


class SealedColumnQuery(TypeError):
    """SQL compared or sorted a sealed column: the database holds only ciphertext, so it would be wrong."""


class Sealed(TypeDecorator):
    """A text column sealed with the bound tenant's field key (see the module docstring).

    Compare and sort such columns in Python: the database only holds ciphertext, so any
    SQL operator on them but ``IS [NOT] NULL`` raises ``SealedColumnQuery`` instead of
    silently matching nothing.
    """

    impl = LargeBinary
    cache_ok = True

    class Comparator(TypeDecorator.Comparator):
        _ALLOWED = frozenset({"is_", "is_not", "isnot"})

        def operate(self, op: Any, *other: Any, **kwargs: Any) -> Any:
            if getattr(op, "__name__", "") not in self._ALLOWED:
                raise SealedColumnQuery(f"{self.type.purpose} is sealed: compare or sort it in Python, "
                                        f"not with SQL {getattr(op, '__name__', op)}")
            return super().operate(op, *other, **kwargs)

        def reverse_operate(self, op: Any, other: Any, **kwargs: Any) -> Any:
            raise SealedColumnQuery(f"{self.type.purpose} is sealed: compare it in Python")

    comparator_factory = Comparator

    def __init__(self, purpose: str) -> None:
        super().__init__()
        self.purpose = purpose

    def process_bind_param(self, value: Any, dialect: Any) -> bytes | None:
        if value is None:
            return None
        return seal_for(bound_tenant(self.purpose), self.purpose, str(value).encode())

    def process_result_value(self, value: Any, dialect: Any) -> str | None:
        if value is None:
            return None
        return unseal_for(self.purpose, value).decode()


def seal_legacy_values(session: Any, tenant_id: uuid.UUID) -> int:
    """Rewrite the bound tenant's plain values in sealed columns (rows written before a column was sealed).

    Returns how many values were sealed. Idempotent: sealed values are left alone.
    """
    from sqlalchemy import func, literal, select, update

    from portal.extensions import db

    count = 0
    for table in db.metadata.sorted_tables:
        columns = [c for c in table.columns if isinstance(c.type, Sealed)]
        if not columns or "tenant_id" not in table.c or "id" not in table.c:
            continue
        for column in columns:
            raw = column.type.impl_instance  # read the bytes as stored, without unsealing them
            stored = sa_cast(column, raw)
            rows = session.execute(select(table.c.id, stored).where(
                table.c.tenant_id == tenant_id, column.is_not(None),
                func.substring(stored, 1, len(MAGIC)) != literal(MAGIC, raw))).all()
            for row_id, value in rows:
                session.execute(update(table).where(table.c.id == row_id)
                                .values({column.name: bytes(value).decode()}))
                count += 1
    return count
