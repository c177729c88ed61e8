"""The append-only, hash-chained audit log.

Two chains of one shape: one per tenant (``audit_events``, tenant-owned, shown
to the client as its access log) and one for the provider side
(``platform_audit_events``: sign-ins, staff and tenant changes, refusals).
Each row stores the hash of the previous row of its chain; writers of a chain
are serialised with a transaction-level advisory lock and write in the same
transaction as the action they record. The application's database role may
only SELECT and INSERT these tables (see the migrations), so it cannot rewrite
history; ``verify`` finds any row that was edited or removed by someone who can.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, LargeBinary, String, UniqueConstraint, Uuid, select, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from tenants.context import Scope, bound, current_scope
from tenants.isolation import TenantScoped
from tenants.models import Tenant, new_id, utcnow

GENESIS = bytes(32)


class _ChainRow:
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    seq: Mapped[int] = mapped_column(BigInteger, nullable=False)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    actor_label: Mapped[str | None] = mapped_column(String(254))
    actor_side: Mapped[str] = mapped_column(String(10), nullable=False)  # provider|client|system
    action: Mapped[str] = mapped_column(String(64), nullable=False)
    object_type: Mapped[str | None] = mapped_column(String(40))
    object_id: Mapped[str | None] = mapped_column(String(64))
    ip: Mapped[str | None] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, nullable=False)
    prev_hash: Mapped[bytes] = mapped_column(LargeBinary(32), nullable=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32), nullable=False)

    def chain_key(self) -> str:
        return str(getattr(self, "tenant_id", None) or "platform")

    def compute_hash(self) -> bytes:
        """SHA-256 over the canonical form of this row and the previous row's hash."""
        body = {
            "chain": self.chain_key(),
            "seq": self.seq,
            "at": self.occurred_at.isoformat(),
            "actor": str(self.actor_id) if self.actor_id else None,
            "label": self.actor_label,
            "side": self.actor_side,
            "action": self.action,
            "otype": self.object_type,
            "oid": self.object_id,
            "ip": self.ip,
            "data": self.data or {},
        }
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(self.prev_hash + canonical.encode()).digest()


class AuditEvent(_ChainRow, TenantScoped, db.Model):
    """An event in one tenant's log: what the client sees as its access log."""

    __tablename__ = "audit_events"
    __table_args__ = (UniqueConstraint("tenant_id", "seq"),)


class PlatformAuditEvent(_ChainRow, db.Model):
    """An event on the provider side, not tied to one tenant."""

    __tablename__ = "platform_audit_events"
    __table_args__ = (UniqueConstraint("seq"),)


@dataclass(frozen=True)
class Actor:
    """Who did it, as the audit log records it."""

    id: uuid.UUID | None
    label: str | None
    side: str  # provider | client | system

    @classmethod
    def of(cls, user: Any) -> Actor:
        if user is None or not getattr(user, "is_authenticated", False):
            return SYSTEM
        side = "provider" if user.provider_role else "client"
        return cls(user.id, user.email, side)


SYSTEM = Actor(None, "system", "system")


def _lock_key(chain: str) -> int:
    return int.from_bytes(hashlib.sha256(b"audit:" + chain.encode()).digest()[:8], "big", signed=True)


def record(
    action: str,
    actor: Actor,
    *,
    tenant_id: uuid.UUID | None = None,
    object_type: str | None = None,
    object_id: Any = None,
    ip: str | None = None,
    data: dict[str, Any] | None = None,
) -> _ChainRow:
    """Append an event to the tenant's chain (``tenant_id``) or the platform chain.

    Runs in the caller's transaction, so the event commits or rolls back with the
    action it records. ``tenant_id`` must be a tenant bound in the current scope.
    """
    model: type[_ChainRow] = AuditEvent if tenant_id else PlatformAuditEvent
    chain = str(tenant_id or "platform")
    session = db.session
    session.execute(text("select pg_advisory_xact_lock(:k)"), {"k": _lock_key(chain)})
    query = select(model.seq, model.hash).order_by(model.seq.desc()).limit(1)
    if tenant_id:
        query = query.where(AuditEvent.tenant_id == tenant_id)
    last = session.execute(query).first()
    row = model(
        seq=(last.seq + 1) if last else 1,
        prev_hash=last.hash if last else GENESIS,
        occurred_at=utcnow(),
        actor_id=actor.id,
        actor_label=actor.label,
        actor_side=actor.side,
        action=action,
        object_type=object_type,
        object_id=str(object_id) if object_id is not None else None,
        ip=ip,
        data=data or {},
    )
    if tenant_id:
        row.tenant_id = tenant_id
    row.hash = row.compute_hash()
    session.add(row)
    session.flush()
    return row


@dataclass(frozen=True)
class Problem:
    chain: str
    seq: int
    what: str

    def __str__(self) -> str:
        return f"{self.chain} #{self.seq}: {self.what}"


def verify_rows(chain: str, rows: Iterable[_ChainRow]) -> list[Problem]:
    """Check one chain's rows (in seq order) for edits, removals and reordering."""
    problems: list[Problem] = []
    expected_seq, prev = 1, GENESIS
    for row in rows:
        if row.seq != expected_seq:
            problems.append(Problem(chain, expected_seq, f"rows {expected_seq}..{row.seq - 1} are missing"))
        if row.prev_hash != prev:
            problems.append(Problem(chain, row.seq, "does not link to the row before it"))
        if row.compute_hash() != row.hash:
            problems.append(Problem(chain, row.seq, "content was changed after it was written"))
        expected_seq, prev = row.seq + 1, row.hash
    return problems


def verify_all() -> list[Problem]:
    """Verify the platform chain and every tenant's chain; returns what is wrong."""
    problems = verify_rows(
        "platform", db.session.scalars(select(PlatformAuditEvent).order_by(PlatformAuditEvent.seq))
    )
    for tenant in db.session.scalars(select(Tenant).order_by(Tenant.slug)).all():
        with bound(Scope(user_id=current_scope().user_id, tenant_ids=frozenset({tenant.id}))):
            rows = db.session.scalars(select(AuditEvent).order_by(AuditEvent.seq))
            problems += verify_rows(tenant.slug, rows)
    db.session.rollback()
    return problems
