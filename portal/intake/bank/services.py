"""Bank statements for the pages and the API, and the CSV mappings staff save.

Callers are the intake views and the API, after the gate (``portal.access``) checked the action:
``tenant:intake.view`` to read a document's statements (a member sees those of their own uploads only, as
``vault.get_document`` narrows), ``tenant:intake.map`` to read and save mappings. Everything runs in the
bound tenant: another tenant's document or mapping is not found (404), like one that does not exist.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from flask_babel import gettext as _
from sqlalchemy import select
from werkzeug.exceptions import NotFound

from portal.documents import services as vault
from portal.documents.models import Document
from portal.extensions import db
from portal.intake.bank import parse_csv
from portal.intake.bank.models import BankCsvMapping, BankStatement, BankTransaction
from portal.intake.bank.statement import BankFileError, currency_code
from tenants import audit
from tenants.models import Tenant, User, utcnow

HEAD_LIMIT = 256 * 1024  # what the mapping form reads of a CSV: the header and its first rows


class MappingInvalid(Exception):
    """A mapping that cannot be saved: ``errors`` maps each field ("bank", "columns.amount") to a sentence,
    all of them at once."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


@dataclass
class MappingInput:
    """A mapping as typed on the form or sent to the API: column numbers (0-based) by field, or None."""

    bank: str = ""
    date_format: str = ""
    decimal: str = ""
    currency: str | None = None
    account: str | None = None
    columns: dict[str, int | None] = field(default_factory=dict)


@dataclass(frozen=True)
class Shown:
    """A statement and its transactions for a page or the API."""

    statement: BankStatement
    transactions: list[BankTransaction]


# --- reading ------------------------------------------------------------------------------------------------

def statements_of(doc: Document) -> list[Shown]:
    """The statements read from the document's current version, in file order, each with its lines."""
    rows = db.session.scalars(select(BankStatement).where(BankStatement.document_id == doc.id,
                                                          BankStatement.version == doc.current_version)
                              .order_by(BankStatement.seq)).all()
    lines = db.session.scalars(select(BankTransaction).where(BankTransaction.statement_id.in_([r.id for r in rows]))
                               .order_by(BankTransaction.statement_id, BankTransaction.line_no)).all() if rows else []
    by_statement: dict = {}
    for ln in lines:  # in statement and line order already: grouped in one pass
        by_statement.setdefault(ln.statement_id, []).append(ln)
    return [Shown(r, by_statement.get(r.id, [])) for r in rows]


def read_statements(actor: User, tenant: Tenant, document_id: str, ip: str | None) -> list[Shown]:
    """The API's read of a document's statements and transactions: in the access log (how many, never what)."""
    doc = vault.get_document(actor, document_id)
    shown = statements_of(doc)
    audit.record("intake.bank_statement_read", audit.Actor.of(actor), tenant_id=tenant.id, object_type="document",
                 object_id=doc.id, ip=ip, data={"name": doc.title, "statements": len(shown),
                                                "transactions": sum(len(s.transactions) for s in shown)})
    db.session.commit()
    # The commit expired what was read: read it again in the same two statements, or every statement and
    # transaction would be refreshed by itself as it is answered (tests/test_query_budgets.py).
    return statements_of(doc)


def csv_table(doc: Document) -> parse_csv.Layout | None:
    """The table of the document's current CSV (its first ``HEAD_LIMIT`` bytes), or None when it is no CSV
    table (the mapping form shows its header and first rows)."""
    obj = doc.latest.object  # the versions come with the document
    if obj.kind != "csv":
        return None
    head = bytearray()
    for chunk in vault.read_object(obj):
        head += chunk
        if len(head) >= HEAD_LIMIT:
            head = head[:head.rfind(b"\n", 0, HEAD_LIMIT) + 1]  # whole lines only
            break
    try:
        return parse_csv.layout(bytes(head))
    except BankFileError:
        return None


def mappings() -> list[BankCsvMapping]:
    """The bound tenant's saved CSV mappings, by bank."""
    return list(db.session.scalars(select(BankCsvMapping).order_by(BankCsvMapping.bank, BankCsvMapping.saved_at)))


def mapping_of(fingerprint: str) -> BankCsvMapping | None:
    """The bound tenant's mapping for a header fingerprint, or None."""
    return db.session.scalar(select(BankCsvMapping).where(BankCsvMapping.fingerprint == fingerprint))


# --- saving a mapping -----------------------------------------------------------------------------------------

_ACCOUNT = re.compile(r"[0-9A-Za-z][0-9A-Za-z .\-/]{0,39}")


def build_mapping(given: MappingInput, header: list[str]) -> parse_csv.Mapping:
    """A mapping for a CSV with ``header``, or ``MappingInvalid`` with every problem at once."""
    errors: dict[str, str] = {}
    bank = " ".join((given.bank or "").split())
    if not bank:
        errors["bank"] = _("Name the bank, so that its other statements are read the same way.")
    elif len(bank) > 80:
        errors["bank"] = _("The bank's name is at most 80 characters.")
    if given.date_format not in parse_csv.DATE_FORMATS:
        errors["date_format"] = _("Choose how the dates are written.")
    if given.decimal not in parse_csv.DECIMALS:
        errors["decimal"] = _("Choose the decimal separator.")
    columns: dict[str, int] = {}
    for name, index in given.columns.items():
        if index is None:
            continue
        if name not in parse_csv.FIELDS or not 0 <= index < len(header):
            errors[f"columns.{name}"] = _("Choose one of the file's columns.")
        else:
            columns[name] = index
    if "date" not in columns and "columns.date" not in errors:
        errors["columns.date"] = _("Choose the column that holds the date of each transaction.")
    has_split = "debit" in columns or "credit" in columns
    if "amount" in columns and has_split:
        errors["columns.amount"] = _("Choose either one amount column, or debit and credit columns, not both.")
    elif not ("amount" in columns or has_split) and not any(f"columns.{n}" in errors for n in ("amount", "debit",
                                                                                             "credit")):
        errors["columns.amount"] = _("Choose the column that holds the amount (or the debit and credit columns).")
    used: dict[int, str] = {}
    for name in parse_csv.NUMERIC:
        if name in columns:
            if columns[name] in used:
                errors[f"columns.{name}"] = _("This column is already chosen for another date or amount.")
            used.setdefault(columns[name], name)
    currency = None
    if "currency" not in columns:
        try:
            currency = currency_code(given.currency)
        except BankFileError:
            errors["currency"] = _("Type the currency's three-letter code, for example VND or USD.")
    account = " ".join((given.account or "").split()) or None
    if account and not _ACCOUNT.fullmatch(account):
        errors["account"] = _("An account number has letters, digits, spaces and dashes only (at most 40).")
    if errors:
        raise MappingInvalid(errors)
    return parse_csv.Mapping(columns=columns, date_format=given.date_format, decimal=given.decimal, bank=bank,
                             currency=currency, account=account)


def save_mapping(actor: User, tenant: Tenant, header: list[str], given: MappingInput, ip: str | None, *,
                 document: Document | None = None) -> BankCsvMapping:
    """Save (or replace) the tenant's mapping for CSV files with ``header`` (audited
    ``intake.bank_mapping_saved``); commits. ``MappingInvalid`` with every problem when it cannot be saved."""
    mapping = build_mapping(given, header)
    fingerprint = parse_csv.fingerprint(header)
    row = mapping_of(fingerprint) or BankCsvMapping(fingerprint=fingerprint)
    row.bank, row.header, row.mapping, row.account = mapping.bank, list(header), mapping.as_json(), mapping.account
    row.saved_by_id, row.saved_at = actor.id, utcnow()
    db.session.add(row)
    db.session.flush()
    audit.record("intake.bank_mapping_saved", audit.Actor.of(actor), tenant_id=tenant.id, object_type="document"
                 if document else None, object_id=document.id if document else None, ip=ip,
                 data={"bank": row.bank, "mapping": str(row.id), "columns": sorted(mapping.columns)})
    db.session.commit()
    return row


@dataclass(frozen=True)
class Mapped:
    """What saving a document's mapping did: the mapping, and whether the document is being read again."""

    mapping: BankCsvMapping
    reading_again: bool


def map_document(actor: User, tenant: Tenant, document_id: str, given: MappingInput, ip: str | None) -> Mapped:
    """Save the mapping for the layout of a document's CSV and read the document again with it (when
    reading it failed: the chain goes on from the bank step). Audited; commits."""
    doc = vault.get_document(actor, document_id)
    table = csv_table(doc)
    if table is None:
        raise NotFound()  # not a CSV table: there is nothing to map here
    row = save_mapping(actor, tenant, table.header, given, ip, document=doc)
    from portal.intake import services as intake

    record = intake.record_of(doc)
    again = record is not None and record.state == "failed"
    if again:
        intake.retry(actor, tenant, document_id, ip)  # from the step that failed; audited like any retry
    return Mapped(row, again)

