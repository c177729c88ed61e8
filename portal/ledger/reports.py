"""Reports from the posted lines: one aggregate in PostgreSQL per report, never a loop over entries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import and_, func, literal_column, select

from portal.extensions import db
from portal.ledger.models import Account, Entry, Line


@dataclass(frozen=True)
class Row:
    """An account's movements over the report's dates (minor units), and its balance on its normal side."""

    code: str
    name_vi: str
    name_en: str
    type: str
    normal: str
    debit: int
    credit: int

    @property
    def balance(self) -> int:
        """Debit minus credit for a debit account, credit minus debit for a credit one."""
        return self.debit - self.credit if self.normal == "debit" else self.credit - self.debit


def trial_balance(until: date, *, since: date | None = None) -> list[Row]:
    """Every account with posted lines dated ``since``..``until`` (from the start when ``since`` is None), in
    code order. Its debits always equal its credits: the database posts balanced entries only.

    The lines are summed per account first and only the sums meet the chart: a million lines are never
    joined to the accounts one by one.
    """
    dated = and_(Entry.id == Line.entry_id, Entry.state == "posted", Entry.entry_date <= until,
                 *([Entry.entry_date >= since] if since else []))
    sums = (select(Line.account_id, func.sum(Line.debit).label("debit"), func.sum(Line.credit).label("credit"))
            .join(Entry, dated).group_by(Line.account_id).subquery())
    query = (select(Account.code, Account.name_vi, Account.name_en, Account.type, Account.normal, sums.c.debit,
                    sums.c.credit).join(sums, sums.c.account_id == Account.id).order_by(Account.code))
    return [Row(code, vi, en, kind, normal, int(debit), int(credit))
            for code, vi, en, kind, normal, debit, credit in db.session.execute(query)]


@dataclass(frozen=True)
class Statement:
    """A report's accounts by type, each with its balance on its normal side, and the type totals."""

    rows: dict[str, list[Row]]  # type -> rows with a balance

    def total(self, kind: str) -> int:
        return sum(r.balance for r in self.rows.get(kind, []))


def _by_type(rows: list[Row], kinds: tuple[str, ...]) -> Statement:
    return Statement({kind: [r for r in rows if r.type == kind and r.balance] for kind in kinds})


def profit_and_loss(until: date, *, since: date) -> Statement:
    """Revenue and expenses posted ``since``..``until``; ``result`` = revenue - expenses."""
    return _by_type(trial_balance(until, since=since), ("revenue", "expense"))


def result(statement: Statement) -> int:
    """Profit (positive) or loss (negative) of a profit and loss statement."""
    return statement.total("revenue") - statement.total("expense")


def balance_sheet(on: date) -> tuple[Statement, int]:
    """Assets, liabilities and equity on ``on`` (every posting up to it), and the result not yet closed to
    equity (revenue - expenses - what closing accounts hold). Assets = liabilities + equity + that result."""
    rows = trial_balance(on)
    sheet = _by_type(rows, ("asset", "liability", "equity"))
    unclosed = sum(r.credit - r.debit for r in rows if r.type in ("revenue", "expense", "closing"))
    return sheet, unclosed


@dataclass(frozen=True)
class LedgerLine:
    """A line of an account's ledger: its entry, date, what it says, the amount, and the running balance."""

    entry_id: object
    number: int
    entry_date: date
    memo: str | None
    description: str | None
    document_id: object | None
    debit: int
    credit: int
    balance: int  # after this line, on the account's normal side


def general_ledger(account: Account, until: date, *, since: date) -> tuple[int, list[LedgerLine]]:
    """An account's opening balance on ``since`` and its posted lines up to ``until`` with a running balance
    (on its normal side), in the order they were posted."""
    sign = 1 if account.normal == "debit" else -1
    opening = db.session.execute(
        select(func.coalesce(func.sum(Line.debit - Line.credit), 0)).join(Entry, Entry.id == Line.entry_id)
        .where(Line.account_id == account.id, Entry.state == "posted", Entry.entry_date < since)).scalar_one()
    rows = db.session.execute(
        select(Entry.id, Entry.number, Entry.entry_date, Entry.memo, Line.description,
               func.coalesce(Line.document_id, Entry.document_id), Line.debit, Line.credit)
        .join(Entry, Entry.id == Line.entry_id)
        .where(Line.account_id == account.id, Entry.state == "posted", Entry.entry_date >= since,
               Entry.entry_date <= until)
        .order_by(Entry.entry_date, Entry.number, Line.line_no)).all()
    balance, out = sign * int(opening), []
    for entry_id, number, day, memo, description, document_id, debit, credit in rows:
        balance += sign * (debit - credit)
        out.append(LedgerLine(entry_id, number, day, memo, description, document_id, debit, credit, balance))
    return sign * int(opening), out


@dataclass(frozen=True)
class VatRow:
    """VAT of one rate over the dates: on sales (output), on purchases (input), and what is due (output - input)."""

    rate: str
    output: int
    input: int

    @property
    def due(self) -> int:
        return self.output - self.input


def vat_summary(until: date, *, since: date, output_code: str, input_codes: tuple[str, ...]) -> list[VatRow]:
    """VAT per rate (the lines' ``tax_code``) on the output VAT account and the input VAT accounts."""
    codes = (output_code, *input_codes)
    rate = func.coalesce(Line.tax_code, literal_column("''")).label("rate")
    rows = db.session.execute(
        select(Account.code, rate, func.sum(Line.debit), func.sum(Line.credit))
        .join(Line, Line.account_id == Account.id).join(Entry, Entry.id == Line.entry_id)
        .where(Account.code.in_(codes), Entry.state == "posted", Entry.entry_date >= since, Entry.entry_date <= until)
        .group_by(Account.code, rate)).all()
    by_rate: dict[str, list[int]] = {}
    for code, rate, debit, credit in rows:
        figures = by_rate.setdefault(rate, [0, 0])
        if code == output_code:
            figures[0] += int(credit) - int(debit)
        else:
            figures[1] += int(debit) - int(credit)
    return [VatRow(rate, out, inp) for rate, (out, inp) in sorted(by_rate.items(), key=lambda kv: kv[0])]
