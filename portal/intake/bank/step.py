"""The intake chain's "bank" step: a bank file (OFX, MT940, or a CSV of a known layout) read into statements.

It runs before "classify" on OFX and MT940 files and on CSV files: a CSV filed as a bank statement needs
a saved mapping (``bank_needs_mapping`` until staff choose the columns on the document's page); any other
CSV is read only when its header matches a mapping the tenant saved, and is otherwise left alone. Run
again, the step replaces what it stored for the version (delete then insert, in the step's transaction),
so there is only ever one set of statements per document version.
"""

from __future__ import annotations

import re

from flask import current_app
from sqlalchemy import delete

from portal.documents import services as vault
from portal.extensions import db
from portal.intake import steps as _steps  # noqa: F401 - "classify" registers first: this step goes before it
from portal.intake.bank import continuity, parse_csv, parse_mt940, parse_ofx, services
from portal.intake.bank.models import BankStatement, BankTransaction
from portal.intake.bank.statement import BankFileError, Statement
from portal.intake.chain import Intake, Step, StepFailed, register
from tenants.fields import blind_tokens

KINDS = frozenset({"ofx", "mt940", "csv"})
ACCOUNT_PURPOSE = "bank.account_key"


def _applies(it: Intake) -> bool:
    return it.object.kind in KINDS


def _run(it: Intake) -> str | None:
    if it.object.size > current_app.config["INTAKE_READ_MAX_BYTES"]:
        raise StepFailed("too_large")
    data = b"".join(vault.read_object(it.object))
    try:
        statements = read(it.object.kind, data, wanted=it.document.category == "bank_statement")
    except BankFileError as exc:
        raise StepFailed(exc.word) from None
    if statements is None:
        return "not a bank statement"
    stored = store(it, statements)
    it.record.classified = "bank_statement"
    it.record.text = it.record.text or as_text(statements)  # searchable by counterparty and reference
    return ", ".join(f"{s.lines} lines, {s.continuity}" for s in stored)


def read(kind: str, data: bytes, *, wanted: bool) -> list[Statement] | None:
    """The statements in a bank file of ``kind``; None for a CSV that is not a bank statement we know.

    ``wanted``: the document is filed as a bank statement, so a CSV without a saved mapping needs one
    (``bank_needs_mapping``) instead of being left alone.
    """
    if not data.strip():
        raise BankFileError("bank_empty")
    if kind == "ofx":
        return parse_ofx.parse(data)
    if kind == "mt940":
        return parse_mt940.parse(data)
    try:
        table = parse_csv.layout(data)
    except BankFileError:
        if wanted:
            raise
        return None
    saved = services.mapping_of(table.fingerprint)
    if saved is None:
        if wanted:
            raise BankFileError("bank_needs_mapping")
        return None
    return [parse_csv.parse(data, parse_csv.Mapping.from_json(saved.mapping, bank=saved.bank, account=saved.account))]


def store(it: Intake, statements: list[Statement]) -> list[BankStatement]:
    """Replace the version's statements and transactions with ``statements``; link each to the one before."""
    tenant_id = it.record.tenant_id
    db.session.execute(delete(BankStatement).where(BankStatement.document_id == it.document.id,
                                                   BankStatement.version == it.version.number))
    rows: list[BankStatement] = []
    for seq, parsed in enumerate(statements, start=1):
        number = account_number(parsed.account)
        key = account_key(tenant_id, number, parsed.bank)
        continuity.lock(tenant_id, key)
        row = BankStatement(
            document_id=it.document.id, version=it.version.number, seq=seq, format=parsed.format,
            bank=(parsed.bank or "")[:80] or None, account=number, account_mask=mask(number), account_key=key,
            currency=parsed.currency, period_start=parsed.period_start, period_end=parsed.period_end,
            opening_balance=parsed.opening, closing_balance=parsed.closing, opening_computed=parsed.opening_computed,
            continuity="first", lines=len(parsed.lines))
        db.session.add(row)
        db.session.flush()
        db.session.add_all(BankTransaction(
            statement_id=row.id, line_no=n, booked_on=ln.booked_on, value_on=ln.value_on, amount=ln.amount,
            currency=ln.currency, counterparty_name=ln.counterparty_name,
            counterparty_account=ln.counterparty_account, reference=ln.reference, bank_ref=ln.bank_ref,
            balance=ln.balance) for n, ln in enumerate(parsed.lines, start=1))
        continuity.link(row)
        db.session.flush()
        rows.append(row)
    for row in rows:  # a statement that arrived late: the one after it follows it now
        after = continuity.following(row)
        if after is not None:
            continuity.link(after)
    return rows


def account_number(raw: str | None) -> str | None:
    """An account number as the bank means it: letters and digits, upper case ("VN12 0011-004" → "VN120011004")."""
    number = re.sub(r"[^0-9A-Za-z]", "", raw or "").upper()
    return number or None


def account_key(tenant_id, number: str | None, bank: str | None) -> bytes | None:  # noqa: ANN001
    """A keyed hash that finds the account's other statements without the number: of the number, or (a CSV
    that names no account) of the bank's name, so that one bank's CSV statements still follow each other."""
    term = f"n:{number}" if number else (f"b:{' '.join(bank.split()).casefold()}" if bank else None)
    return blind_tokens(tenant_id, ACCOUNT_PURPOSE, [term])[0] if term else None


def mask(number: str | None) -> str | None:
    """The last four characters of an account number, the rest hidden: "•••• 3456"."""
    return f"•••• {number[-4:]}" if number else None


def as_text(statements: list[Statement]) -> str:
    """The statements as text for the search index: each line's date, amount, counterparty and reference."""
    out = []
    for s in statements:
        out.append(" ".join(p for p in (s.bank, s.account, s.currency) if p))
        out += [" ".join(str(p) for p in (ln.booked_on.isoformat(), ln.amount, ln.currency, ln.counterparty_name,
                                          ln.counterparty_account, ln.reference) if p is not None)
                for ln in s.lines]
    return "\n".join(out)


register(Step("bank", _applies, _run), before="classify")
