"""Reports from the posted lines: one aggregate in PostgreSQL per report, never a loop over entries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import and_, func, select

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
