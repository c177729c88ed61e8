"""Reports from the posted lines: one aggregate in PostgreSQL per report, never a loop over entries."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import Date, DateTime, and_, cast, func, literal_column, select

from portal.extensions import db
from portal.ledger.models import Account, Entry, Line
from tenants.fields import BLIND_TOKEN_BYTES

CARRY = "carry"  # the source of an entry carrying a period's result to retained earnings


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


def trial_balance(until: date, *, since: date | None = None, activity: bool = False) -> list[Row]:
    """Every account with posted lines dated ``since``..``until`` (from the start when ``since`` is None), in
    code order. Its debits always equal its credits: the database posts balanced entries only. With
    ``activity``, the entries that carry a result to retained earnings (``services.carry_result``) are left
    out: what the profit and loss reports is the period's trading, not its closing.

    The lines are summed per account first and only the sums meet the chart: a million lines are never
    joined to the accounts one by one.
    """
    dated = and_(Entry.id == Line.entry_id, Entry.state == "posted", Entry.entry_date <= until,
                 *([Entry.entry_date >= since] if since else []),
                 *([Entry.source != CARRY] if activity else []))
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
    """Revenue and expenses posted ``since``..``until`` (their carrying to retained earnings aside);
    ``result`` = revenue - expenses."""
    return _by_type(trial_balance(until, since=since, activity=True), ("revenue", "expense"))


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


def vat_accounts(tenant) -> tuple[str | None, tuple[str, ...]]:  # noqa: ANN001 - a Tenant
    """The chart's output VAT account and its input VAT accounts (goods and services, fixed assets)."""
    from portal.ledger import services

    output = services.role_account(tenant, "output_vat")
    inputs = tuple(a.code for a in (services.role_account(tenant, r) for r in ("input_vat", "input_vat_assets")) if a)
    return (output.code if output else None), inputs


@dataclass(frozen=True)
class VatPeriodRow(VatRow):
    """VAT of one rate in one month (or quarter) of the dates asked for: ``start``..``end``, cut to those dates."""

    start: date = date.min
    end: date = date.max


def vat_by_period(until: date, *, since: date, output_code: str, input_codes: tuple[str, ...],
                  per: str = "month") -> list[VatPeriodRow]:
    """``vat_summary`` per month (``per="month"``) or quarter, oldest first and by rate: one aggregate, grouped by
    the period the entry's date falls in. The rows of one rate add up to its ``vat_summary`` row exactly."""
    if per not in ("month", "quarter"):
        raise ValueError(per)
    codes = (output_code, *input_codes)
    rate = func.coalesce(Line.tax_code, literal_column("''")).label("rate")
    # A date truncated as a timestamp without time zone: the session's time zone never moves a day.
    period = cast(func.date_trunc(per, cast(Entry.entry_date, DateTime)), Date).label("period")
    rows = db.session.execute(
        select(period, Account.code, rate, func.sum(Line.debit), func.sum(Line.credit))
        .join(Line, Line.account_id == Account.id).join(Entry, Entry.id == Line.entry_id)
        .where(Account.code.in_(codes), Entry.state == "posted", Entry.entry_date >= since, Entry.entry_date <= until)
        .group_by(period, Account.code, rate)).all()
    figures: dict[tuple[date, str], list[int]] = {}
    for start, code, rate_, debit, credit in rows:
        pair = figures.setdefault((start, rate_), [0, 0])
        if code == output_code:
            pair[0] += int(credit) - int(debit)
        else:
            pair[1] += int(debit) - int(credit)
    months = 1 if per == "month" else 3
    out = []
    for (start, rate_), (output, input_) in sorted(figures.items(), key=lambda kv: kv[0]):
        end = _add_months(start, months) - timedelta(days=1)
        out.append(VatPeriodRow(rate_, output, input_, max(start, since), min(end, until)))
    return out


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


@dataclass(frozen=True)
class VatLine:
    """A posted line on a VAT account: on the output account (``output``, credit - debit) or an input one."""

    entry_id: object
    number: int
    entry_date: date
    account: str
    rate: str
    memo: str | None
    description: str | None
    document_id: object | None
    output: int
    input: int


def vat_lines(until: date, *, since: date, output_code: str, input_codes: tuple[str, ...], rate: str | None = None,
              side: str | None = None) -> list[VatLine]:
    """The lines behind the VAT figures: of one rate (``""``: no rate given; None: every rate), on the output
    side, the input side or both, dated ``since``..``until``, in date order. They add up to ``vat_summary``."""
    codes = {"output": (output_code,), "input": input_codes}.get(side or "", (output_code, *input_codes))
    query = (select(Entry.id, Entry.number, Entry.entry_date, Account.code, Line.tax_code, Entry.memo,
                    Line.description, func.coalesce(Line.document_id, Entry.document_id), Line.debit, Line.credit)
             .join(Line, Line.account_id == Account.id).join(Entry, Entry.id == Line.entry_id)
             .where(Account.code.in_(codes), Entry.state == "posted", Entry.entry_date >= since,
                    Entry.entry_date <= until)
             .order_by(Entry.entry_date, Entry.number, Line.line_no))
    if rate is not None:
        query = query.where(func.coalesce(Line.tax_code, literal_column("''")) == rate)
    out = []
    for entry_id, number, day, code, tax, memo, description, document_id, debit, credit in db.session.execute(query):
        output = int(credit) - int(debit) if code == output_code else 0
        input_ = int(debit) - int(credit) if code != output_code else 0
        out.append(VatLine(entry_id, number, day, code, tax or "", memo, description, document_id, output, input_))
    return out


# --- receivables and payables by age ----------------------------------------------------------------------

UNNAMED = "unnamed"  # the address of the lines that name no counterparty


def party_token(key: bytes | None) -> str:
    """A counterparty in a URL: its ``party_key`` in URL-safe base64 (never its name), or ``UNNAMED``."""
    return base64.urlsafe_b64encode(bytes(key)).rstrip(b"=").decode() if key else UNNAMED


def party_of_token(token: str) -> bytes | None:
    """The ``party_key`` a URL names (None: the lines without a counterparty); ValueError when it names none."""
    if token == UNNAMED:
        return None
    try:
        key = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (ValueError, binascii.Error):
        raise ValueError(token) from None
    if len(key) != BLIND_TOKEN_BYTES or party_token(key) != token:
        raise ValueError(token)
    return key


@dataclass(frozen=True)
class Ageing:
    """What is owed to (``receivable``) or by (``payable``) the client on a day, by counterparty and age, and the
    figure the balance sheet shows for the same accounts on that day (``on_sheet``)."""

    kind: str
    as_of: date
    code: str | None  # the chart's receivable (payable) account: its sub-accounts count with it
    rows: list
    total: object  # an open_items.AgeingRow
    on_sheet: int

    @property
    def agrees(self) -> bool:
        return self.total.total == self.on_sheet


def ageing(tenant, kind: str, as_of: date) -> Ageing:  # noqa: ANN001 - a Tenant
    """``open_items.ageing`` beside the balance sheet's figure for the same accounts on ``as_of`` (they agree)."""
    from portal.ledger import open_items, services

    root = services.role_account(tenant, kind)
    rows, total = open_items.ageing(tenant, kind, as_of)
    sheet, _unclosed = balance_sheet(as_of)
    on_sheet = sum(r.balance for section in sheet.rows.values() for r in section
                   if root is not None and r.code.startswith(root.code))
    return Ageing(kind, as_of, root.code if root else None, rows, total, on_sheet)


@dataclass(frozen=True)
class Counterparty:
    """One counterparty's open items on a day and its payments not yet applied (``party_key`` None: the lines
    that name nobody)."""

    party_key: bytes | None
    name: str | None
    items: list
    payments: list

    @property
    def total(self) -> int:
        return sum(i.open for i in self.items) - sum(p.open for p in self.payments)


def counterparty(tenant, kind: str, as_of: date, party: bytes | None) -> Counterparty | None:  # noqa: ANN001
    """The open items and unapplied payments of one counterparty, or None when no line of ``kind`` in the bound
    tenant's books names it (a key of another tenant's books names nobody here: the same None)."""
    from portal.ledger import open_items

    accounts = open_items.accounts_of(tenant, kind)
    named = Line.party_key.is_(None) if party is None else Line.party_key == party
    lines = select(Line.id).where(Line.account_id.in_(accounts), named)
    ids = list(db.session.scalars(lines if party is None else lines.limit(1)))
    if not ids:
        return None
    if party is None:  # the lines naming nobody, by their ids (``items`` filters by a key otherwise)
        items = open_items.items(tenant, kind, as_of, line_ids=ids)
        payments = open_items.items(tenant, kind, as_of, payments=True, line_ids=ids)
        name = None
    else:
        items = open_items.items(tenant, kind, as_of, party=party)
        payments = open_items.items(tenant, kind, as_of, party=party, payments=True)
        name = open_items._names([party]).get(party)
    return Counterparty(party, name, items, payments)
