"""Crypto-shredding that no restore undoes, and the check every restore ends with.

Offboarding destroys a tenant's keys (``Keyring.destroy_tenant``). Three places remember
it, and after a disaster each is restored to a different age:

* the keyring's register (``<key dir>/shredded/``), checked on every key load: as old as
  the key-directory backup that was restored;
* the database's ``offboardings`` rows: as old as the database backup (minutes, with
  point-in-time recovery);
* a statement signed with the provider's key in object storage (``records/shredded-keys/``),
  written before the keys are destroyed. The bucket is never rolled back to a backup and
  Object Lock keeps its records from being deleted, so it is newer than any backup.

The key directory changes rarely and is copied less often than the database's WAL, so it
is usually the oldest of the three; one copied before a destruction holds the key again
and its register lacks the entry. ``verify_restore`` (``portal keys verify-restore``,
run after every restore and before the portal serves again) reads the two newer sources
and destroys again, with its first date, every key they name that the restored
directory still holds. It also opens one stored object per tenant and key version, so a
key backup older than a key (the objects under it cannot be read) shows before anyone
asks for a document.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import distinct_on

from portal.documents.models import StoredObject
from portal.documents.services import read_object, vault_storage
from portal.extensions import db
from portal.offboarding.models import Offboarding
from tenants import audit, signing
from tenants.context import bound
from tenants.keyring import SIGNING_OWNER, app_keyring
from tenants.models import LIVE_STATUSES, Tenant, utcnow
from tenants.sealed import IntegrityError

RECORDS = "shredded-keys"
STATEMENT = "tenant-key-destroyed"


def record_destruction(tenant: Tenant, keys: list[str]) -> None:
    """Store the signed statement that ``tenant``'s keys are destroyed; call it before destroying them.

    For the provider's side (offboarding): the record outlives every backup, so a restore of an
    older key directory cannot bring the keys back unnoticed (``verify_restore``).
    """
    keyring = app_keyring()
    envelope = signing.sign(keyring, {"type": STATEMENT, "tenant_id": str(tenant.id), "tenant_slug": tenant.slug,
                                      "key_id": keyring.key_id(tenant.id), "keys": list(keys),
                                      "at": utcnow().isoformat(timespec="seconds")})
    vault_storage().put_record(RECORDS, f"{tenant.id}-{secrets.token_hex(4)}.json",
                               json.dumps(envelope, sort_keys=True).encode())


@dataclass
class Shredded:
    """A tenant whose key must stay destroyed, and what says so."""

    tenant_id: uuid.UUID
    name: str  # its short name, or its id when the restored database does not know it
    destroyed_at: str  # the earliest date a source gives (ISO 8601)
    sources: list[str] = field(default_factory=list)
    restored: bool = False  # the key directory held it again (destroyed again unless a dry run)


@dataclass(frozen=True)
class Unreadable:
    """A live tenant's object that the restored keys and store do not open."""

    tenant: str
    key: str  # "tenant:<uuid> v<N>"
    object_id: uuid.UUID
    reason: str


@dataclass(frozen=True)
class RestoreCheck:
    """What ``verify_restore`` found."""

    shredded: list[Shredded]
    unreadable: list[Unreadable]
    problems: list[str]  # records that cannot be read or whose signature does not verify
    objects_opened: int

    @property
    def restored(self) -> list[Shredded]:
        return [s for s in self.shredded if s.restored]


def _note(found: dict[uuid.UUID, Shredded], tenant_id: uuid.UUID, when: str, source: str) -> None:
    entry = found.setdefault(tenant_id, Shredded(tenant_id, str(tenant_id), when))
    if when and (not entry.destroyed_at or when < entry.destroyed_at):
        entry.destroyed_at = when
    entry.sources.append(source)


def _signed_records(found: dict[uuid.UUID, Shredded], problems: list[str]) -> None:
    records = list(vault_storage().records(RECORDS))
    if records and not app_keyring().versions(SIGNING_OWNER):
        # Asking for the public keys would make a new signing key, which verifies nothing signed before.
        problems.append(f"the key directory holds no signing key: {len(records)} records were not verified")
        return
    keys = signing.public_keys(app_keyring())
    for name, data in records:
        try:
            statement = signing.verify(json.loads(data), keys)
            if statement.get("type") != STATEMENT:
                raise ValueError(f"not a {STATEMENT} statement")
            _note(found, uuid.UUID(str(statement["tenant_id"])), str(statement.get("at") or ""), f"record {name}")
        except (signing.BadSignature, ValueError, KeyError, TypeError) as exc:
            # Acting on it could destroy a live tenant's key on the word of whoever wrote it.
            problems.append(f"record {name} was not acted on: {exc}")


def _sample(tenant_ids: set[uuid.UUID] | None, skip: set[uuid.UUID]) -> tuple[list[Unreadable], int]:
    """Read the newest content object of every live tenant and key version; compare its SHA-256."""
    with bound(audit.all_tenants_scope()):
        names = dict(db.session.execute(select(Tenant.id, Tenant.slug).where(Tenant.status.in_(LIVE_STATUSES))).all())
        wanted = [t for t in names if t not in skip and (tenant_ids is None or t in tenant_ids)]
        objects = db.session.scalars(
            select(StoredObject).where(StoredObject.purpose == "content", StoredObject.tenant_id.in_(wanted))
            .ext(distinct_on(StoredObject.tenant_id, StoredObject.key_version))
            .order_by(StoredObject.tenant_id, StoredObject.key_version, StoredObject.created_at.desc())).all()
        for obj in objects:
            db.session.expunge(obj)
        db.session.rollback()
    unreadable = []
    for obj in objects:
        digest = hashlib.sha256()
        try:
            stream = read_object(obj)
            try:
                for chunk in stream:
                    digest.update(chunk)
            finally:
                stream.close()
            if digest.hexdigest() != obj.sha256:
                raise IntegrityError("its content does not match the SHA-256 in the catalogue")
        except Exception as exc:  # noqa: BLE001 - every reason an object does not open is a finding
            unreadable.append(Unreadable(names[obj.tenant_id], f"{obj.key_id} v{obj.key_version}", obj.id,
                                         f"{type(exc).__name__}: {exc}"))
    return unreadable, len(objects)


def verify_restore(*, dry_run: bool = False, tenant_ids: set[uuid.UUID] | None = None) -> RestoreCheck:
    """After a restore: destroy again every shredded key the key directory brought back; sample the rest.

    For the provider's operators (the command line), before the portal serves. Every tenant
    the register, the restored database or a verified record names as shredded whose key the
    key directory holds again is destroyed again (``dry_run``: only reported), and the
    platform audit log says so. Then one content object per live tenant (``tenant_ids``:
    only these) and key version is opened with the restored keys and store.
    """
    keyring = app_keyring()
    found: dict[uuid.UUID, Shredded] = {}
    problems: list[str] = []
    for tenant_id, when in keyring.shredded().items():
        _note(found, tenant_id, when, "key directory")
    for tenant_id, started_at in db.session.execute(select(Offboarding.tenant_id, Offboarding.started_at)):
        _note(found, tenant_id, started_at.isoformat(timespec="seconds"), "database")
    _signed_records(found, problems)
    names = dict(db.session.execute(select(Tenant.id, Tenant.slug).where(Tenant.id.in_(list(found)))).all())
    register = keyring.shredded()
    for entry in found.values():
        entry.name = names.get(entry.tenant_id, entry.name)
        states = {state for _ref, state in keyring.versions(entry.tenant_id)}
        entry.restored = entry.tenant_id not in register or bool(states - {"destroyed"})
        if entry.restored and not dry_run:
            again = keyring.destroy_tenant(entry.tenant_id, destroyed_at=entry.destroyed_at or None)
            audit.record("keys.destroyed_again", audit.SYSTEM, object_type="tenant", object_id=entry.tenant_id,
                         data={"slug": entry.name, "versions": [ref.version for ref in again],
                               "sources": entry.sources})
    db.session.commit()
    unreadable, opened = _sample(tenant_ids, set(found))
    return RestoreCheck(sorted(found.values(), key=lambda s: s.name), unreadable, problems, opened)
