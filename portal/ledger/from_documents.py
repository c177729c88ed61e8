"""From an invoice intake read to a prefilled entry; and an invoice posted once only.

A purchase invoice (its seller is not the client) becomes: Dr the expense account this supplier's earlier
invoices went to in this tenant (else the chart's expense account), Dr input VAT per rate, Cr payable. A
sales invoice (the seller's tax code is the client's own) becomes: Dr receivable, Cr revenue, Cr output VAT
per rate. The amounts come from the e-invoice's exact fields, or from the fields read off a PDF or a scan
as staff checked them (their corrections win). Staff see the lines prefilled, correct, and post.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation

from sqlalchemy import select

from portal.billing.render import minor_units
from portal.documents.models import Document
from portal.extensions import db
from portal.intake import services as intake
from portal.intake.models import IntakeRecord
from portal.ledger import services
from portal.ledger.models import Account, Entry, Line
from tenants.models import Tenant

INVOICES = ("invoice", "receipt")  # what intake classifies, and the categories clients file them under


@dataclass
class Prefill:
    """An entry as an invoice suggests it: its date, memo, lines, and what kind of invoice it is."""

    kind: str  # purchase | sale
    entry_date: date
    memo: str
    counterparty: str
    lines: list[services.LineInput] = field(default_factory=list)
    due_date: date | None = None


def invoice_of(document: Document) -> dict | None:
    """The invoice intake read from a document, as fields by name (e-invoice or PDF, corrections applied)."""
    record = intake.record_of(document)
    if record is None:
        return None
    e_invoice = intake.invoice_of(record)
    if e_invoice:
        rates: dict[str, tuple[str, str]] = {g["rate"]: (g["base"], g["tax"]) for g in e_invoice["vat_groups"]}
        return {"supplier_name": e_invoice["seller"]["name"], "supplier_tax_code": e_invoice["seller"]["tax_code"],
                "invoice_number": e_invoice["number"], "series": f"{e_invoice['template'] or ''}{e_invoice['series']}",
                "issue_date": e_invoice["issued_on"], "currency": e_invoice["currency"],
                "net": e_invoice["total_before_vat"], "vat_amount": e_invoice["total_vat"], "total": e_invoice["total"],
                "rates": rates, "buyer_name": (e_invoice.get("buyer") or {}).get("name"),
                "buyer_tax_code": (e_invoice.get("buyer") or {}).get("tax_code")}
    rows = intake.field_rows(record)
    if not rows:
        return None
    values = {row.name: row.value or None for row in rows}
    if values.get("vat_rate") and values.get("net") and values.get("vat_amount"):
        values["rates"] = {f"{values['vat_rate']}%": (values["net"], values["vat_amount"])}
    return values


def _minor(value: str | None, currency: str) -> int:
    try:
        scaled = Decimal(value or "0").scaleb(minor_units(currency))
    except InvalidOperation:
        return 0
    return int(scaled) if scaled == scaled.to_integral_value() else 0


def usual_account(tax_code: str | None) -> Account | None:
    """The account this supplier's last posted purchase was debited to (its expense or asset), if any."""
    if not tax_code:
        return None
    payable = db.session.scalars(select(Line).join(Entry, Entry.id == Line.entry_id)
                                 .where(Entry.state == "posted", Line.credit > 0, Line.tax_code.is_(None))
                                 .order_by(Entry.number.desc()).limit(200)).all()
    for line in payable:  # the newest entry whose counterparty is this supplier
        if line.counterparty and tax_code in line.counterparty:
            expense = db.session.scalar(select(Line).where(Line.entry_id == line.entry_id, Line.debit > 0,
                                                           Line.tax_code.is_(None)).order_by(Line.line_no).limit(1))
            if expense is not None:
                return expense.account
    return None


def prefill(tenant: Tenant, document: Document) -> Prefill | None:
    """The entry the document's invoice suggests, or None when intake read no invoice from it."""
    invoice = invoice_of(document)
    book = services.book_of(tenant)
    if invoice is None or book is None or not invoice.get("total"):
        return None
    currency = book.currency
    total, net, vat = (_minor(invoice.get(k), currency) for k in ("total", "net", "vat_amount"))
    if not net and total:
        net, vat = total - vat, vat
    rates = {rate: (_minor(base, currency), _minor(tax, currency)) for rate, (base, tax) in
             (invoice.get("rates") or {}).items()} or ({"": (net, vat)} if vat else {})
    seller = invoice.get("supplier_name") or ""
    code = invoice.get("supplier_tax_code") or ""
    sale = bool(book.tax_code) and code.split("-")[0] == book.tax_code.split("-")[0]
    # The other party: the seller of a purchase, the buyer of a sale (a PDF's buyer is not read: staff type it).
    name, party_code = ((invoice.get("buyer_name") or "", invoice.get("buyer_tax_code") or "") if sale
                        else (seller, code))
    counterparty = f"{name} ({party_code})" if party_code else name
    try:
        when = date.fromisoformat(invoice.get("issue_date") or "")
    except ValueError:
        when = date.today()
    number = f"{invoice.get('series') or ''} {invoice.get('invoice_number') or ''}".strip()
    role = lambda name: services.role_account(tenant, name)  # noqa: E731 - a short local lookup
    lines: list[services.LineInput] = []
    taxed = [(rate.rstrip("%"), tax) for rate, (_base, tax) in rates.items() if tax]
    if sale:
        memo = f"Bán hàng: {number} · {invoice.get('buyer_name') or ''}".rstrip(" ·")
        lines.append(services.LineInput(role("receivable").code, total, 0, memo, counterparty))
        lines.append(services.LineInput(role("revenue").code, 0, total - sum(t for _r, t in taxed), memo))
        lines += [services.LineInput(role("output_vat").code, 0, tax, memo, tax_code=rate or None)
                  for rate, tax in taxed]
    else:
        memo = f"Mua hàng: {number} · {seller}".rstrip(" ·")
        expense = usual_account(code) or role("expense")
        lines.append(services.LineInput(expense.code, total - sum(t for _r, t in taxed), 0, memo))
        lines += [services.LineInput(role("input_vat").code, tax, 0, memo, tax_code=rate or None)
                  for rate, tax in taxed]
        lines.append(services.LineInput(role("payable").code, 0, total, memo, counterparty))
    try:
        due = date.fromisoformat(invoice.get("due_date") or "")
    except ValueError:
        due = None
    return Prefill("sale" if sale else "purchase", when, memo, counterparty, lines,
                   due if due is not None and due >= when else None)


def posted_for_same_invoice(document_id: uuid.UUID, except_entry: uuid.UUID | None = None) -> Entry | None:
    """A posted, unreversed entry of another document that is the same invoice (seller, symbol, number), or of
    this document itself when it is an invoice or a receipt: posting it again would count the invoice twice."""
    read = db.session.execute(select(IntakeRecord.invoice_key, IntakeRecord.classified,
                                     IntakeRecord.extracted.is_not(None), Document.category)
                              .join(Document, Document.id == IntakeRecord.document_id)
                              .where(IntakeRecord.document_id == document_id)
                              .order_by(IntakeRecord.version.desc()).limit(1)).first()
    key, classified, e_invoice, category = read or (None, None, False, None)
    if not (key or e_invoice or classified in INVOICES or category in INVOICES):
        return None  # a payroll summary, a contract: several entries may come from one such document
    mine = Entry.document_id == document_id
    if key:
        mine = mine | Entry.document_id.in_(select(IntakeRecord.document_id).where(IntakeRecord.invoice_key == key))
    query = select(Entry).where(Entry.state == "posted", Entry.reversed_by_id.is_(None), Entry.reverses_id.is_(None),
                                mine)
    if except_entry is not None:
        query = query.where(Entry.id != except_entry)
    return db.session.scalar(query.order_by(Entry.number).limit(1))


def entries_of(document_id: uuid.UUID) -> list[Entry]:
    """The entries made from a document, newest first."""
    return list(db.session.scalars(select(Entry).where(Entry.document_id == document_id)
                                   .order_by(Entry.created_at.desc())))

