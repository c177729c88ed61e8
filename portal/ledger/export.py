"""The whole ledger in open formats other tools read, so a client can leave with their books.

- a CSV journal: one row per posted line (entry number, date, memo, account, debit, credit, description),
  amounts in the currency's major unit, text cells made safe for spreadsheets (``portal.spreadsheet``);
- a Beancount file (``bean-check`` accepts it): one ``open`` per account used, one transaction per posted
  entry, debits positive and credits negative, accounts named by their type and code ("Assets:A131").
"""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal

from sqlalchemy import select

from portal.billing.render import minor_units
from portal.extensions import db
from portal.ledger.models import Account, Entry, Line
from portal.spreadsheet import row as safe_row

ROOTS = {"asset": "Assets", "liability": "Liabilities", "equity": "Equity", "revenue": "Income",
         "expense": "Expenses", "closing": "Equity"}


def _posted() -> list:  # (Entry, Line, Account) rows
    return list(db.session.execute(
        select(Entry, Line, Account).join(Line, Line.entry_id == Entry.id).join(Account, Account.id == Line.account_id)
        .where(Entry.state == "posted").order_by(Entry.number, Line.line_no)).all())


def _major(amount: int, currency: str) -> Decimal:
    return Decimal(amount).scaleb(-minor_units(currency))


def journal_csv(currency: str) -> bytes:
    """Every posted line, in posting order."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["entry", "date", "memo", "account", "account_name", "debit", "credit", "currency",
                     "description"])
    for entry, line, account in _posted():
        writer.writerow(safe_row([entry.number, entry.entry_date.isoformat(), entry.memo or "", account.code,
                                  account.name_vi, f"{_major(line.debit, currency):f}",
                                  f"{_major(line.credit, currency):f}", currency, line.description or ""]))
    return out.getvalue().encode("utf-8")


def beancount_name(account: Account) -> str:
    return f"{ROOTS[account.type]}:A{account.code}"


def _text(value: str | None) -> str:
    return (value or "").replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


def beancount(currency: str) -> str:
    """The books as a Beancount file."""
    rows = _posted()
    first: dict[str, date] = {}
    for entry, _line, account in rows:
        name = beancount_name(account)
        first[name] = min(first.get(name, entry.entry_date), entry.entry_date)
    out = [f'option "operating_currency" "{currency}"', ""]
    out += [f"{day.isoformat()} open {name} {currency}" for name, day in sorted(first.items())]
    current = None
    for entry, line, account in rows:
        if entry.id != current:
            current = entry.id
            out += ["", f'{entry.entry_date.isoformat()} * "{_text(entry.memo) or f"Entry {entry.number}"}"',
                    f'  entry: "{entry.number}"']
        amount = _major(line.debit - line.credit, currency)
        out.append(f"  {beancount_name(account)}  {amount:f} {currency}")
    return "\n".join(out) + "\n"
