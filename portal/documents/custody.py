"""Custody of a tenant's documents over time: key rotation, export, offboarding.

- Rotation makes a new tenant key version and re-wraps every data key in the
  catalogue; the objects themselves are not rewritten (each object's data key is
  what encrypts it). When no object uses the old version any more it is retired
  (its key material destroyed). Safe to run again after a crash: it continues
  with the objects still on an old version.
- Export writes every version of every document, decrypted, into a ZIP for
  handing back, with a manifest of names, versions and SHA-256 sums.
- Offboarding destroys the tenant key first (crypto-shredding: from that moment
  nothing of the tenant can be decrypted, even from a backup of the objects),
  then deletes the objects and the catalogue rows, marks the tenant offboarded
  and issues a deletion certificate to the client's admins.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from flask import current_app
from sqlalchemy import delete, func, select

from portal import mail, spreadsheet
from portal.documents.models import Document, DocumentRequest, DocumentVersion, RequestItem, StoredObject
from portal.documents.services import read_object, vault_keyring, vault_storage
from portal.extensions import db
from tenants import audit
from tenants.context import Scope, bound
from tenants.models import Membership, Tenant, User, utcnow
from tenants.policy import Role
from tenants.sealed import KeyRef

BATCH = 500


def system_scope(tenant: Tenant) -> bound:
    """Bind one tenant for a provider-side operation (the CLI: rotation, export, offboarding, bulk upload)."""
    return bound(Scope(tenant_ids=frozenset({tenant.id}), role=Role.PROVIDER_ADMIN))


# --- rotation ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Rotation:
    new: KeyRef
    rewrapped: int
    retired: list[int]


def rotate_tenant_key(tenant: Tenant, actor: User | None = None) -> Rotation:
    """New tenant key version; re-wrap every data key under it; retire versions nothing uses."""
    keyring = vault_keyring()
    with system_scope(tenant):
        new = keyring.rotate_tenant(tenant.id)
        count = 0
        while True:
            batch = list(db.session.scalars(select(StoredObject).where(StoredObject.key_version != new.version)
                                            .order_by(StoredObject.id).limit(BATCH)))
            if not batch:
                break
            for obj in batch:
                ref, wrapped = keyring.rewrap(tenant.id, obj.id, KeyRef(obj.key_id, obj.key_version), obj.wrapped_dek)
                obj.key_id, obj.key_version, obj.wrapped_dek = ref.key_id, ref.version, wrapped
            db.session.commit()  # each batch holds: a crash resumes with the rest
            count += len(batch)
        in_use = set(db.session.scalars(select(StoredObject.key_version).distinct()))
        retired = []
        for ref, state in keyring.versions(tenant.id):
            if state == "active" and ref.version not in in_use and ref.version != new.version:
                keyring.retire(tenant.id, ref.version)
                retired.append(ref.version)
        audit.record("keys.rotated", audit.Actor.of(actor), tenant_id=tenant.id, object_type="key",
                     object_id=new.key_id, data={"version": new.version, "rewrapped": count, "retired": retired})
        db.session.commit()
    return Rotation(new, count, retired)


def rotate_master(new_kms_key_id: str | None = None, actor: User | None = None) -> int:
    """Re-wrap every tenant key under a new master key (or KMS key); returns how many."""
    count = vault_keyring().rotate_master(new_kms_key_id)
    audit.record("keys.master_rotated", audit.Actor.of(actor), object_type="key",
                 data={"tenant_keys": count, "kms_key_id": new_kms_key_id})
    db.session.commit()
    return count


# --- export -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Export:
    path: Path
    files: int
    size: int


def _unique(name: str, taken: set[str]) -> str:
    stem, dot, ext = name.rpartition(".")
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{stem} ({n}).{ext}" if dot else f"{name} ({n})"
    taken.add(candidate)
    return candidate


def export_tenant(tenant: Tenant, out: Path, actor: User | None = None) -> Export:
    """Every version of every document, decrypted, in a ZIP with a manifest (streamed, never held whole)."""
    taken: set[str] = set()
    files = size = 0
    manifest = io.StringIO()
    writer = csv.writer(manifest)
    writer.writerow(["path", "document_id", "title", "category", "period", "version", "sha256", "bytes",
                     "uploaded_at"])
    with system_scope(tenant), zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        query = (select(DocumentVersion).join(Document)
                 .order_by(Document.category, Document.created_at, DocumentVersion.number))
        for version in db.session.scalars(query):
            doc, obj = version.document, version.object
            folder = f"{doc.category}/{doc.period.strftime('%Y-%m') if doc.period else 'undated'}"
            name = version.filename if doc.current_version == 1 else f"v{version.number} {version.filename}"
            path = _unique(f"{folder}/{name}", taken)
            digest = hashlib.sha256()
            with archive.open(path, "w", force_zip64=True) as target:
                for chunk in read_object(obj):
                    digest.update(chunk)
                    target.write(chunk)
            if digest.hexdigest() != obj.sha256:  # cannot happen unless storage and catalogue disagree
                raise RuntimeError(f"{path}: content does not match its recorded SHA-256")
            writer.writerow(spreadsheet.row([path, doc.id, doc.title, doc.category,
                                             doc.period.isoformat() if doc.period else "", version.number,
                                             obj.sha256, obj.size, version.created_at.isoformat()]))
            files += 1
            size += obj.size
        archive.writestr("manifest.csv", manifest.getvalue())
        audit.record("tenant.exported", audit.Actor.of(actor), tenant_id=tenant.id, object_type="tenant",
                     object_id=tenant.id, data={"files": files, "bytes": size})
        db.session.commit()
    return Export(out, files, size)


# --- offboarding ------------------------------------------------------------------------

@dataclass
class Certificate:
    """What was destroyed, when, by whom, and the key ids: signed so the client can rely on it."""

    tenant_id: str
    tenant_slug: str
    tenant_name: str
    destroyed_at: str
    destroyed_by: str
    keys_destroyed: list[str]
    documents: int
    objects_deleted: int
    bytes_deleted: int
    statement: str = ("The encryption keys of this company's documents were destroyed; the stored objects "
                      "and their catalogue were deleted. No copy of the keys remains with the provider, so "
                      "the documents cannot be decrypted by anyone, from backups either.")
    signature: str = field(default="")

    def body(self) -> str:
        data = asdict(self)
        data.pop("signature")
        return json.dumps(data, sort_keys=True, ensure_ascii=False)

    def sign(self, key: str) -> Certificate:
        self.signature = hmac.new(key.encode(), self.body().encode(), hashlib.sha256).hexdigest()
        return self

    def verify(self, key: str) -> bool:
        expected = hmac.new(key.encode(), self.body().encode(), hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, self.signature)

    def text(self) -> str:
        """The certificate as a readable text, with its JSON and signature at the end."""
        keys = "\n".join(f"  - {k}" for k in self.keys_destroyed) or "  (none)"
        return (f"Deletion certificate\n\nCompany: {self.tenant_name} ({self.tenant_slug}, {self.tenant_id})\n"
                f"Destroyed at: {self.destroyed_at} (UTC)\nBy: {self.destroyed_by}\n"
                f"Documents: {self.documents}; stored objects deleted: {self.objects_deleted} "
                f"({self.bytes_deleted} bytes)\nKeys destroyed:\n{keys}\n\n{self.statement}\n\n"
                f"Signed record (HMAC-SHA256):\n{self.body()}\nsignature: {self.signature}\n")


def offboard(tenant: Tenant, actor: User | None = None) -> Certificate:
    """Crypto-shred the tenant: destroy its keys, delete its objects and catalogue, certify it."""
    storage, keyring = vault_storage(), vault_keyring()
    with system_scope(tenant):
        documents = db.session.scalar(select(func.count()).select_from(Document)) or 0
        objects = list(db.session.execute(select(StoredObject.storage_key, StoredObject.size)))
        admins = list(db.session.scalars(select(User.email).join(Membership, Membership.user_id == User.id)
                                         .where(Membership.role == Role.CLIENT_ADMIN.value)))
        # Keys first: from here on nothing of the tenant decrypts, whatever happens next.
        destroyed = keyring.destroy_tenant(tenant.id)
        for storage_key, _size in objects:
            storage.delete(storage_key)
        for model in (RequestItem, DocumentRequest, DocumentVersion, Document):
            db.session.execute(delete(model))
        db.session.execute(StoredObject.__table__.update().values(thumbnail_id=None))
        db.session.execute(delete(StoredObject))
        tenant.status = "offboarded"
        certificate = Certificate(
            tenant_id=str(tenant.id), tenant_slug=tenant.slug, tenant_name=tenant.name,
            destroyed_at=utcnow().isoformat(timespec="seconds"),
            destroyed_by=actor.email if actor else "the provider (administration console)",
            keys_destroyed=[f"{ref.key_id} v{ref.version}" for ref in destroyed], documents=documents,
            objects_deleted=len(objects), bytes_deleted=sum(size for _k, size in objects),
        ).sign(current_app.config["SECRET_KEY"])
        who = audit.Actor.of(actor)
        audit.record("tenant.offboarded", who, tenant_id=tenant.id, object_type="tenant", object_id=tenant.id,
                     data={"name": tenant.name, "certificate": json.loads(certificate.body()),
                           "signature": certificate.signature})
        for email in admins:
            mail.send(email, f"{tenant.name}: deletion certificate", certificate.text())
    audit.record("tenant.offboarded", who, object_type="tenant", object_id=tenant.id,
                 data={"slug": tenant.slug, "signature": certificate.signature})
    db.session.commit()
    return certificate

