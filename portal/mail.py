"""Outgoing e-mail: queued in the database (body encrypted), delivered by an rq job.

Two adapters: SMTP (``SMTP_URL``: ``smtp://user:pass@host:port`` or ``smtps://``,
``?starttls=1``) and, for the embedded default, an outbox folder of ``.eml``
files shown to provider admins in the portal. E-mails carry no confidential
content: what happened and a link.
"""

from __future__ import annotations

import smtplib
import uuid
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

from flask import current_app
from sqlalchemy import DateTime, LargeBinary, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from tenants.fields import seal, unseal
from tenants.models import Timestamped, new_id, utcnow


class MailMessage(Timestamped, db.Model):
    """One queued e-mail; the body is sealed because invite links are secrets.

    Once delivered over SMTP only the row's id and times stay (the outbox folder of the
    embedded default keeps its files: it is the development mail server).
    """

    __tablename__ = "mail_messages"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    to_addr: Mapped[str] = mapped_column(String(254), nullable=False)
    subject: Mapped[str | None] = mapped_column(String(200))  # messages queued before subjects were sealed
    # Subjects name tenants ("… invited you to <company>"): sealed like the body until delivered.
    subject_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    body_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


def send(to: str, subject: str, body: str) -> MailMessage:
    """Queue an e-mail to go out after the current transaction commits."""
    from workers import enqueue

    msg = MailMessage(to_addr=to, subject_enc=seal(subject), body_enc=seal(body))
    db.session.add(msg)
    db.session.flush()
    enqueue("mail.deliver", msg.id, queue_name="mail")
    return msg


def _compose(msg: MailMessage) -> EmailMessage:
    email = EmailMessage()
    email["From"] = current_app.config["MAIL_FROM"]
    email["To"] = msg.to_addr
    email["Subject"] = unseal(msg.subject_enc) if msg.subject_enc else msg.subject or ""
    email["Message-ID"] = make_msgid(idstring=str(msg.id))
    email["Date"] = format_datetime(msg.created_at)
    email.set_content(unseal(msg.body_enc))
    return email


def deliver(message_id: uuid.UUID) -> None:
    """Send a queued message once; a message already sent is skipped (idempotent)."""
    msg = db.session.get(MailMessage, message_id, with_for_update=True)
    if msg is None or msg.sent_at is not None:
        return
    email = _compose(msg)
    url = current_app.config.get("SMTP_URL")
    if url:
        _smtp(url, email)
        # Delivered: keep no copy of the link, of who it went to or of what it was about (a person
        # erased later, or a tenant offboarded, leaves nothing behind here).
        msg.body_enc, msg.subject_enc, msg.to_addr, msg.subject = None, None, "", None
    else:
        _folder(Path(current_app.config["MAIL_OUTBOX_DIR"]), msg, email)
    msg.sent_at = utcnow()


def _smtp(url: str, email: EmailMessage) -> None:
    parts = urlparse(url)
    query = parse_qs(parts.query)
    cls = smtplib.SMTP_SSL if parts.scheme == "smtps" else smtplib.SMTP
    with cls(parts.hostname or "127.0.0.1", parts.port or (465 if parts.scheme == "smtps" else 25), timeout=30) as smtp:
        if query.get("starttls", ["0"])[0] == "1":
            smtp.starttls()
        if parts.username:
            smtp.login(unquote(parts.username), unquote(parts.password or ""))
        smtp.send_message(email)


def _folder(folder: Path, msg: MailMessage, email: EmailMessage) -> None:
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / f"{msg.created_at:%Y%m%dT%H%M%S%f}-{msg.id}.eml"  # sorts newest last
    path.write_bytes(bytes(email))
    path.chmod(0o600)


def outbox_messages(limit: int = 50) -> list[EmailMessage]:
    """The newest messages of the outbox folder (embedded default only)."""
    from email import policy
    from email.parser import BytesParser

    folder = Path(current_app.config["MAIL_OUTBOX_DIR"])
    files = sorted(folder.glob("*.eml"), reverse=True)[:limit] if folder.exists() else []
    return [BytesParser(policy=policy.default).parsebytes(f.read_bytes()) for f in files]
