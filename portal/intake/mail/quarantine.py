"""The quarantine: mail held for the client admin (unknown sender, or a failed sender check), and the note
a message leaves on the documents it brought.

Release stores the held message's attachments as if it had been accepted, by the releasing admin on the
sender's behalf; drop keeps only the fact (who sent what subject, why it was held, who dropped it) and
deletes the message itself. Both are in the access log. Held mail is kept until someone decides.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from werkzeug.exceptions import NotFound

from portal.documents import services as vault
from portal.documents.models import Document, StoredObject
from portal.extensions import db
from portal.intake.mail.message import parse
from portal.intake.mail.models import IntakeMail, IntakeMailDocument
from portal.intake.mail.receive import store_attachments, summary
from tenants import audit
from tenants.models import Tenant, User, utcnow

# Why a message is held, said in words (``IntakeMail.reason``).
REASONS = {
    "unknown_sender": _l("The sender is not one of this workspace's registered senders."),
    "spf_fail": _l("The sender's domain does not allow the server it came from (SPF failed), so it may be forged."),
    "dkim_fail": _l("Its signature does not match (DKIM failed): it may have been changed on the way, or forged."),
    "dmarc_fail": _l("The sender's domain says this message is not from it (DMARC failed)."),
}
OPEN = ("held", "releasing")  # "releasing": a release that was interrupted; it can be released again


@dataclass(frozen=True)
class Note:
    """A message as the documents it brought show it."""

    mail: IntakeMail
    files: list[dict[str, Any]]  # each attachment: name, size, status, message

    @property
    def refused(self) -> list[dict[str, Any]]:
        return [f for f in self.files if f.get("status") == "refused"]


def files_of(mail: IntakeMail) -> list[dict[str, Any]]:
    """The message's attachments as recorded: name and size, and once stored, status and message."""
    return json.loads(mail.outcome) if mail.outcome else []


def held(tenant: Tenant) -> list[IntakeMail]:
    """The bound tenant's held messages, oldest first (the caller checked ``tenant:mailin.quarantine``)."""
    return list(db.session.scalars(select(IntakeMail).where(IntakeMail.state.in_(OPEN))
                                   .order_by(IntakeMail.received_at, IntakeMail.id)))


def held_count(tenant: Tenant) -> int:
    return db.session.scalar(select(func.count()).select_from(IntakeMail).where(IntakeMail.state.in_(OPEN)))


def note_of(doc: Document) -> Note | None:
    """The message that brought ``doc`` (the first, if several did), or None for a document uploaded otherwise."""
    mail = db.session.scalar(select(IntakeMail).join(IntakeMailDocument, IntakeMailDocument.mail_id == IntakeMail.id)
                             .where(IntakeMailDocument.document_id == doc.id)
                             .order_by(IntakeMail.received_at).limit(1))
    return Note(mail, files_of(mail)) if mail is not None else None


def _open(mail_id: str) -> IntakeMail:
    """A held message of the bound tenant, locked; 404 for a missing, decided or another tenant's one alike."""
    mail = db.session.scalar(select(IntakeMail).where(IntakeMail.id == vault.parse_id(mail_id),
                                                      IntakeMail.state.in_(OPEN))
                             .with_for_update())
    if mail is None:
        raise NotFound()
    return mail


def release(actor: User, tenant: Tenant, mail_id: str, ip: str | None = None) -> Note:
    """Store a held message's attachments by ``actor`` on the sender's behalf; the message itself is deleted.

    The caller checked ``tenant:mailin.quarantine``. The message is marked "releasing" (committed) before
    its files are stored, each in its own commit, so a release cut short can simply be asked again.
    Audited as ``intake.mail_released``; commits.
    """
    mail = _open(mail_id)
    mail.state, mail.decided_by_id, mail.decided_at = "releasing", actor.id, utcnow()
    db.session.commit()
    obj = db.session.get(StoredObject, mail.raw_object_id) if mail.raw_object_id else None
    if obj is None:
        raise NotFound()
    parsed = parse(b"".join(vault.read_object(obj)))
    files = store_attachments(actor, tenant, mail, parsed.attachments)
    mail.state, mail.outcome = "released", json.dumps(files)
    audit.record("intake.mail_released", audit.Actor.of(actor), tenant_id=tenant.id, object_type="intake_mail",
                 object_id=mail.id, ip=ip, data={"from": mail.sender, "subject": mail.subject, "reason": mail.reason,
                                                 **summary(files)})
    _delete_raw(mail, obj)
    return Note(mail, files)


def drop(actor: User, tenant: Tenant, mail_id: str, ip: str | None = None) -> IntakeMail:
    """Delete a held message: its copy and its text go; who sent which subject, and why it was held, stay.

    The caller checked ``tenant:mailin.quarantine``. Audited as ``intake.mail_dropped``; commits.
    """
    mail = _open(mail_id)
    obj = db.session.get(StoredObject, mail.raw_object_id) if mail.raw_object_id else None
    mail.state, mail.decided_by_id, mail.decided_at, mail.body = "dropped", actor.id, utcnow(), None
    audit.record("intake.mail_dropped", audit.Actor.of(actor), tenant_id=tenant.id, object_type="intake_mail",
                 object_id=mail.id, ip=ip, data={"from": mail.sender, "subject": mail.subject, "reason": mail.reason,
                                                 "attachments": [f["name"] for f in files_of(mail)]})
    _delete_raw(mail, obj)
    return mail


def _delete_raw(mail: IntakeMail, obj: StoredObject | None) -> None:
    """Forget the message's sealed copy, then delete it from storage (commits).

    In this order: a storage failure leaves ciphertext nothing refers to, never a row without its object.
    """
    mail.raw_object_id = None
    storage_key = obj.storage_key if obj is not None else None
    if obj is not None:
        db.session.delete(obj)
    db.session.commit()
    if storage_key:
        vault.vault_storage().delete(storage_key)
