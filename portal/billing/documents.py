"""A statement as people read it: one template, two outputs (the page, and the PDF kept in the vault).

The PDF is rendered from the same body as the page (``billing/_statement.html``) in the statement's own
language, stored encrypted in the tenant's vault like any document and linked to the statement; the
client's approval or dispute binds to its SHA-256, as every approval in the portal binds to what was seen.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import current_app, render_template
from flask_babel import force_locale, format_date, format_decimal
from flask_babel import gettext as _
from sqlalchemy import select

from portal.billing import meters, render, vietqr
from portal.billing.models import Statement
from portal.extensions import db
from portal.work.models import ServiceLine
from tenants.models import Tenant

STATIC = Path(__file__).resolve().parent.parent / "static"


def line_label(label: dict[str, Any], lines: dict[str, str] | None = None) -> str:
    """A statement line's words in the current language, from the message id and parameters it was issued with."""
    kind = label.get("id")
    if kind == "fee":
        return _("Monthly fee, %(plan)s", plan=label["plan"])
    if kind == "fee_days":
        return _("Monthly fee, %(plan)s: %(days)d of %(month_days)d days", plan=label["plan"], days=label["days"],
                 month_days=label["month_days"])
    name, line = meters.label_of(label.get("meter", ""))
    if line is None:
        return str(name)
    return f"{name}: {(lines or {}).get(line, line)}"


def line_names() -> dict[str, str]:
    """Service line key → name (the lines are the provider's, the same for every tenant)."""
    return dict(db.session.execute(select(ServiceLine.key, ServiceLine.name)).all())


@dataclass(frozen=True)
class PayBy:
    """How to pay by bank transfer: the provider's account and the QR code a banking app scans."""

    bank_name: str
    account_name: str
    account: str
    reference: str
    qr_svg: str | None  # None: a USD statement, or the account is not set up for VietQR


def pay_by(statement: Statement) -> PayBy | None:
    """The bank details and VietQR for what is still due (None when the provider set no account)."""
    cfg = current_app.config
    if not cfg.get("PROVIDER_BANK_ACCOUNT"):
        return None
    qr = None
    if statement.currency == "VND" and statement.due > 0 and cfg.get("PROVIDER_BANK_BIN"):
        payload = vietqr.payload(bank_bin=cfg["PROVIDER_BANK_BIN"], account=cfg["PROVIDER_BANK_ACCOUNT"],
                                 amount=statement.due, reference=statement.reference,
                                 merchant_name=cfg.get("PROVIDER_ACCOUNT_NAME") or None)
        qr = vietqr.qr_svg(payload, title=_("VietQR code: scan it in your banking app to pay %(amount)s",
                                            amount=render.format_money(statement.due, statement.currency,
                                                                       statement.locale)))
    return PayBy(cfg.get("PROVIDER_BANK_NAME", ""), cfg.get("PROVIDER_ACCOUNT_NAME", ""),
                 cfg["PROVIDER_BANK_ACCOUNT"], statement.reference, qr)


def context(statement: Statement, tenant: Tenant, locale: str) -> dict[str, Any]:
    """What ``billing/_statement.html`` needs, amounts formatted for ``locale``."""
    def money(amount: int) -> str:
        return render.format_money(amount, statement.currency, locale)

    def money_in(amount: int, currency: str) -> str:  # a section's own currency (the books' may not be the plan's)
        return render.format_money(int(amount), currency, locale)

    return {"statement": statement, "tenant": tenant, "money": money, "money_in": money_in, "line_label": line_label,
            "format_date": format_date, "format_decimal": format_decimal,
            "lines": line_names(), "pay_by": pay_by(statement), "sections": statement.sections,
            "in_words": render.amount_in_words(statement.total, statement.currency, statement.locale),
            "provider_name": current_app.config.get("PROVIDER_NAME", "")}


def pdf_bytes(statement: Statement, tenant: Tenant) -> bytes:
    """The statement's PDF, in its own language (needs an application context; no request)."""
    with force_locale(statement.locale):
        html = render_template("billing/statement_pdf.html", **context(statement, tenant, statement.locale))
    return render.html_to_pdf(html, static_dir=STATIC)


def store_pdf(statement_id: uuid.UUID | str) -> uuid.UUID | None:
    """Render the bound tenant's statement to PDF and keep it in the vault, once (the job; idempotent)."""
    from portal.documents import services as documents

    statement = db.session.get(Statement, uuid.UUID(str(statement_id)), with_for_update=True)
    if statement is None or statement.document_id is not None:
        return statement.document_id if statement else None
    tenant = db.session.get(Tenant, statement.tenant_id)
    name = f"{_('Statement')} {statement.month:%Y-%m} v{statement.version} {statement.reference}.pdf"
    result = documents.upload(None, tenant, [pdf_bytes(statement, tenant)], filename=name,
                              target=documents.upload_target(None, category="other",
                                                             period=f"{statement.month:%Y-%m}"))
    if not result.ok or result.document is None:
        raise RuntimeError(f"the statement's PDF was not stored: {result.message}")
    statement.document_id = result.document.id
    db.session.commit()
    return statement.document_id


def is_statement_pdf(doc: Any) -> bool:
    """Whether a vault document is one of the portal's statement PDFs (intake never routes those to a task)."""
    return db.session.scalar(select(Statement.id).where(Statement.document_id == doc.id).limit(1)) is not None


def pdf_sha256(statement: Statement) -> str | None:
    """The SHA-256 of the statement's stored PDF (what an approval binds to), or None while it is rendered."""
    from portal.documents.models import Document, DocumentVersion, StoredObject

    if statement.document_id is None:
        return None
    return db.session.scalar(
        select(StoredObject.sha256).join(DocumentVersion, DocumentVersion.object_id == StoredObject.id)
        .join(Document, Document.id == DocumentVersion.document_id)
        .where(Document.id == statement.document_id, DocumentVersion.number == Document.current_version))
