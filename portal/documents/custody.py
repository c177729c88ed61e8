"""Custody of a tenant's keys over time: rotation of the tenant key and of the master key.

Rotation makes a new tenant key version and re-wraps every data key in the catalogue;
the objects themselves are not rewritten (each object's data key is what encrypts
it). When no object uses the old version any more it is retired (its key material
destroyed). Safe to run again after a crash: it continues with the objects still on
an old version. Exports and offboarding live in ``portal.offboarding``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import select, text

from portal.documents.models import StoredObject
from portal.documents.services import key_lock_name, vault_keyring
from portal.extensions import db
from tenants import audit
from tenants.context import Scope, bound
from tenants.models import Tenant, User
from tenants.policy import Role
from tenants.sealed import KeyRef

BATCH = 500


def system_scope(tenant: Tenant) -> bound:
    """Bind one tenant for a provider-side operation (rotation, bulk upload, offboarding's steps)."""
    return bound(Scope(tenant_ids=frozenset({tenant.id}), role=Role.PROVIDER_ADMIN))


# --- rotation ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Rotation:
    new: KeyRef
    rewrapped: int
    retired: list[int]
    pending: list[int]  # old versions still in use by an upload in progress: retired by a later run


class RotationBusy(RuntimeError):
    """Another rotation of the same tenant is running."""


_TRY_EXCLUSIVE = text("select pg_try_advisory_xact_lock(hashtextextended(:k, 0))")
_TRY_ROTATION = text("select pg_try_advisory_lock(hashtextextended(:k, 0))")
_END_ROTATION = text("select pg_advisory_unlock(hashtextextended(:k, 0))")


@contextmanager
def _one_rotation(tenant: Tenant) -> Iterator[None]:
    """One rotation of a tenant at a time (a session lock on a connection of its own: the rotation
    commits batch by batch). Two at once used to chase each other's new version for ever."""
    with db.engine.connect() as conn:
        key = {"k": f"rotation:{tenant.id}"}
        if not conn.execute(_TRY_ROTATION, key).scalar():
            raise RotationBusy(f"a key rotation of {tenant.slug} is running already; let it finish")
        try:
            yield
        finally:
            conn.execute(_END_ROTATION, key)


def _rewrap_batch(tenant: Tenant) -> int:
    """Re-wrap up to ``BATCH`` data keys not under the current version; returns how many."""
    # The current version is read for every batch: it names the version to reach.
    keyring = vault_keyring()
    current = keyring.current(tenant.id)
    batch = list(db.session.scalars(select(StoredObject).where(StoredObject.key_version != current.version)
                                    .order_by(StoredObject.id).limit(BATCH)))
    for obj in batch:
        ref, wrapped = keyring.rewrap(tenant.id, obj.id, KeyRef(obj.key_id, obj.key_version), obj.wrapped_dek)
        obj.key_id, obj.key_version, obj.wrapped_dek = ref.key_id, ref.version, wrapped
    db.session.flush()
    return len(batch)


def retire_unused(tenant: Tenant, *, wait_seconds: float = 30.0) -> tuple[int, list[int], list[int]]:
    """Retire the tenant's old key versions once no upload that used them can still commit.

    Takes the tenant's key lock exclusively (uploads hold it shared from wrapping a data key to
    committing its row), re-wraps what committed meanwhile, and retires the versions nothing uses.
    When uploads keep the lock for longer than ``wait_seconds``, nothing is retired now: returns
    (re-wrapped, retired, still pending). Call with the tenant bound.
    """
    keyring = vault_keyring()
    deadline = time.monotonic() + wait_seconds
    while not db.session.scalar(_TRY_EXCLUSIVE, {"k": key_lock_name(tenant.id)}):
        db.session.rollback()
        if time.monotonic() >= deadline:
            pending = [ref.version for ref, state in keyring.versions(tenant.id) if state == "active"]
            return 0, [], pending
        time.sleep(0.2)
    count = 0
    while batch := _rewrap_batch(tenant):  # what uploads committed since the main pass
        count += batch
    in_use = set(db.session.scalars(select(StoredObject.key_version).distinct()))
    # Commit the re-wraps before any key goes (a failed commit must not leave rows on a retired
    # version). It releases the lock, but every upload from here on wraps under the current version:
    # an upload takes the lock before it reads which version is current.
    db.session.commit()
    retired = []
    for ref, state in keyring.versions(tenant.id):
        if state == "active" and ref.version not in in_use:
            keyring.retire(tenant.id, ref.version)
            retired.append(ref.version)
    return count, retired, []


def rotate_tenant_key(tenant: Tenant, actor: User | None = None, *, wait_seconds: float = 30.0) -> Rotation:
    """New tenant key version; re-wrap every data key under it; retire versions nothing uses.

    Re-wrapping commits batch by batch, so a crash resumes with the rest on the next run; old
    versions are retired only when no upload that used them is still in progress
    (``retire_unused``), else they are reported as pending for a later run.
    """
    keyring = vault_keyring()
    with _one_rotation(tenant), system_scope(tenant):
        new = keyring.rotate_tenant(tenant.id)
        count = 0
        while batch := _rewrap_batch(tenant):
            db.session.commit()  # each batch holds: a crash resumes with the rest
            count += batch
        late, retired, pending = retire_unused(tenant, wait_seconds=wait_seconds)
        audit.record("keys.rotated", audit.Actor.of(actor), tenant_id=tenant.id, object_type="key",
                     object_id=new.key_id, data={"version": new.version, "rewrapped": count + late,
                                                 "retired": retired, "pending": pending})
        db.session.commit()
    return Rotation(new, count + late, retired, pending)


def rotate_master(new_kms_key_id: str | None = None, actor: User | None = None) -> int:
    """Re-wrap every tenant key under a new master key (or KMS key); returns how many."""
    count = vault_keyring().rotate_master(new_kms_key_id)
    audit.record("keys.master_rotated", audit.Actor.of(actor), object_type="key",
                 data={"tenant_keys": count, "kms_key_id": new_kms_key_id})
    db.session.commit()
    return count
