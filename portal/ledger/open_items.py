"""Open receivables and payables: what customers owe the client and what it owes its suppliers.

An *item* is an invoice's line on a receivable (or payable) account, on the account's normal side; a
*payment* is a line on the same account on the other side. A ``Settlement`` says how much of which item a
payment settles, so one payment may settle several invoices and an invoice may be paid in parts. An item's
open amount is what is left of it; a payment's unapplied amount is what it has not settled yet.

Everything is "as of" a day: an entry counts if it is posted by then and not reversed by then (a reversal
never counts as an item or a payment itself, and what it reverses stops counting on its date), and a
settlement counts when both its lines do. So, for any day, the items' open amounts minus the unapplied
payments equal the accounts' balance, and the ageing adds up to the balance sheet (the tests check it).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from flask_babel import gettext as _
from sqlalchemy import and_, case, exists, func, literal, or_, select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.orm import aliased

from portal.extensions import db
from portal.ledger import services
from portal.ledger.models import Account, Entry, Line, Settlement
from tenants import audit
from tenants.models import Tenant, User

KINDS = ("receivable", "payable")
SIDE = {"receivable": "debit", "payable": "credit"}  # the side an item is on
BUCKETS = ("current", "1-30", "31-60", "61-90", "over_90")


def accounts_of(tenant: Tenant, kind: str) -> list[uuid.UUID]:
    """The accounts holding ``kind`` items: the chart's receivable (or payable) account and its sub-accounts."""
    root = services.role_account(tenant, kind)
    if root is None:
        return []
    return services.once(("accounts of", root.code), lambda: list(db.session.scalars(select(Account.id).where(
        or_(Account.code == root.code, Account.code.startswith(root.code))))))


def _counted(entry: type[Entry], as_of: date):  # noqa: ANN202 - a SQL condition
    """``entry`` is in the books on ``as_of``: posted by then, not a reversal, and not reversed by then."""
    reversal = aliased(Entry)
    return and_(entry.state == "posted", entry.entry_date <= as_of, entry.reverses_id.is_(None),
                or_(entry.reversed_by_id.is_(None),
                    ~exists().where(reversal.id == entry.reversed_by_id, reversal.entry_date <= as_of)))


def _settled(as_of: date, by: str):  # noqa: ANN202 - a subquery
    """Sums of the settlements that count on ``as_of``, per item line (``by="item"``) or per payment line.

    Only the other side's entry is checked here: the line summed for is checked by the query that uses it.
    """
    other, other_entry = aliased(Line), aliased(Entry)
    key, far = ((Settlement.item_line_id, Settlement.settling_line_id) if by == "item"
                else (Settlement.settling_line_id, Settlement.item_line_id))
    return (select(key.label("line_id"), func.sum(Settlement.amount).label("settled"))
            .join(other, other.id == far).join(other_entry, other_entry.id == other.entry_id)
            .where(_counted(other_entry, as_of)).group_by(key).subquery())


def _lines(tenant: Tenant, kind: str, as_of: date, *, payments: bool):  # noqa: ANN202 - a subquery
    """Item lines (or payment lines) of ``kind`` that count on ``as_of``, with what is left of each."""
    side = SIDE[kind] if not payments else ("credit" if SIDE[kind] == "debit" else "debit")
    amount = getattr(Line, side)
    settled = _settled(as_of, "payment" if payments else "item")
    left = (amount - func.coalesce(settled.c.settled, 0)).label("left")
    return (select(Line.id.label("line_id"), Line.party_key, Entry.id.label("entry_id"), Entry.entry_date,
                   func.coalesce(Entry.due_date, Entry.entry_date).label("due"), amount.label("amount"), left)
            .join(Entry, Entry.id == Line.entry_id).outerjoin(settled, settled.c.line_id == Line.id)
            .where(Line.account_id.in_(accounts_of(tenant, kind)), amount > 0, _counted(Entry, as_of),
                   amount - func.coalesce(settled.c.settled, 0) > 0))


@dataclass(frozen=True)
class OpenItem:
    """An invoice (or payment) line not fully settled on the day asked: ``open`` is what is left of ``amount``."""

    line_id: uuid.UUID
    entry_id: uuid.UUID
    number: int
    entry_date: date
    due_date: date
    document_id: uuid.UUID | None
    counterparty: str | None
    amount: int
    open: int
    days_overdue: int

    @property
    def bucket(self) -> str:
        return bucket_of(self.days_overdue)


def bucket_of(days_overdue: int) -> str:
    """The ageing column of an item ``days_overdue`` past its due date (0 or less: not due yet)."""
    for limit, name in ((0, "current"), (30, "1-30"), (60, "31-60"), (90, "61-90")):
        if days_overdue <= limit:
            return name
    return "over_90"


def items(tenant: Tenant, kind: str, as_of: date, *, party: bytes | None = None, payments: bool = False,
          line_ids: list[uuid.UUID] | None = None, limit: int = 500) -> list[OpenItem]:
    """The open items of ``kind`` on ``as_of`` (or, with ``payments``, the payments not fully applied), oldest
    due first; of one counterparty when ``party`` (a ``party_key``) is given, or only ``line_ids``."""
    rows = _lines(tenant, kind, as_of, payments=payments)
    if party is not None:
        rows = rows.where(Line.party_key == party)
    if line_ids is not None:
        rows = rows.where(Line.id.in_(line_ids))
    rows = rows.subquery()
    query = (select(rows.c.line_id, rows.c.entry_id, Entry.number, rows.c.entry_date, rows.c.due,
                    func.coalesce(Line.document_id, Entry.document_id), Line.counterparty, rows.c.amount,
                    rows.c.left)
             .join(Line, Line.id == rows.c.line_id).join(Entry, Entry.id == rows.c.entry_id)
             .order_by(rows.c.due, Entry.number).limit(limit))
    return [OpenItem(line_id, entry_id, number, day, due, document_id, counterparty, int(amount), int(left),
                     (as_of - due).days)
            for line_id, entry_id, number, day, due, document_id, counterparty, amount, left
            in db.session.execute(query)]


@dataclass
class AgeingRow:
    """One counterparty's open items by how long they are overdue, less its payments not yet applied."""

    party_key: bytes | None
    counterparty: str | None
    buckets: dict[str, int]
    unapplied: int = 0

    @property
    def total(self) -> int:
        return sum(self.buckets.values()) - self.unapplied

    @property
    def overdue(self) -> int:
        return sum(v for k, v in self.buckets.items() if k != "current")


def ageing(tenant: Tenant, kind: str, as_of: date) -> tuple[list[AgeingRow], AgeingRow]:
    """What each counterparty owes (receivable) or is owed (payable) on ``as_of`` by ageing column, largest
    first, and the totals. Summed in PostgreSQL per counterparty and column: a name is read once per row."""
    items_ = _lines(tenant, kind, as_of, payments=False).subquery()
    days = literal(as_of) - items_.c.due
    column = case((days <= 0, 0), (days <= 30, 1), (days <= 60, 2), (days <= 90, 3), else_=4).label("bucket")
    rows: dict[bytes | None, AgeingRow] = {}

    def row(key: bytes | None) -> AgeingRow:
        return rows.setdefault(key, AgeingRow(key, None, dict.fromkeys(BUCKETS, 0)))

    for key, bucket, left in db.session.execute(
            select(items_.c.party_key, column, func.sum(items_.c.left)).group_by(items_.c.party_key, column)):
        row(key).buckets[BUCKETS[bucket]] += int(left)
    paid = _lines(tenant, kind, as_of, payments=True).subquery()
    for key, left in db.session.execute(select(paid.c.party_key, func.sum(paid.c.left)).group_by(paid.c.party_key)):
        row(key).unapplied += int(left)
    names = _names([k for k in rows if k is not None])
    for key, found in rows.items():
        found.counterparty = names.get(key) if key is not None else None
    total = AgeingRow(None, None, {b: sum(r.buckets[b] for r in rows.values()) for b in BUCKETS},
                      sum(r.unapplied for r in rows.values()))
    return sorted(rows.values(), key=lambda r: (-r.total, r.counterparty or "")), total


def _names(keys: list[bytes]) -> dict[bytes, str | None]:
    """A counterparty's name per ``party_key`` (one query): as its latest invoice wrote it (a payment may name only
    the tax code), else as its latest line did."""
    if not keys:
        return {}
    query = (select(Line.party_key, Line.counterparty).join(Entry, Entry.id == Line.entry_id)
             .where(Line.party_key.in_(keys)).ext(distinct_on(Line.party_key))
             .order_by(Line.party_key, (Entry.source == "invoice").desc(), Entry.entry_date.desc()))
    return {bytes(key): name for key, name in db.session.execute(query)}


def balance(tenant: Tenant, kind: str, as_of: date) -> int:
    """The ``kind`` accounts' balance on ``as_of`` on their normal side (receivable: debit - credit)."""
    signed = func.sum(Line.debit - Line.credit) if SIDE[kind] == "debit" else func.sum(Line.credit - Line.debit)
    return int(db.session.scalar(select(func.coalesce(signed, 0)).join(Entry, Entry.id == Line.entry_id).where(
        Line.account_id.in_(accounts_of(tenant, kind)), Entry.state == "posted", Entry.entry_date <= as_of)) or 0)


def settle(actor: User, tenant: Tenant, payment_line_id: uuid.UUID, allocations: Mapping[uuid.UUID, int], *,
           ip: str | None = None, commit: bool = True) -> None:
    """Let a payment line settle items: ``allocations`` maps an item line to the amount it settles.

    Each item must be open by at least its amount, on the payment's account and the other side, and the
    payment must hold the total. Serialised per tenant with posting, so two settlements at once cannot
    both take the same open amount; the database checks the same (migration 0022). Audited.
    """
    db.session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(f"ledger:{tenant.id}", 0))))
    payment = db.session.get(Line, payment_line_id)
    if payment is None or payment.entry.state != "posted":
        raise services.LedgerError(_("Settle with a posted payment."))
    kind = next((k for k in KINDS if payment.account_id in accounts_of(tenant, k)), None)
    if kind is None:
        raise services.LedgerError(_("Only a line on a receivable or payable account settles invoices."))
    far = date.max
    payable = items(tenant, kind, far, payments=True, line_ids=[payment_line_id])
    if not payable:
        raise services.LedgerError(_("This payment is fully applied already."))
    open_ = {i.line_id: i for i in items(tenant, kind, far, line_ids=list(allocations))}
    errors: dict[str, str] = {}
    for line_id, amount in allocations.items():
        item = open_.get(line_id)
        target = db.session.get(Line, line_id)
        if item is None or target is None or target.account_id != payment.account_id:
            errors[str(line_id)] = _("This invoice is not open on the payment's account.")
        elif not 0 < amount <= item.open:
            errors[str(line_id)] = _("Settle more than nothing and at most what is open on it.")
    if sum(allocations.values()) > payable[0].open:
        errors["total"] = _("The payment does not hold that much: settle at most what is left of it.")
    if errors or not allocations:
        raise services.LedgerError(_("Nothing was settled: correct the amounts marked."), errors)
    for line_id, amount in allocations.items():
        db.session.add(Settlement(tenant_id=tenant.id, item_line_id=line_id, settling_line_id=payment_line_id,
                                  amount=amount, created_by_id=actor.id))
    audit.record("ledger.settled", audit.Actor.of(actor), tenant_id=tenant.id, object_type="ledger_entry",
                 object_id=payment.entry_id, ip=ip,
                 data={"payment": payment.entry.number, "items": sorted(open_[i].number for i in allocations),
                       "total": sum(allocations.values())})
    db.session.flush()
    if commit:
        db.session.commit()
