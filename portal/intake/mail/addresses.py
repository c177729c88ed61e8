"""A tenant's intake address: made, rotated, shown, and the tenant found from it.

The address is ``<slug prefix>.<16 base32 characters>@INTAKE_MAIL_DOMAIN``: 80 random bits, so it is as
hard to guess as a password, and the readable prefix only helps people tell their workspaces apart.
The receiver finds the tenant of an incoming address before any tenant is bound, the way a bearer
token finds its tenant (``portal.api.tokens``): it presents the SHA-256 of the local part in
``app.intake_address``, and row-level security admits exactly that one row (``tenants.rls``:
``PRESENTED_INTAKE_ADDRESS``, read-only), whichever tenant it belongs to. No other tenant's row is read,
and nothing outside ``intake_mail_addresses`` is widened.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid

from flask import current_app
from sqlalchemy import func, select, text

from portal.extensions import db
from portal.intake.mail.models import IntakeMailAddress
from tenants import audit
from tenants.models import Tenant, User, utcnow

RANDOM_BYTES = 10  # 80 bits: 16 base32 characters
PREFIX_MAX = 24  # of the tenant's slug; an RFC 5321 local part is at most 64 characters
_PRESENT = text("select set_config('app.intake_address', :hex, true)")


def domain() -> str:
    """The domain every intake address is at; empty when mail-in is off (production without it set)."""
    return str(current_app.config.get("INTAKE_MAIL_DOMAIN") or "").strip().lower()


def local_hash(local_part: str) -> bytes:
    """What is stored and looked up for a local part (case does not matter in an address here)."""
    return hashlib.sha256(local_part.strip().lower().encode()).digest()


def new_local_part(slug: str) -> str:
    """``<slug prefix>.<random>``: lowercase, so a sender's mail program cannot change it by case."""
    random = base64.b32encode(secrets.token_bytes(RANDOM_BYTES)).decode().rstrip("=").lower()
    return f"{slug[:PREFIX_MAX].rstrip('-')}.{random}"


def current(tenant: Tenant) -> IntakeMailAddress | None:
    """The bound tenant's current address row, or None before one was made."""
    return db.session.scalar(select(IntakeMailAddress).where(IntakeMailAddress.tenant_id == tenant.id,
                                                             IntakeMailAddress.retired_at.is_(None)))


def address_of(row: IntakeMailAddress | None) -> str | None:
    """The full address of a row (its local part is unsealed with the bound tenant's key)."""
    if row is None or not domain():
        return None
    return f"{row.local_part}@{domain()}"


def rotate(actor: User | None, tenant: Tenant, ip: str | None = None) -> str:
    """Make the tenant's intake address, or a new one in place of the current one, which stops working at once.

    The caller has checked ``tenant:mailin.manage`` (``actor`` None: the system, e.g. ``portal dev``) and
    bound the tenant. Audited (``intake.mail_address_created`` / ``_rotated``, never the address itself);
    commits. Returns the new address.
    """
    # Two rotations at once: the second waits here, then replaces the first one's new address.
    db.session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(f"mailin:{tenant.id}", 0))))
    old = db.session.scalar(select(IntakeMailAddress).where(IntakeMailAddress.retired_at.is_(None))
                            .execution_options(populate_existing=True))
    if old is not None:
        old.retired_at = utcnow()
        db.session.flush()  # the one-current-address index sees the old one retired first
    local = new_local_part(tenant.slug)
    row = IntakeMailAddress(tenant_id=tenant.id, local_hash=local_hash(local), local_part=local,
                            created_by_id=actor.id if actor is not None else None)
    db.session.add(row)
    db.session.flush()
    audit.record("intake.mail_address_rotated" if old else "intake.mail_address_created", audit.Actor.of(actor),
                 tenant_id=tenant.id, object_type="intake_mail_address", object_id=row.id, ip=ip,
                 data={"replaced": str(old.id)} if old else {})
    db.session.commit()
    return address_of(row)


def resolve(recipient: str) -> uuid.UUID | None:
    """The active tenant whose current intake address ``recipient`` is, or None (any other address).

    Needs no tenant bound, and must run with none: it reads the one row whose local part was presented.
    """
    addr = (recipient or "").strip().strip("<>").strip().lower()
    local, _at, at_domain = addr.rpartition("@")
    if not local or not domain() or at_domain != domain() or len(local) > 64:
        return None
    digest = local_hash(local)
    db.session.execute(_PRESENT, {"hex": digest.hex()})
    row = db.session.execute(select(IntakeMailAddress.tenant_id, IntakeMailAddress.retired_at)
                             .where(IntakeMailAddress.local_hash == digest)
                             .execution_options(rls_only=True)).first()
    db.session.execute(_PRESENT, {"hex": ""})  # the widening served its purpose: close it again
    if row is None or row.retired_at is not None:
        return None
    tenant = db.session.get(Tenant, row.tenant_id)
    return tenant.id if tenant is not None and tenant.is_active else None
