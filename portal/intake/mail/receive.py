"""What happens to a message for a tenant: stored like an upload, or held in the quarantine.

``deliver`` is what the SMTP receiver calls, once per tenant a message is for, with no tenant bound;
it returns only after its last commit, so the receiver answers 250 only for what is kept, and a
failure (answered 451) makes the sending server try again later. Again is safe: a message is known by
its key (``message.Parsed.key``) per tenant; one delivered before is not kept twice, and one whose
attachments were being stored when the process died goes on from where it stopped (the vault knows a
file it already holds by its SHA-256 and links it instead of storing it twice).

Accepted: the sender is registered (``senders``) and no sender check failed. Each attachment goes
through the vault's own upload (``portal.documents.services.upload``: the same sniffing, limits,
encryption, audit and announcement that starts intake), category "other" for intake to classify,
attributed to the sender when the sender is one of the tenant's users (else stored by the system, and
the access log names the address). A refused file is named in the note with why; the others are kept.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from portal.documents import content
from portal.documents import services as vault
from portal.extensions import db
from portal.intake.mail import senders
from portal.intake.mail.message import Attachment, Parsed, parse
from portal.intake.mail.models import IntakeMail, IntakeMailDocument
from tenants import audit
from tenants.context import Scope, bound, for_tenant
from tenants.models import Tenant, User

RAW_PURPOSE = "mail"  # the catalogue's purpose of a held message's sealed copy (not counted in the quota)


def deliver(tenant_id: uuid.UUID, raw: bytes) -> str:
    """Keep one message for the tenant: "stored", "held" (quarantine) or "duplicate" (kept before).

    Binds the tenant itself; commits; raises on a failure (nothing half-kept stays unnoticed: a message
    being stored stays "receiving", and its next delivery goes on from there).
    """
    parsed = parse(raw)
    with for_tenant(tenant_id):
        tenant = db.session.get(Tenant, tenant_id)
        existing = db.session.scalar(select(IntakeMail).where(IntakeMail.message_key == parsed.key))
        if existing is not None and existing.state != "receiving":
            db.session.rollback()
            return "duplicate"
        sender = senders.find(tenant, parsed.sender)
        reason = "unknown_sender" if sender is None else parsed.failure
        if existing is None and reason is not None:
            return _hold(tenant, parsed, raw, reason)
        if sender is None:  # it was being stored and the sender was removed since: finish what was accepted
            sender = senders.Sender(existing.sender)
        return _accept(tenant, parsed, sender, existing)


def _hold(tenant: Tenant, parsed: Parsed, raw: bytes, reason: str) -> str:
    """Keep the whole message, sealed in the vault's storage, for the client admin to release or drop."""
    stored = vault.store_sealed(tenant.id, [raw])
    try:
        obj = vault.stored_row(stored, tenant.id, RAW_PURPOSE, "eml", "message/rfc822")
        db.session.add(obj)
        db.session.flush()
        mail = IntakeMail(tenant_id=tenant.id, message_key=parsed.key, state="held", reason=reason,
                          sender=parsed.sender or "", subject=parsed.subject, body=parsed.body, size=parsed.size,
                          raw_object_id=obj.id, outcome=json.dumps(_listed(parsed.attachments)))
        db.session.add(mail)
        db.session.flush()
        audit.record("intake.mail_held", audit.SYSTEM, tenant_id=tenant.id, object_type="intake_mail",
                     object_id=mail.id, data={"from": parsed.sender, "subject": parsed.subject, "reason": reason,
                                              "attachments": [a.name for a in parsed.attachments]})
        db.session.commit()
    except IntegrityError:  # the same message, held a moment ago by another delivery
        db.session.rollback()
        vault.vault_storage().delete(stored.storage_key)
        return "duplicate"
    except BaseException:
        db.session.rollback()
        vault.vault_storage().delete(stored.storage_key)
        raise
    return "held"


def _listed(attachments: list[Attachment]) -> list[dict[str, Any]]:
    return [{"name": a.name, "size": a.size} for a in attachments]


def _accept(tenant: Tenant, parsed: Parsed, sender: senders.Sender, mail: IntakeMail | None) -> str:
    if mail is None:
        mail = IntakeMail(tenant_id=tenant.id, message_key=parsed.key, state="receiving", sender=sender.email,
                          sender_user_id=sender.user_id, subject=parsed.subject, body=parsed.body,
                          size=parsed.size)
        db.session.add(mail)
        try:
            db.session.commit()  # claims the message: a second delivery now waits for, or finds, this one
        except IntegrityError:
            db.session.rollback()
            return "duplicate"
    user = db.session.get(User, sender.user_id) if sender.user_id else None
    with bound(Scope(user_id=sender.user_id, tenant_ids=frozenset({tenant.id}), role=sender.role)):
        outcome = store_attachments(user, tenant, mail, parsed.attachments)
        mail.state, mail.outcome = "stored", json.dumps(outcome)
        who = audit.Actor.of(user) if user is not None else audit.Actor(None, sender.email, "client")
        audit.record("intake.mail_received", who, tenant_id=tenant.id, object_type="intake_mail", object_id=mail.id,
                     data={"from": sender.email, "subject": parsed.subject, **summary(outcome)})
        db.session.commit()
    return "stored"


def store_attachments(actor: User | None, tenant: Tenant, mail: IntakeMail,
                      attachments: list[Attachment]) -> list[dict[str, Any]]:
    """Store each file through the vault's upload and link the documents to ``mail``; what happened to each.

    Each stored file commits on its own (the vault's upload does), so a crash part-way keeps what was
    stored, and running it again links the same documents (the vault recognises its files). Refusal
    messages are written in the tenant's language: they are read later, on the documents' page.
    """
    outcome: list[dict[str, Any]] = []
    with force_locale(tenant.locale or current_app.config.get("BABEL_DEFAULT_LOCALE", "en")):
        for attachment in attachments:
            if attachment.payload is None:
                outcome.append({"name": attachment.name, "size": 0, "status": "refused", "code": "email",
                                "message": _(content.EMAIL)})
                continue
            result = vault.upload(actor, tenant, [attachment.payload], filename=attachment.name,
                                  target=vault.UploadTarget(category="other"), from_client=True)
            entry = {"name": result.name, "size": attachment.size, "status": result.status, "code": result.code,
                     "message": result.message}
            if result.document is not None:
                entry["document_id"] = str(result.document.id)
                _link(mail.id, result.document.id)
            outcome.append(entry)
    return outcome


def _link(mail_id: uuid.UUID, document_id: uuid.UUID) -> None:
    exists = db.session.scalar(select(IntakeMailDocument).where(IntakeMailDocument.mail_id == mail_id,
                                                                IntakeMailDocument.document_id == document_id))
    if exists is None:
        db.session.add(IntakeMailDocument(mail_id=mail_id, document_id=document_id))
        db.session.commit()


def summary(outcome: list[dict[str, Any]]) -> dict[str, list[str]]:
    """The file names kept and refused, for the access log."""
    return {"documents": [o["name"] for o in outcome if o["status"] != "refused"],
            "refused": [o["name"] for o in outcome if o["status"] == "refused"]}
