"""Who may mail documents into a tenant: its active client users, and the addresses its admin added.

A sender is matched on the message's ``From`` address (what its reader sees, and what DMARC checks),
case-insensitively. Added addresses are sealed; they are found by a blind token of the address under
the tenant's key (``tenants.fields.blind_tokens``), so the database never holds them in clear.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from flask_babel import gettext as _
from sqlalchemy import func, select
from werkzeug.exceptions import NotFound

from portal.auth.services import normalise_email
from portal.extensions import db
from portal.intake.mail.models import IntakeMailSender
from tenants import audit
from tenants.fields import blind_tokens
from tenants.lookups import parse_id
from tenants.models import Membership, Tenant, User
from tenants.policy import CLIENT_ROLES

PURPOSE = "intake_mail_senders.email"
_EMAIL = re.compile(r"^[^@\s<>()\[\],;:\"]{1,64}@[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}"
                    r"[a-z0-9])?)+$")


class SenderError(ValueError):
    """A refused change, in a sentence for people."""


@dataclass(frozen=True)
class Sender:
    """A registered sender: one of the tenant's people (``user_id``, ``role``) or an added address (``id``)."""

    email: str
    name: str | None = None
    user_id: uuid.UUID | None = None
    role: str | None = None
    id: uuid.UUID | None = None

    @property
    def is_person(self) -> bool:
        return self.user_id is not None


def _token(tenant_id: uuid.UUID, email: str) -> bytes:
    return blind_tokens(tenant_id, PURPOSE, [normalise_email(email)])[0]


def _people():  # noqa: ANN202 - a Select of (User, role)
    client_roles = [role.value for role in CLIENT_ROLES]
    return (select(User, Membership.role).join(Membership, Membership.user_id == User.id)
            .where(User.is_active.is_(True), Membership.role.in_(client_roles)))


def registered(tenant: Tenant) -> list[Sender]:
    """The bound tenant's registered senders: its active client users, then the added addresses, by address."""
    people = [Sender(user.email.lower(), user.name, user.id, role) for user, role in db.session.execute(_people())]
    added = [Sender(row.email, None, id=row.id) for row in db.session.scalars(select(IntakeMailSender))]
    return sorted(people, key=lambda s: s.email) + sorted(added, key=lambda s: s.email)


def find(tenant: Tenant, email: str | None) -> Sender | None:
    """The registered sender with this address in the bound tenant, or None."""
    email = normalise_email(email)
    if not email:
        return None
    person = db.session.execute(_people().where(func.lower(User.email) == email)).first()
    if person is not None:
        user, role = person
        return Sender(email, user.name, user.id, role)
    row = db.session.scalar(select(IntakeMailSender).where(IntakeMailSender.email_token == _token(tenant.id, email)))
    return Sender(email, id=row.id) if row is not None else None


def add(actor: User, tenant: Tenant, email: str | None, ip: str | None = None) -> IntakeMailSender:
    """Register another sender address (a scanner, the accountant); the caller checked ``tenant:mailin.manage``.

    Audited as ``intake.mail_sender_added``; commits.
    """
    email = normalise_email(email)
    if len(email) > 254 or not _EMAIL.match(email):
        raise SenderError(_("Give one e-mail address, for example scanner@your-company.vn."))
    existing = find(tenant, email)
    if existing is not None:
        raise SenderError(_("%(email)s can already send documents here.", email=email))
    row = IntakeMailSender(tenant_id=tenant.id, email=email, email_token=_token(tenant.id, email),
                           added_by_id=actor.id)
    db.session.add(row)
    db.session.flush()
    audit.record("intake.mail_sender_added", audit.Actor.of(actor), tenant_id=tenant.id,
                 object_type="intake_mail_sender", object_id=row.id, ip=ip, data={"email": email})
    db.session.commit()
    return row


def remove(actor: User, tenant: Tenant, sender_id: str, ip: str | None = None) -> str:
    """Take an added address off the list (the tenant's people are senders while they are its users).

    404 for a missing id and another tenant's alike. Audited as ``intake.mail_sender_removed``; commits.
    Returns the address removed.
    """
    row = db.session.scalar(select(IntakeMailSender).where(IntakeMailSender.id == parse_id(sender_id)))
    if row is None:
        raise NotFound()
    email, row_id = row.email, row.id
    db.session.delete(row)
    audit.record("intake.mail_sender_removed", audit.Actor.of(actor), tenant_id=tenant.id,
                 object_type="intake_mail_sender", object_id=row_id, ip=ip, data={"email": email})
    db.session.commit()
    return email
