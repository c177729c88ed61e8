"""SWIFT MT940 customer statements read with ``mt-940``.

A file may hold several statements (many banks send one per day): each ``:20:`` block is one, with its
account (``:25:``), opening (``:60F:``/``:60M:``) and closing (``:62F:``/``:62M:``) balances and its lines
(``:61:`` with the ``:86:`` text after it). The counterparty is read from the ``:86:`` text where the bank
structures it (``/NAME/``, ``/ACCT/`` or ``/IBAN/`` subfields, or the German ``?32``/``?31`` ones).
"""

from __future__ import annotations

import logging
import re
from datetime import date

from portal.intake.bank.statement import BankFileError, Line, Statement, currency_code, to_minor

_SUBFIELD = re.compile(r"/(NAME|ACCT|IBAN|ORDP|BENM|REMI)/([^/]*)")


# The library logs the lines it cannot read, amounts and names included: a statement's content never goes
# to the logs (docs/security.md), only the reason word the step records.
logging.getLogger("mt940").setLevel(logging.CRITICAL)


def parse(data: bytes) -> list[Statement]:
    """The statements of an MT940 file; ``BankFileError("bank_malformed_mt940")`` when it is not one."""
    import mt940

    try:
        blocks = mt940.parse_statements(data, options=mt940.Options.all())
        statements = [_statement(block) for block in blocks if block.data.get("transaction_reference")]
    except BankFileError:
        raise
    except Exception:  # noqa: BLE001 - a pure parse of bytes: whatever stops it is the file's fault
        raise BankFileError("bank_malformed_mt940") from None
    if not statements:
        raise BankFileError("bank_malformed_mt940")
    return statements


def _statement(block: object) -> Statement:
    data = block.data
    opening = data.get("final_opening_balance") or data.get("intermediate_opening_balance")
    closing = data.get("final_closing_balance") or data.get("intermediate_closing_balance")
    account = (data.get("account_identification") or "").strip()
    if opening is None or closing is None or not account:
        raise BankFileError("bank_malformed_mt940")  # :25:, :60a: and :62a: are mandatory
    currency = currency_code(opening.amount.currency)
    bank, _sep, number = account.rpartition("/")  # "BIC/ACCOUNT" or the account alone
    lines = [_line(tx.data, currency) for tx in block]
    return Statement(format="mt940", currency=currency, bank=bank or None, account=number or account,
                     period_start=_day(opening.date), period_end=_day(closing.date), lines=lines,
                     opening=to_minor(opening.amount.amount, currency),
                     closing=to_minor(closing.amount.amount, currency)).settle()


def _line(data: dict, currency: str) -> Line:
    amount = data["amount"]
    line_currency = currency_code(amount.currency or currency)
    details = (data.get("transaction_details") or "").replace("\r", "")
    found = {key: value.strip() for key, value in _SUBFIELD.findall(details.replace("\n", ""))}
    name = data.get("applicant_name") or found.get("NAME") or None
    account = data.get("applicant_iban") or found.get("IBAN") or found.get("ACCT") or None
    customer = data.get("customer_reference")
    reference = " · ".join(p for p in (details.strip(), customer if customer != "NONREF" else None) if p) or None
    booked = data.get("guessed_entry_date") or data.get("entry_date") or data.get("date")
    return Line(booked_on=_day(booked), value_on=_day(data.get("date")), amount=to_minor(amount.amount, line_currency),
                currency=line_currency, counterparty_name=name, counterparty_account=account, reference=reference,
                bank_ref=data.get("bank_reference") or None)


def _day(value: object) -> date | None:
    return date(value.year, value.month, value.day) if value is not None else None
