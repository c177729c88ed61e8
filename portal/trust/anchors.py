"""Anchors for the audit log outside the database: signed checkpoints of every chain's head.

The hash chains (``tenants.audit``) show any edit of a row *unless* whoever edits can
also recompute every later row, which the database's owner can, and they cannot show
rows cut from the end. So every ``CHECKPOINT_MINUTES`` (the scheduler) and at each
``portal audit verify``, the head of every chain that moved (its seq and hash) is
signed with the provider's signing key, which the keyring holds outside the database,
and written as one record to object storage (``records/audit-checkpoints/``; in
production a bucket prefix under S3 Object Lock). ``verify`` checks every row such a
checkpoint names: a rewritten history no longer ends in the signed hash, and a cut
log lacks the signed row. What no checkpoint covers yet (the rows written since the
newest) is the window ``docs/security.md`` states.
"""

from __future__ import annotations

import json
import logging
import secrets
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, text

from portal.documents.services import vault_storage
from portal.extensions import db
from tenants import audit, signing
from tenants.audit import AuditCheckpoint, AuditEvent, PlatformAuditCheckpoint, PlatformAuditEvent, Problem
from tenants.context import bound, for_tenant
from tenants.keyring import app_keyring
from tenants.models import Tenant, utcnow

log = logging.getLogger(__name__)
RECORDS = "audit-checkpoints"
CHECKPOINT_MINUTES = 10
_LOCK = text("select pg_advisory_xact_lock(hashtextextended('audit-checkpoints', 0))")


def _statement(head: audit.Head, at: datetime) -> dict[str, Any]:
    return {"type": "audit-checkpoint", "chain": head.chain, "seq": head.seq, "head": head.hash.hex(),
            "at": at.isoformat(timespec="seconds")}


def _still_anchored(head: audit.Head, previous: dict[str, Any] | None, keys: list[signing.PublicKey]) -> bool:
    """Whether the chain still holds the row its previous checkpoint signed (so extending it is sound)."""
    if previous is None:
        return True
    try:
        statement = signing.verify(previous, keys)
        return _hashes(head.chain, [int(statement["seq"])]).get(int(statement["seq"]), b"").hex() == statement["head"]
    except (signing.BadSignature, KeyError, ValueError):
        return False


def write_checkpoints(now: datetime | None = None, *, skip: frozenset[str] = frozenset()) -> int:
    """Sign the head of every chain that moved since its last checkpoint and store them; returns how many.

    A chain whose previous checkpoint no longer matches its rows (or ``skip``: chains a
    verification found wrong) is not checkpointed again, and the refusal is logged as an
    error: anchoring a rewritten history would make it look signed. The signed record
    reaches object storage before the database's copies commit, so a failure in between
    leaves a valid anchor, never a database row without one.
    """
    db.session.execute(_LOCK)  # two writers at once would only duplicate work
    last = audit.last_checkpoints()
    keys = signing.public_keys(app_keyring())
    moved = []
    for head in audit.heads():
        previous = last.get(head.chain)
        if head.chain in skip or previous is not None and previous[0] >= head.seq:
            continue
        if not _still_anchored(head, previous[1] if previous else None, keys):
            log.error("audit chain %s no longer matches its last signed checkpoint: not checkpointed; "
                      "run `portal audit verify`", head.chain)
            continue
        moved.append(head)
    if not moved:
        db.session.commit()
        return 0
    now = now or utcnow()
    keyring = app_keyring()
    envelopes = [signing.sign(keyring, _statement(h, now)) for h in moved]
    name = f"{now:%Y/%m/%d/%H%M%S}-{secrets.token_hex(4)}.json"
    vault_storage().put_record(RECORDS, name, json.dumps({"checkpoints": envelopes}, sort_keys=True).encode())
    with bound(audit.all_tenants_scope()):
        for head, envelope in zip(moved, envelopes, strict=True):
            values = {"seq": head.seq, "head_hash": head.hash, "signed_at": now, "record": name, "envelope": envelope}
            if head.chain == "platform":
                db.session.add(PlatformAuditCheckpoint(**values))
            else:
                db.session.add(AuditCheckpoint(tenant_id=uuid.UUID(head.chain), **values))
        db.session.flush()
    db.session.commit()
    return len(moved)


@dataclass(frozen=True)
class Signed:
    """What one stored checkpoint says about one row."""

    head: str
    at: str
    record: str


def stored_checkpoints(problems: list[Problem]) -> dict[str, dict[int, Signed]]:
    """Every checkpoint in object storage whose signature verifies, by chain and seq.

    A record that cannot be read or a signature that does not verify is a problem:
    someone wrote or altered a record without the signing key.
    """
    keys = signing.public_keys(app_keyring())
    found: dict[str, dict[int, Signed]] = defaultdict(dict)
    for name, data in vault_storage().records(RECORDS):
        try:
            envelopes = json.loads(data)["checkpoints"]
        except (ValueError, KeyError, TypeError):
            problems.append(Problem("checkpoints", 0, f"record {name} is not a checkpoint record"))
            continue
        for envelope in envelopes:
            try:
                st = signing.verify(envelope, keys)
                found[str(st["chain"])][int(st["seq"])] = Signed(str(st["head"]), str(st["at"]), name)
            except (signing.BadSignature, KeyError, ValueError) as exc:
                problems.append(Problem("checkpoints", 0, f"record {name}: {exc}"))
    return found


def _hashes(chain: str, seqs: list[int]) -> dict[int, bytes]:
    if chain == "platform":
        return dict(db.session.execute(select(PlatformAuditEvent.seq, PlatformAuditEvent.hash)
                                       .where(PlatformAuditEvent.seq.in_(seqs))).all())
    tenant_id = uuid.UUID(chain)
    with for_tenant(tenant_id):
        return dict(db.session.execute(select(AuditEvent.seq, AuditEvent.hash)
                                       .where(AuditEvent.tenant_id == tenant_id, AuditEvent.seq.in_(seqs))).all())


def check_against_checkpoints(problems: list[Problem]) -> int:
    """Compare the rows every stored checkpoint names with the database; returns how many were checked."""
    names = {str(t): s for t, s in db.session.execute(select(Tenant.id, Tenant.slug))}
    checked = 0
    for chain, signed in sorted(stored_checkpoints(problems).items()):
        label = "platform" if chain == "platform" else names.get(chain, f"tenant {chain}")
        hashes = _hashes(chain, sorted(signed))
        for seq, cp in sorted(signed.items()):
            checked += 1
            have = hashes.get(seq)
            if have is None:
                problems.append(Problem(label, seq, f"is missing, though the checkpoint signed at {cp.at} covers it: "
                                                    "rows were cut from the log"))
            elif have.hex() != cp.head:
                problems.append(Problem(label, seq, f"differs from the checkpoint signed at {cp.at}: the history "
                                                    "up to it was rewritten"))
    db.session.rollback()
    return checked


@dataclass(frozen=True)
class Verification:
    """The outcome of ``verify``."""

    problems: list[Problem]
    checkpoints_checked: int
    checkpointed_now: int


def verify(*, checkpoint: bool = True) -> Verification:
    """Check every chain row by row and against every stored checkpoint; then checkpoint the sound heads.

    Chains found wrong are not checkpointed again: anchoring a tampered head would make the
    tampering look signed. ``checkpoint=False`` writes nothing: a restore drill's copy of the
    database must not sign its heads into the production records.
    """
    problems = audit.verify_all()
    checked = check_against_checkpoints(problems)
    if not checkpoint:
        return Verification(problems, checked, 0)
    ids = {t.slug: str(t.id) for t in db.session.scalars(select(Tenant))}
    wrong = frozenset(ids.get(p.chain, p.chain) for p in problems)
    written = write_checkpoints(skip=wrong)
    return Verification(problems, checked, written)


def latest_checkpoint() -> AuditCheckpoint | None:
    """The bound tenant's newest checkpoint (its access-log page shows it)."""
    return db.session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.seq.desc()).limit(1)).first()
