"""The append-only, hash-chained audit log.

Two chains of one shape: one per tenant (``audit_events``, tenant-owned, shown
to the client as its access log) and one for the provider side
(``platform_audit_events``: sign-ins, staff and tenant changes, refusals).
Each row stores the hash of the previous row of its chain; writers of a chain
are serialised with a transaction-level advisory lock and write in the same
transaction as the action they record. The application's database role may
only SELECT and INSERT these tables (see the migrations), so it cannot rewrite
history; ``verify_rows`` finds any row that was edited or removed by someone who
can, up to the newest rows, and the signed checkpoints of each chain's head
(``portal.anchors``, kept outside the database) catch a rewrite of the whole tail
and rows cut from the end.

A tenant's row keeps who did it, from where and the details (names of files,
requests, tokens) sealed with the tenant's key (``sealed``; ``tenants.fields``):
the hash covers the sealed bytes, so the chain still verifies after offboarding
destroyed the key, while nothing of the content can be read any more. What stays
clear is the shape of the event: when, which side, which action, on what id.
``internal`` events (internal notes, time) are not shown in the client's access log.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Index,
    LargeBinary,
    String,
    UniqueConstraint,
    Uuid,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from tenants.context import Scope, bound, current_scope
from tenants.fields import seal_for, unseal_for
from tenants.isolation import TenantScoped
from tenants.keyring import KeyUnavailable
from tenants.models import Tenant, new_id, utcnow

GENESIS = bytes(32)
DETAILS = "audit_events.details"  # the sealed details' purpose (tenants.fields)


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
    # Tenant rows: the label, IP and data above, sealed with the tenant's key (they stay empty then).
    sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    internal: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false", nullable=False)
    prev_hash: Mapped[bytes] = mapped_column(LargeBinary(32), nullable=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32), nullable=False)

    def chain_key(self) -> str:
        return str(getattr(self, "tenant_id", None) or "platform")

    def compute_hash(self) -> bytes:
        """SHA-256 over the previous row's hash and the canonical form of this row."""
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
        # Added later: present only when set, so the rows written before keep their hashes.
        if self.sealed is not None:
            body["sealed"] = bytes(self.sealed).hex()
        if self.internal:
            body["internal"] = True
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(self.prev_hash + canonical.encode()).digest()

    def _opened(self) -> tuple[str | None, str | None, dict[str, Any]]:
        if self.sealed is None:
            return self.actor_label, self.ip, self.data or {}
        cached = self.__dict__.get("_opened_details")
        if cached is None:
            body = json.loads(unseal_for(DETAILS, self.sealed))
            cached = (body.get("label"), body.get("ip"), body.get("data") or {})
            self.__dict__["_opened_details"] = cached
        return cached

    @property
    def who(self) -> str | None:
        """Who did it, as recorded (decrypted for a sealed row)."""
        return self._opened()[0]

    @property
    def address(self) -> str | None:
        """The IP address it came from, if recorded."""
        return self._opened()[1]

    @property
    def details(self) -> dict[str, Any]:
        """What was recorded about it (names of files, requests, …)."""
        return self._opened()[2]


class AuditEvent(_ChainRow, TenantScoped, db.Model):
    """An event in one tenant's log: what the client sees as its access log."""

    __tablename__ = "audit_events"
    __table_args__ = (UniqueConstraint("tenant_id", "seq"),)


class PlatformAuditEvent(_ChainRow, db.Model):
    """An event on the provider side, not tied to one tenant."""

    __tablename__ = "platform_audit_events"
    __table_args__ = (UniqueConstraint("seq"),)


class _CheckpointRow:
    """A signed statement of a chain's head (``portal.anchors``): row ``seq`` had hash ``head_hash``.

    The authoritative copy is the signed record in object storage (``record``); this row is
    the database's copy, to show the client when its log was last anchored.
    """

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    seq: Mapped[int] = mapped_column(BigInteger, nullable=False)
    head_hash: Mapped[bytes] = mapped_column(LargeBinary(32), nullable=False)
    signed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    record: Mapped[str] = mapped_column(String(200), nullable=False)
    envelope: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)


class AuditCheckpoint(_CheckpointRow, TenantScoped, db.Model):
    """A signed checkpoint of one tenant's chain."""

    __tablename__ = "audit_checkpoints"
    __table_args__ = (Index("ix_audit_checkpoints_tenant_seq", "tenant_id", "seq"),)


class PlatformAuditCheckpoint(_CheckpointRow, db.Model):
    """A signed checkpoint of the platform chain."""

    __tablename__ = "platform_audit_checkpoints"
    __table_args__ = (Index("ix_platform_audit_checkpoints_seq", "seq"),)


class AuditReadMark(db.Model):
    """When a person's cross-tenant read (one reason, one set of tenants) was last written to the log.

    The platform log gets one row per such read per window (``CROSS_TENANT_AUDIT_WINDOW_SECONDS``),
    not one per page view: its growth is bounded by people x pages x sets of clients x windows.
    """

    __tablename__ = "audit_read_marks"

    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    reason: Mapped[str] = mapped_column(String(80), primary_key=True)
    scope_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


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
    internal: bool = False,
) -> _ChainRow:
    """Append an event to the tenant's chain (``tenant_id``) or the platform chain.

    Runs in the caller's transaction, so the event commits or rolls back with the
    action it records. ``tenant_id`` must be a tenant bound in the current scope; its
    row's label, IP and data are sealed with the tenant's key. ``internal`` keeps the
    event out of the client's access log (the provider's internal notes and time).
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
        internal=internal,
    )
    if tenant_id:
        row.tenant_id = tenant_id
        row.actor_label, row.ip, row.data = None, None, {}
        details = {"label": actor.label, "ip": ip, "data": data or {}}
        # A tenant whose key was destroyed keeps the event without its details, never with them in clear.
        with contextlib.suppress(KeyUnavailable):
            row.sealed = seal_for(tenant_id, DETAILS, json.dumps(details, ensure_ascii=False).encode())
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


# --- chain heads --------------------------------------------------------------------------

@dataclass(frozen=True)
class Head:
    """The newest row of a chain."""

    chain: str  # "platform" or a tenant's id
    seq: int
    hash: bytes


def all_tenants_scope() -> Scope:
    """A scope binding every tenant: the system's own reads over all chains (checkpoints, verify)."""
    ids = frozenset(db.session.scalars(select(Tenant.id)))
    return Scope(user_id=current_scope().user_id, tenant_ids=ids)


def _newest_per_tenant(model: Any, *columns: Any) -> list[Any]:
    """(tenant id, *columns) of each tenant's highest-seq row of ``model``, with every tenant bound.

    One index probe per tenant (a lateral LIMIT 1), not a pass over every row of every chain.
    """
    with bound(all_tenants_scope()):
        inner = (select(*columns).where(model.tenant_id == Tenant.id).order_by(model.seq.desc())
                 .limit(1).lateral())
        return db.session.execute(select(Tenant.id, *inner.c).join(inner, text("true"))
                                  .order_by(Tenant.id)).all()


def heads() -> list[Head]:
    """The head of the platform chain and of every tenant's chain that has rows."""
    out = []
    last = db.session.execute(select(PlatformAuditEvent.seq, PlatformAuditEvent.hash)
                              .order_by(PlatformAuditEvent.seq.desc()).limit(1)).first()
    if last is not None:
        out.append(Head("platform", last.seq, last.hash))
    rows = _newest_per_tenant(AuditEvent, AuditEvent.seq, AuditEvent.hash)
    return out + [Head(str(tid), seq, hash_) for tid, seq, hash_ in rows]


def last_checkpoints() -> dict[str, tuple[int, dict[str, Any]]]:
    """Each chain's newest checkpoint ("platform" and tenant ids): its seq and signed envelope."""
    out: dict[str, tuple[int, dict[str, Any]]] = {}
    platform = db.session.execute(select(PlatformAuditCheckpoint.seq, PlatformAuditCheckpoint.envelope)
                                  .order_by(PlatformAuditCheckpoint.seq.desc()).limit(1)).first()
    if platform is not None:
        out["platform"] = (platform.seq, platform.envelope)
    for tid, seq, envelope in _newest_per_tenant(AuditCheckpoint, AuditCheckpoint.seq, AuditCheckpoint.envelope):
        out[str(tid)] = (seq, envelope)
    return out
