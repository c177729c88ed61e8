"""Bank statements exported as CSV, read with a column mapping that staff saved for the bank and tenant.

Every bank lays out its CSV differently, so nothing is guessed: ``layout`` finds the table (its delimiter,
the rows before the header, the header) and a fingerprint of the header, which finds the tenant's saved
``Mapping`` (which column holds the date, the amount or debit and credit, the balance...; the date format
and the decimal separator). ``parse`` applies it and names the row and column of the first cell that does
not fit, so that staff can fix the mapping.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from portal.intake.bank.statement import BankFileError, Line, Statement, currency_code, to_minor

# What a column may hold, in the order the mapping form shows them.
FIELDS = ("date", "value_date", "amount", "debit", "credit", "currency", "counterparty", "counterparty_account",
          "reference", "balance")
# Fields that hold a number or a date: one column cannot be two of them.
NUMERIC = ("date", "value_date", "amount", "debit", "credit", "balance")
DATE_FORMATS = {"%d/%m/%Y": "31/12/2024", "%d-%m-%Y": "31-12-2024", "%d.%m.%Y": "31.12.2024",
                "%Y-%m-%d": "2024-12-31", "%m/%d/%Y": "12/31/2024", "%d/%m/%y": "31/12/24"}
DECIMALS = (".", ",")
DELIMITERS = (",", ";", "\t", "|")
MAX_PREAMBLE = 20  # rows before the header (the bank's name, the account, the period...)
_SYMBOL = re.compile(r"^(?:[A-Za-z]{3}|[₫$€£¥đ])|(?:[A-Za-z]{3}|[₫$€£¥đ])$")
_NUMBER = {".": re.compile(r"[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"),
           ",": re.compile(r"[+-]?(?:\d{1,3}(?:\.\d{3})+|\d+)(?:,\d+)?")}


@dataclass(frozen=True)
class Layout:
    """Where the table is in a CSV file. ``rows`` are the rows after the header, each with its line number."""

    delimiter: str
    skip: int  # non-empty rows before the header
    header: list[str]
    fingerprint: str
    rows: list[tuple[int, list[str]]] = field(repr=False)


@dataclass
class Mapping:
    """Which column (0-based) holds which field, and how its dates and numbers are written."""

    columns: dict[str, int]
    date_format: str
    decimal: str
    bank: str
    currency: str | None = None  # when no column holds it
    account: str | None = None  # the account the statements are of, when the file does not say (sealed)

    def as_json(self) -> dict[str, Any]:
        """What is stored in clear (the account is kept apart, sealed)."""
        return {"columns": self.columns, "date_format": self.date_format, "decimal": self.decimal,
                "currency": self.currency}

    @classmethod
    def from_json(cls, value: dict[str, Any], *, bank: str, account: str | None) -> Mapping:
        """A stored mapping back (``as_json``), with its bank and account."""
        return cls(columns={k: int(v) for k, v in value["columns"].items() if k in FIELDS},
                   date_format=value["date_format"], decimal=value["decimal"], currency=value.get("currency"),
                   bank=bank, account=account)


def text_of(data: bytes) -> str:
    """The CSV's text (the vault accepts CSV in UTF-8 only, with or without a byte-order mark)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BankFileError("bank_not_table") from None


def fingerprint(header: list[str]) -> str:
    """SHA-256 of the header's column names (case and spacing aside): the same export of the same bank."""
    names = "\x1f".join(" ".join(cell.split()).casefold() for cell in header)
    return hashlib.sha256(names.encode()).hexdigest()


def layout(data: bytes) -> Layout:
    """The table in a CSV file: the delimiter whose rows make the widest table, its header (the first row
    naming at least two columns, all but one at most, followed by a row as wide) after at most
    ``MAX_PREAMBLE`` rows."""
    text = text_of(data)
    if not text.strip():
        raise BankFileError("bank_empty")
    best: Layout | None = None
    for delimiter in DELIMITERS:
        try:
            rows = _rows(text, delimiter)
        except csv.Error:
            continue
        for skip in range(min(MAX_PREAMBLE + 1, len(rows) - 1)):
            width = len(rows[skip][1])
            named = sum(1 for cell in rows[skip][1] if cell.strip())
            # The header names (nearly) every column; a preamble row padded with delimiters does not.
            if width >= 2 and named >= max(2, width - 1) and len(rows[skip + 1][1]) == width:
                if best is None or width > len(best.header):
                    header = [cell.strip() for cell in rows[skip][1]]
                    best = Layout(delimiter, skip, header, fingerprint(header), rows[skip + 1:])
                break
    if best is None:
        raise BankFileError("bank_not_table")
    return best


def parse(data: bytes, mapping: Mapping) -> Statement:
    """The statement in a CSV file, read with ``mapping``; ``BankFileError`` naming the row and column of the
    first cell that does not fit (a date column without a date, an amount that is not a number)."""
    table = layout(data)
    cols = mapping.columns
    if "date" not in cols or not ({"amount", "debit", "credit"} & set(cols)):
        raise BankFileError("bank_needs_mapping")
    width = len(table.header)
    if any(index >= width or index < 0 for index in cols.values()):
        raise BankFileError("bank_needs_mapping")  # saved for another layout: choose the columns again
    lines: list[Line] = []
    for number, row in table.rows:
        row = row + [""] * (width - len(row))
        if not row[cols["date"]].strip():
            continue  # a total or a note under the table: no date, no transaction
        lines.append(_line(number, row, mapping))
    if not lines:
        raise BankFileError("bank_empty")
    lines = _chronological(lines)
    currency = lines[0].currency
    statement = Statement(format="csv", currency=currency, bank=mapping.bank, account=mapping.account, lines=lines)
    first, last = lines[0], lines[-1]
    if first.balance is not None and last.balance is not None:
        statement.opening, statement.closing = first.balance - first.amount, last.balance
    return statement.settle()


def _rows(text: str, delimiter: str) -> list[tuple[int, list[str]]]:
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, strict=True)
    return [(reader.line_num, row) for row in reader if any(cell.strip() for cell in row)]


def _line(number: int, row: list[str], mapping: Mapping) -> Line:
    cols = mapping.columns

    def cell(name: str) -> str | None:
        return row[cols[name]].strip() or None if name in cols else None

    def where(name: str) -> dict[str, int]:
        return {"row": number, "column": cols[name] + 1}

    currency = currency_code(cell("currency") or mapping.currency)
    booked = _date(cell("date"), mapping.date_format, **where("date"))
    value_on = _date(cell("value_date"), mapping.date_format, **where("value_date")) if cell("value_date") else None
    if "amount" in cols:
        raw = _number(cell("amount"), mapping.decimal, **where("amount"))
        if raw is None:
            raise BankFileError("bank_amount", **where("amount"))
        amount = to_minor(raw, currency, **where("amount"))
    else:
        debit = _number(cell("debit"), mapping.decimal, **where("debit")) if "debit" in cols else None
        credit = _number(cell("credit"), mapping.decimal, **where("credit")) if "credit" in cols else None
        if debit is None and credit is None:
            raise BankFileError("bank_amount", **where("credit" if "credit" in cols else "debit"))
        amount = (to_minor(abs(credit), currency, **where("credit")) if credit is not None else 0) - (
            to_minor(abs(debit), currency, **where("debit")) if debit is not None else 0)
    balance = _number(cell("balance"), mapping.decimal, **where("balance")) if "balance" in cols else None
    return Line(booked_on=booked, value_on=value_on, amount=amount, currency=currency,
                counterparty_name=cell("counterparty"), counterparty_account=cell("counterparty_account"),
                reference=cell("reference"),
                balance=to_minor(balance, currency, **where("balance")) if balance is not None else None)


def _date(value: str | None, fmt: str, *, row: int, column: int) -> date:
    if value:
        for candidate in (value, value.split()[0]):  # "02/10/2024 10:15:00": the day is enough
            try:
                return datetime.strptime(candidate, fmt).date()  # noqa: DTZ007 - a calendar day, no time
            except ValueError:
                continue
    raise BankFileError("bank_date", row, column)


def number(value: str | None, decimal: str) -> Decimal | None:
    """A number as a bank writes it ("1.234.567,50", "(1,200.00)", "-500", "2 000 000 ₫"), or None when
    the cell is empty; ``ValueError`` when it is not a number with ``decimal`` as the decimal separator."""
    text = (value or "").replace("\u00a0", "").replace(" ", "").replace("'", "")
    if not text:
        return None
    text = _SYMBOL.sub("", text)
    negative = False
    if text.startswith("(") and text.endswith(")"):
        negative, text = True, text[1:-1]
    elif text.endswith("-"):
        negative, text = True, text[:-1]
    if not _NUMBER[decimal].fullmatch(text):
        raise ValueError(value)
    plain = text.replace("," if decimal == "." else ".", "").replace(",", ".")
    result = Decimal(plain)
    return -result if negative else result


def _number(value: str | None, decimal: str, *, row: int, column: int) -> Decimal | None:
    try:
        return number(value, decimal)
    except ValueError:
        raise BankFileError("bank_amount", row, column) from None


def _chronological(lines: list[Line]) -> list[Line]:
    """The lines oldest first: banks export newest first as often as not. The running balances decide when
    every line has one (each is the one before plus its amount); else the dates."""
    def chained(seq: list[Line]) -> bool:
        return all(b.balance == a.balance + b.amount for a, b in zip(seq, seq[1:], strict=False))

    if len(lines) > 1 and all(ln.balance is not None for ln in lines):
        if chained(lines):
            return lines
        if chained(lines[::-1]):
            return lines[::-1]
    return lines[::-1] if lines[0].booked_on > lines[-1].booked_on else lines
