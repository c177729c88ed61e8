"""Offboarding: the tenant leaves, and nothing of its content stays readable.

A recorded, resumable procedure (``Offboarding``): every step is idempotent and commits
with the step it reached, so a crash at any point leaves the tenant closed to everyone
and ``offboard`` run again continues where it stopped.

1. ``closed``: the tenant stops existing for everyone (its URLs answer 404, it leaves every
   workspace picker and cross-tenant page, its API tokens stop working); the key versions
   about to be destroyed, the people whose membership ends and the counts the certificate
   states are recorded first.
2. ``keys``: a signed record of the destruction goes to object storage, where no restore rolls it
   back (``portal.trust.shredding``); then every version of the tenant key and its field key are
   destroyed. From here nothing the tenant stored decrypts: documents, and the sealed free
   text of its rows (task titles, comments, request texts, notes, token names, the audit
   log's details), wherever a copy of it lies (dead rows, WAL, backups).
3. ``objects``: every stored object (documents, thumbnails, exports) is deleted.
4. ``rows``: every row of every tenant-owned table is deleted, except the audit log and its
   signed checkpoints, which keep their shape (time, side, action) and hash chain over
   details nobody can read any more.
5. ``people``: client users left with no workspace are disabled and their personal data
   erased; queued e-mails to them are dropped.
6. ``certified``: the tenant row keeps its short name only; a deletion certificate stating
   exactly the above, signed with the provider's key (``tenants.signing``), goes to the
   client admins, and the audit log's heads are checkpointed.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

from flask import current_app
from sqlalchemy import delete, func, select, text, update

from portal.documents.custody import system_scope
from portal.documents.models import Document, StoredObject
from portal.documents.services import vault_storage
from portal.extensions import db
from portal.mail import MailMessage
from portal.mail import send as send_mail
from portal.offboarding.models import Offboarding
from portal.trust import anchors, certificates, shredding
from tenants import audit, signing
from tenants.audit import AuditCheckpoint, AuditEvent
from tenants.context import bound
from tenants.fields import seal, unseal
from tenants.isolation import TenantScoped
from tenants.keyring import app_keyring
from tenants.models import ApiToken, AuthSession, Membership, RecoveryCode, Tenant, User, UserToken, new_id, utcnow
from tenants.policy import Role

STEPS = ("closed", "keys", "objects", "rows", "people", "certified")
# Tenant-owned tables whose rows stay: the audit chain must still verify (its details are sealed
# with the destroyed key) and its signed checkpoints anchor it.
RETAINED = frozenset({AuditEvent.__tablename__, AuditCheckpoint.__tablename__})
ERASED_NAME = "Erased user"


class OffboardError(ValueError):
    """Offboarding cannot start or go on; the message says why and what to do."""


def actor_label(actor: User | None, via: str) -> str:
    """Who offboarded, as the certificate and the audit log name them."""
    if actor is None:
        return f"the provider's system, {via}"
    return f"{actor.name} <{actor.email}> ({(actor.provider_role or 'user').replace('_', ' ')}), {via}"


@dataclass(frozen=True)
class Result:
    """What ``offboard`` did: its record, and the certificate (None when it had been finished before)."""

    record: Offboarding
    certificate: str | None


def offboard(tenant: Tenant, actor: User | None, *, via: str, ip: str | None = None) -> Result:
    """Offboard ``tenant`` (or resume an offboarding that stopped part-way); returns the certificate text.

    ``actor`` is a provider admin (None: the system); ``via`` says where they acted from
    ("from the command line", "from the provider console").
    """
    if actor is not None and actor.provider_role != Role.PROVIDER_ADMIN:
        raise OffboardError("Only a provider admin can offboard a tenant.")
    record = db.session.scalar(select(Offboarding).where(Offboarding.tenant_id == tenant.id))
    if record is None:
        if tenant.status == "offboarded":
            raise OffboardError(f"{tenant.slug} was offboarded already.")
        record = _close(tenant, actor, via, ip)
    if record.finished_at is not None:
        return Result(record, None)
    certificate = None
    for step in STEPS[STEPS.index(record.step) + 1:]:
        outcome = _STEP[step](record, tenant)
        record.step = step
        db.session.commit()
        if step == "certified":
            certificate = outcome
    return Result(record, certificate)


# --- 1. closed ----------------------------------------------------------------------------------

def _close(tenant: Tenant, actor: User | None, via: str, ip: str | None) -> Offboarding:
    keyring = app_keyring()
    with system_scope(tenant):
        members = db.session.execute(select(Membership.user_id, Membership.role, User.email)
                                     .join(User, User.id == Membership.user_id)).all()
        objects = db.session.execute(select(StoredObject.purpose, func.count(), func.coalesce(func.sum(
            StoredObject.size), 0)).group_by(StoredObject.purpose)).all()
        stats: dict[str, Any] = {
            "documents": db.session.scalar(select(func.count()).select_from(Document)) or 0,
            "objects": sum(n for _p, n, _b in objects),
            "bytes": int(sum(b for _p, _n, b in objects)),
            "tokens_revoked": db.session.execute(update(ApiToken).where(ApiToken.revoked_at.is_(None))
                                                 .values(revoked_at=utcnow())).rowcount,
        }
        versions = keyring.versions(tenant.id)
        record = Offboarding(
            id=new_id(), tenant_id=tenant.id, started_at=utcnow(), started_by_id=actor.id if actor else None,
            actor=actor_label(actor, via), step="closed", stats=stats,
            keys=[f"{ref.key_id} v{ref.version}" for ref, state in versions if state not in ("retired", "destroyed")],
            people=[str(uid) for uid, _role, _email in members],
            # The client's admins, and the provider admin who did it, receive the certificate.
            recipients_enc=seal(json.dumps(sorted({email for _uid, role, email in members
                                                   if role == Role.CLIENT_ADMIN.value}
                                                  | ({actor.email} if actor else set())))))
        stats["keys_retired_before"] = [f"{ref.key_id} v{ref.version}" for ref, state in versions
                                        if state == "retired"]
        tenant.status = "offboarding"
        who = audit.Actor.of(actor)
        # The last event the tenant's own log can hold readable to its key (destroyed next).
        audit.record("tenant.offboarding_started", who, tenant_id=tenant.id, ip=ip, object_type="tenant",
                     object_id=tenant.id, data={"by": record.actor})
        db.session.add(record)
    audit.record("tenant.offboarding_started", who, ip=ip, object_type="tenant", object_id=tenant.id,
                 data={"slug": tenant.slug})
    db.session.commit()
    return record


# --- 2. keys ------------------------------------------------------------------------------------

def _destroy_keys(record: Offboarding, tenant: Tenant) -> None:
    # First the signed record in object storage, which no restore rolls back: a key directory restored
    # from before this moment cannot bring the keys back (`portal keys verify-restore` destroys them again).
    shredding.record_destruction(tenant, record.keys)
    app_keyring().destroy_tenant(tenant.id)  # idempotent: a second run finds nothing left to shred


# --- 3. objects ---------------------------------------------------------------------------------

def _delete_objects(record: Offboarding, tenant: Tenant) -> None:
    storage = vault_storage()
    with system_scope(tenant):
        for storage_key in db.session.scalars(select(StoredObject.storage_key)):
            storage.delete(storage_key)  # deleting what a crashed run deleted already is not an error
        db.session.rollback()


# --- 4. rows ------------------------------------------------------------------------------------

def tenant_tables() -> list[Any]:
    """Every tenant-owned table, dependents before what they depend on (the order rows can be deleted in)."""
    owned = {m.local_table.name for m in db.Model.registry.mappers if issubclass(m.class_, TenantScoped)}
    return [t for t in reversed(db.metadata.sorted_tables) if t.name in owned]


def _delete_rows(record: Offboarding, tenant: Tenant) -> None:
    deleted: dict[str, int] = {}
    with system_scope(tenant):
        db.session.execute(update(StoredObject).values(thumbnail_id=None, searchable_id=None))  # refers to itself
        # Posted journal entries are never deleted, but by offboarding (migration 0021's triggers ask this).
        db.session.execute(text("select set_config('app.offboarding', :t, true)"), {"t": str(tenant.id)})
        for table in tenant_tables():
            if table.name in RETAINED:
                continue
            # Append-only tables (a task's timeline) go with their parent, by the foreign key's cascade.
            may_delete = db.session.scalar(text("select has_table_privilege(current_user, :t, 'DELETE')"),
                                           {"t": table.name})
            if may_delete:
                deleted[table.name] = db.session.execute(delete(table).where(table.c.tenant_id == tenant.id)).rowcount
        left = {t.name: n for t in tenant_tables() if t.name not in RETAINED
                if (n := db.session.scalar(select(func.count()).select_from(t).where(t.c.tenant_id == tenant.id)))}
        if left:
            raise OffboardError(f"rows of {', '.join(sorted(left))} could not be deleted; nothing was committed")
    record.stats = {**record.stats, "rows_deleted": {k: v for k, v in sorted(deleted.items()) if v}}


# --- 5. people ----------------------------------------------------------------------------------

def _erase_people(record: Offboarding, tenant: Tenant) -> None:
    erased = kept = 0
    ids = [uuid.UUID(p) for p in record.people]
    with bound(audit.all_tenants_scope()):  # memberships of every other tenant decide who stays
        still_member = set(db.session.scalars(select(Membership.user_id).where(Membership.user_id.in_(ids))))
    for user in db.session.scalars(select(User).where(User.id.in_(ids))):
        if user.id in still_member or user.provider_role or user.email.endswith("@erased.invalid"):
            kept += user.id in still_member
            continue
        old_email = user.email
        user.name, user.email = ERASED_NAME, f"erased-{user.id.hex}@erased.invalid"
        user.password_hash = user.totp_secret_enc = user.totp_pending_enc = None
        user.mfa_enrolled_at = user.last_login_at = None
        user.is_active = False
        for model in (AuthSession, UserToken, RecoveryCode):
            db.session.execute(delete(model).where(model.user_id == user.id))
        db.session.execute(delete(MailMessage).where(MailMessage.to_addr == old_email, MailMessage.sent_at.is_(None)))
        erased += 1
    record.stats = {**record.stats, "people_erased": record.stats.get("people_erased", 0) + erased,
                    "people_kept": kept}


# --- 6. certified -------------------------------------------------------------------------------

def statement(record: Offboarding, tenant: Tenant, name: str) -> dict[str, Any]:
    """What the certificate states: only what was done, and what is kept, where and for how long."""
    stats = record.stats
    backup_days = int(current_app.config.get("BACKUP_RETENTION_DAYS") or 0)
    key_backup_days = int(current_app.config.get("KEY_BACKUP_RETENTION_DAYS") or 0)
    return {
        "type": "deletion-certificate",
        "certificate_id": str(record.certificate_id),
        "tenant_id": str(tenant.id),
        "tenant_slug": tenant.slug,
        "tenant_name": name,
        "started_at": record.started_at.isoformat(timespec="seconds"),
        "finished_at": utcnow().isoformat(timespec="seconds"),
        "by": record.actor,
        "keys_destroyed": record.keys,
        "keys_retired_before": stats.get("keys_retired_before", []),
        "documents_deleted": stats.get("documents", 0),
        "stored_objects_deleted": stats.get("objects", 0),
        "bytes_deleted": stats.get("bytes", 0),
        "rows_deleted": stats.get("rows_deleted", {}),
        "api_tokens_revoked": stats.get("tokens_revoked", 0),
        "people_erased": stats.get("people_erased", 0),
        "people_kept_in_other_workspaces": stats.get("people_kept", 0),
        "kept": [
            "The workspace's audit log: for each event its time, side, action and the id it was about; who "
            "did it, from where and its details are encrypted under the destroyed key and cannot be read.",
            "The workspace's short name and id, so the audit log and this certificate refer to it and the "
            "name is not given to anyone else.",
        ],
        "backups": (f"Database backups and write-ahead-log archives made before this date keep the deleted rows "
                    f"until they expire, {backup_days} days after they were made. In them, task and request texts, "
                    "comments, notes and the audit log's details are encrypted under the destroyed key; document "
                    "names and tags are not."),
        "key_backups": ("No backup of the keys is kept, so nothing above can be decrypted again."
                        if key_backup_days == 0 else
                        f"Backups of the keys expire {key_backup_days} days after they were made; until then the "
                        "provider could decrypt the backups above, and after that no one can."),
    }


def certificate_text(envelope: dict[str, Any]) -> str:
    """The certificate a person reads, with the signed statement at the end."""
    st = envelope["statement"]
    rows = ", ".join(f"{n} {t.replace('_', ' ')}" for t, n in st["rows_deleted"].items()) or "none"
    lines = [
        f"Company: {st['tenant_name']} ({st['tenant_slug']}, {st['tenant_id']})",
        f"Certificate: {st['certificate_id']}",
        f"Offboarding started {st['started_at']} and finished {st['finished_at']} (UTC), by {st['by']}.",
        "",
        "Destroyed:",
        f"- the encryption keys: {', '.join(st['keys_destroyed']) or 'none had been created'}"
        + (f" (retired and destroyed earlier: {', '.join(st['keys_retired_before'])})"
           if st["keys_retired_before"] else ""),
        f"- {st['documents_deleted']} documents: {st['stored_objects_deleted']} stored objects, "
        f"{st['bytes_deleted']} bytes, deleted",
        f"- rows deleted: {rows}",
        f"- {st['api_tokens_revoked']} API tokens revoked, then deleted",
        f"- {st['people_erased']} people with no other workspace here: accounts disabled, personal data erased; "
        f"{st['people_kept_in_other_workspaces']} kept their accounts for other workspaces",
        "",
        "Kept:",
        *(f"- {k}" for k in st["kept"]),
        "",
        f"Backups: {st['backups']}",
        f"Keys: {st['key_backups']}",
        "",
        "Check this certificate: upload it at /certificates/verify on the portal, or verify the signed "
        "statement below with the portal's public key published at /keys.",
    ]
    return certificates.render(envelope, "Deletion certificate", lines)


def _certify(record: Offboarding, tenant: Tenant) -> str:
    name = tenant.name
    record.certificate_id = new_id()
    envelope = signing.sign(app_keyring(), statement(record, tenant, name))
    text_ = certificate_text(envelope)
    record.certificate_sha256 = hashlib.sha256(signing.canonical(envelope["statement"])).hexdigest()
    record.certificate_signature = envelope["signature"]["value"]
    record.finished_at = utcnow()
    recipients = json.loads(unseal(record.recipients_enc)) if record.recipients_enc else []
    for email in recipients:
        send_mail(email, "Deletion certificate", text_)
    record.recipients_enc = None
    tenant.status, tenant.name = "offboarded", f"(offboarded) {tenant.slug}"
    audit.record("tenant.offboarded", audit.SYSTEM, object_type="tenant", object_id=tenant.id,
                 data={"slug": tenant.slug, "certificate_id": str(record.certificate_id),
                       "certificate_sha256": record.certificate_sha256, "by": record.actor})
    db.session.commit()
    anchors.write_checkpoints()  # the tenant's log, as it ends, anchored
    return text_


_STEP = {"keys": _destroy_keys, "objects": _delete_objects, "rows": _delete_rows, "people": _erase_people,
         "certified": _certify}
