"""What a bank file says, whatever its format: statements of one account, each with its lines.

The parsers (``parse_ofx``, ``parse_mt940``, ``parse_csv``) turn bytes into these, and raise
``BankFileError`` with a stable word (and, for a CSV, the row and column) when the file stops them.
Amounts are exact integers in the currency's minor unit (VND has none, USD has cents), as everywhere
in the portal: a file amount with more decimals than its currency has is refused, never rounded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation

from babel.numbers import is_currency

from portal.billing.render import minor_units


class BankFileError(Exception):
    """The file itself stops reading it: ``reason`` is a stable word (``steps.REASONS``); a CSV's row
    (1-based, as a spreadsheet shows it) and column (1-based) say where."""

    def __init__(self, reason: str, row: int | None = None, column: int | None = None) -> None:
        self.reason, self.row, self.column = reason, row, column
        super().__init__(self.word)

    @property
    def word(self) -> str:
        """The reason with where it happened, as the intake record keeps it: "bank_amount:12:3"."""
        return f"{self.reason}:{self.row}:{self.column}" if self.row is not None else self.reason


@dataclass
class Line:
    """One transaction. ``amount`` is signed (money in is positive), in ``currency``'s minor unit."""

    booked_on: date
    amount: int
    currency: str
    value_on: date | None = None
    counterparty_name: str | None = None
    counterparty_account: str | None = None
    reference: str | None = None  # the description or reference the bank gives
    bank_ref: str | None = None  # the bank's own id of the line (OFX FITID, MT940 bank reference)
    balance: int | None = None  # the running balance after it, when the file gives one


@dataclass
class Statement:
    """One account's statement for a period; balances in ``currency``'s minor unit."""

    format: str  # csv, ofx, mt940
    currency: str
    bank: str | None = None
    account: str | None = None
    period_start: date | None = None
    period_end: date | None = None
    opening: int | None = None
    closing: int | None = None
    opening_computed: bool = False  # the file gives the closing only: opening = closing - the lines
    lines: list[Line] = field(default_factory=list)

    def settle(self) -> Statement:
        """Fill what follows from the rest: the period from the lines, and an opening balance from the closing
        one minus the lines (OFX gives only the closing balance). Returns the statement."""
        days = [ln.booked_on for ln in self.lines]
        self.period_start = self.period_start or (min(days) if days else None)
        self.period_end = self.period_end or (max(days) if days else None)
        if self.opening is None and self.closing is not None:
            self.opening = self.closing - sum(ln.amount for ln in self.lines if ln.currency == self.currency)
            self.opening_computed = True
        return self


def currency_code(raw: str | None) -> str:
    """An ISO 4217 code ("vnd" → "VND"); ``BankFileError("bank_currency")`` when it is not one."""
    code = (raw or "").strip().upper()
    if len(code) != 3 or not code.isalpha() or not is_currency(code):
        raise BankFileError("bank_currency")
    return code


def to_minor(amount: Decimal, currency: str, *, row: int | None = None, column: int | None = None) -> int:
    """``amount`` in the major unit as an integer of ``currency``'s minor unit, exactly.

    "10000000.00" VND is 10000000; "12.345" USD has a decimal too many: ``BankFileError("bank_decimals")``
    (a bank never writes that, so it is a misread column, never something to round).
    """
    try:
        scaled = Decimal(amount).scaleb(minor_units(currency))
        if not scaled.is_finite() or scaled != scaled.to_integral_value():
            raise BankFileError("bank_decimals", row, column)
        return int(scaled)
    except InvalidOperation:
        raise BankFileError("bank_amount", row, column) from None
