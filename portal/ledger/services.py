"""The ledger's rules, for the pages and the API: switching bookkeeping on, the chart, entries, months.

Every change is audited in the tenant's log and commits here. The service refuses what the database
would also refuse (an unbalanced entry, a posted one changed, a closed month), but with a sentence that
says what to do; the database's own rules (migration 0021) stand behind it for any other code path.
"""

from __future__ import annotations

import functools
import hashlib
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

from flask_babel import format_decimal
from flask_babel import gettext as _
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session, SessionTransaction, aliased, selectinload

from portal.extensions import db
from portal.ledger.models import Account, Book, Entry, Line, Period
from portal.ledger.parties import party_key
from tenants import audit
from tenants.context import current_scope
from tenants.models import Tenant, User, utcnow

T = TypeVar("T")
_Parent = aliased(Account)  # an account, as the one whose sub-accounts are looked for
CHARTS_DIR = Path(__file__).resolve().parent / "charts"
MAX_AMOUNT = 10**15  # a line's amount in the minor unit: far above any real one, far below BigInteger's limit


class LedgerError(Exception):
    """A refused request, in a sentence for people; ``errors`` by field when a form caused it."""

    def __init__(self, message: str, errors: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or {}


# --- the chart ------------------------------------------------------------------------------------------

@functools.cache
def charts() -> dict[str, dict]:
    """The chart templates shipped as data files (``charts/*.json``), by key; read once per process."""
    return {path.stem: json.loads(path.read_text(encoding="utf-8")) for path in sorted(CHARTS_DIR.glob("*.json"))}


_FOUND = "ledger.found"  # db.session.info: the books and role accounts this transaction has read


@event.listens_for(Session, "after_transaction_end")
def _forget_found(session: Session, transaction: SessionTransaction) -> None:
    session.info.pop(_FOUND, None)


def once(key: tuple, load: Callable[[], T | None]) -> T | None:
    """``load()``, read once per transaction and bound scope: one dashboard asks for the books and the chart's
    role accounts a dozen times. Only what was found is kept (books and accounts are never deleted), so what a
    transaction creates after a miss is found; a commit or rollback forgets it all."""
    found = db.session.info.setdefault(_FOUND, {})
    key = (*key, current_scope().tenant_ids)
    if key not in found:
        value = load()
        if not value:
            return value
        found[key] = value
    return found[key]


def book_of(tenant: Tenant) -> Book | None:
    """The tenant's books, or None while bookkeeping is off."""
    return once(("book", tenant.id), lambda: db.session.scalar(select(Book).where(Book.tenant_id == tenant.id)))


def start_books(actor: User, tenant: Tenant, chart: str, *, fiscal_year_start: int = 1, tax_code: str | None = None,
                ip: str | None = None) -> Book:
    """Switch bookkeeping on: the chart of accounts created from the template ``chart``; commits, audited.

    ``tax_code``: the client's own (its sales invoices are told from its purchases by it).
    """
    from stdnum.vn import mst

    templates = charts()
    errors = {}
    if chart not in templates:
        errors["chart"] = _("Choose a chart.")
    tax_code = (tax_code or "").strip() or None
    if tax_code and not mst.is_valid(tax_code):
        errors["tax_code"] = _("A tax code is 10 digits, or 10 and a branch of 3 (0101234567-001), and its last "
                               "digit must check.")
    if errors:
        raise LedgerError(_("Bookkeeping was not switched on: correct the fields marked."), errors)
    if not 1 <= fiscal_year_start <= 12:
        raise LedgerError(_("The fiscal year starts in a month, 1 to 12."))
    if book_of(tenant) is not None:
        raise LedgerError(_("Bookkeeping is already on for this client."))
    template = templates[chart]
    book = Book(tenant_id=tenant.id, chart=chart, currency=tenant.currency, fiscal_year_start=fiscal_year_start,
                tax_code=tax_code, started_by_id=actor.id)
    db.session.add(book)
    ids: dict[str, uuid.UUID] = {}
    for item in template["accounts"]:  # parents come before their children in the file
        account = Account(tenant_id=tenant.id, code=item["code"], parent_id=ids.get(item.get("parent")),
                          name_vi=item["name"]["vi"], name_en=item["name"]["en"], type=item["type"],
                          normal=item["normal"])
        db.session.add(account)
        db.session.flush()
        ids[item["code"]] = account.id
    audit.record("ledger.started", audit.Actor.of(actor), tenant_id=tenant.id, object_type="ledger_book",
                 object_id=book.id, ip=ip, data={"chart": chart, "accounts": len(ids)})
    db.session.commit()
    return book


def accounts(*, active_only: bool = False) -> list[Account]:
    """The bound tenant's chart, in code order."""
    query = select(Account).order_by(Account.code)
    if active_only:
        query = query.where(Account.active.is_(True))
    return list(db.session.scalars(query))


def postable(accounts_: Sequence[Account]) -> list[Account]:
    """The accounts lines post to: active leaves (an account with sub-accounts is a heading)."""
    parents = {a.parent_id for a in accounts_ if a.parent_id}
    return [a for a in accounts_ if a.active and a.id not in parents]


def account_by_code(code: str) -> Account | None:
    return db.session.scalar(select(Account).where(Account.code == code))


def role_account(tenant: Tenant, role: str) -> Account | None:
    """The account the chart names for ``role`` (``roles`` in the template: receivable, output_vat, ...)."""
    return (once(("roles", tenant.id), lambda: _role_accounts(tenant)) or {}).get(role)


def _role_accounts(tenant: Tenant) -> dict[str, Account] | None:
    """Every role's account, in one statement (None while the books are off)."""
    book = book_of(tenant)
    if book is None:
        return None
    roles = charts()[book.chart]["roles"]
    found = {a.code: a for a in db.session.scalars(select(Account).where(Account.code.in_(set(roles.values()))))}
    return {role: found[code] for role, code in roles.items() if code in found}


def add_account(actor: User, tenant: Tenant, parent_code: str, code: str, name_vi: str, name_en: str,
                ip: str | None = None) -> Account:
    """A sub-account under ``parent_code``; its code must start with the parent's. Commits, audited."""
    parent = account_by_code(parent_code)
    code, name_vi, name_en = code.strip(), name_vi.strip(), (name_en.strip() or name_vi.strip())
    errors = {}
    if parent is None:
        errors["parent"] = _("Choose the account this one is under.")
    elif not (code.startswith(parent.code) and len(code) > len(parent.code) and code.isalnum() and len(code) <= 20):
        errors["code"] = _("A sub-account's code starts with its parent's (%(code)s) and adds letters or digits.",
                           code=parent.code)
    elif account_by_code(code) is not None:
        errors["code"] = _("The account %(code)s already exists.", code=code)
    if not 2 <= len(name_vi) <= 200:
        errors["name_vi"] = _("Give the account a name (2 to 200 characters).")
    if errors:
        raise LedgerError(_("The account was not added: correct the fields marked."), errors)
    if db.session.scalar(select(func.count()).select_from(Line).where(Line.account_id == parent.id)):
        raise LedgerError(_("%(code)s already has postings: it cannot get sub-accounts, or its postings would sit "
                            "on a heading.", code=parent.code), {"parent": _("This account has postings.")})
    account = Account(tenant_id=tenant.id, code=code, parent_id=parent.id, name_vi=name_vi, name_en=name_en,
                      type=parent.type, normal=parent.normal, from_template=False)
    db.session.add(account)
    db.session.flush()
    audit.record("ledger.account_added", audit.Actor.of(actor), tenant_id=tenant.id, object_type="ledger_account",
                 object_id=account.id, ip=ip, data={"code": code, "parent": parent.code})
    db.session.commit()
    return account


def delete_account(actor: User, tenant: Tenant, code: str, ip: str | None = None) -> None:
    """Delete an account that never had postings nor sub-accounts (else deactivate it). Commits, audited."""
    account = account_by_code(code)
    if account is None:
        raise LedgerError(_("There is no account %(code)s.", code=code))
    if db.session.scalar(select(func.count()).select_from(Line).where(Line.account_id == account.id)):
        raise LedgerError(_("%(code)s has postings, so it cannot be deleted. Deactivate it instead: it stays in the "
                            "reports and takes no new lines.", code=code))
    if db.session.scalar(select(func.count()).select_from(Account).where(Account.parent_id == account.id)):
        raise LedgerError(_("%(code)s has sub-accounts: delete or deactivate those first.", code=code))
    db.session.delete(account)
    audit.record("ledger.account_deleted", audit.Actor.of(actor), tenant_id=tenant.id, object_type="ledger_account",
                 object_id=account.id, ip=ip, data={"code": code})
    db.session.commit()


def rename_account(actor: User, tenant: Tenant, code: str, name_vi: str, name_en: str,
                   ip: str | None = None) -> Account:
    """Give an account another name (Vietnamese, and English: the Vietnamese one when left empty). Its code,
    type and postings stay; the reports show the new name. Commits, audited with both names."""
    account = account_by_code(code)
    if account is None:
        raise LedgerError(_("There is no account %(code)s.", code=code))
    name_vi, name_en = name_vi.strip(), (name_en.strip() or name_vi.strip())
    errors = {}
    if not 2 <= len(name_vi) <= 200:
        errors["name_vi"] = _("Give the account a name (2 to 200 characters).")
    if len(name_en) > 200:
        errors["name_en"] = _("Keep the English name to 200 characters.")
    if errors:
        raise LedgerError(_("The account was not renamed: correct the fields marked."), errors)
    before = {"name_vi": account.name_vi, "name_en": account.name_en}
    account.name_vi, account.name_en = name_vi, name_en
    audit.record("ledger.account_renamed", audit.Actor.of(actor), tenant_id=tenant.id, object_type="ledger_account",
                 object_id=account.id, ip=ip, data={"code": code, "before": before,
                                                    "after": {"name_vi": name_vi, "name_en": name_en}})
    db.session.commit()
    return account


def set_account_active(actor: User, tenant: Tenant, code: str, active: bool, ip: str | None = None) -> Account:
    """Deactivate an account (no new lines; it stays in the reports) or activate it again. Commits, audited."""
    account = account_by_code(code)
    if account is None:
        raise LedgerError(_("There is no account %(code)s.", code=code))
    account.active = active
    audit.record("ledger.account_activated" if active else "ledger.account_deactivated", audit.Actor.of(actor),
                 tenant_id=tenant.id, object_type="ledger_account", object_id=account.id, ip=ip, data={"code": code})
    db.session.commit()
    return account


# --- entries --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LineInput:
    """One line as typed: an account code, a debit or a credit in the minor unit, and what it is."""

    account: str
    debit: int = 0
    credit: int = 0
    description: str | None = None
    counterparty: str | None = None
    tax_code: str | None = None
    currency: str | None = None
    original_amount: int | None = None
    rate: Decimal | None = None


def _postable_by_code(codes: set[str]) -> dict[str, Account]:
    """The accounts among ``codes`` that take lines: active, and no sub-account under them (one query)."""
    heading = select(1).where(Account.parent_id == _Parent.id).exists()
    rows = db.session.scalars(select(_Parent).where(_Parent.code.in_(codes), _Parent.active.is_(True), ~heading))
    return {a.code: a for a in rows}


def _lines(tenant: Tenant, entry: Entry, lines: Sequence[LineInput]) -> dict[str, str]:
    """Check ``lines`` and put them on ``entry`` (replacing any); the errors by field ("line-2-account")."""
    errors: dict[str, str] = {}
    chart = _postable_by_code({line.account.strip() for line in lines})
    if entry.lines:
        entry.lines.clear()
        db.session.flush()
    for n, line in enumerate(lines, start=1):
        account = chart.get(line.account.strip())
        if account is None:
            errors[f"line-{n}-account"] = _("Choose an active account that takes postings (not a heading).")
        if (line.debit > 0) == (line.credit > 0) or min(line.debit, line.credit) < 0:
            errors[f"line-{n}-amount"] = _("Give either a debit or a credit, greater than zero.")
        elif max(line.debit, line.credit) >= MAX_AMOUNT:
            errors[f"line-{n}-amount"] = _("This amount is too large to be right.")
        foreign = (line.currency, line.original_amount, line.rate)
        if any(v is not None for v in foreign) and not all(v is not None for v in foreign):
            errors[f"line-{n}-currency"] = _("A line in another currency needs its currency, its amount and the rate.")
        if account is not None and f"line-{n}-amount" not in errors:
            entry.lines.append(Line(tenant_id=tenant.id, line_no=n, account_id=account.id, debit=line.debit,
                                    credit=line.credit, description=line.description or None,
                                    counterparty=line.counterparty or None, tax_code=line.tax_code or None,
                                    currency=line.currency, original_amount=line.original_amount, rate=line.rate,
                                    party_key=party_key(tenant.id, line.counterparty)))
    return errors


class NotPosted(LedgerError):
    """Saved, but not posted: ``entry`` is kept as a draft, and the message says why it could not be posted."""

    def __init__(self, exc: LedgerError, entry: Entry) -> None:
        super().__init__(str(exc), exc.errors)
        self.entry = entry


def save_draft(actor: User, tenant: Tenant, entry_date: date, lines: Sequence[LineInput], *, memo: str | None = None,
               entry_id: str | None = None, document_id: uuid.UUID | None = None, source: str = "manual",
               due_date: date | None = None, post_it: bool = False, override: bool = False,
               ip: str | None = None) -> Entry:
    """A new draft entry, or a draft changed (lines replaced); a draft need not balance yet. With ``post_it``
    it is posted in the same transaction (``post``'s rules); when it may not be, it is kept as a draft and
    ``NotPosted`` says why. Commits."""
    _require_books(tenant)
    if entry_id is not None:
        entry = get_entry(entry_id, lock=True)
        if entry.state != "draft":
            raise LedgerError(_("Entry %(number)s is posted: it never changes. Reverse it and post a new one.",
                                number=entry.number))
    else:
        entry = Entry(tenant_id=tenant.id, created_by_id=actor.id, source=source, document_id=document_id, lines=[])
        db.session.add(entry)
    entry.entry_date, entry.memo, entry.due_date = entry_date, memo or None, due_date
    errors = _lines(tenant, entry, lines)
    if due_date is not None and due_date < entry_date:
        errors["due_date"] = _("The due date comes on or after the entry's date.")
    if errors:
        db.session.rollback()
        raise LedgerError(_("The entry was not saved: correct the lines marked."), errors)
    db.session.flush()
    if post_it:
        try:
            _post(actor, tenant, entry, ip, override=override)
        except LedgerError as exc:
            db.session.commit()  # the draft is kept; why it was not posted is said
            raise NotPosted(exc, entry) from None
    db.session.commit()
    if post_it:
        after_posting(actor, tenant, {entry.entry_date})
    return entry


def post_in_transaction(actor: User, tenant: Tenant, entry_date: date, lines: Sequence[LineInput], *,
                        memo: str | None = None, document_id: uuid.UUID | None = None, source: str = "manual",
                        ip: str | None = None) -> Entry:
    """A new entry posted at once (``post``'s rules) as one step of the caller's own change, e.g. a bank
    transaction reconciled with the invoices it settles: flushed, never committed here. ``LedgerError`` when
    it may not be posted; the caller then rolls back. After its commit the caller calls ``after_posting``."""
    _require_books(tenant)
    entry = Entry(tenant_id=tenant.id, created_by_id=actor.id, source=source, document_id=document_id,
                  entry_date=entry_date, memo=memo or None, lines=[])
    db.session.add(entry)
    errors = _lines(tenant, entry, lines)
    if errors:
        raise LedgerError(_("The entry was not posted: correct the lines marked."), errors)
    db.session.flush()
    _post(actor, tenant, entry, ip, override=False)
    db.session.flush()
    return entry


def post(actor: User, tenant: Tenant, entry_id: str, ip: str | None = None, *, override: bool = False) -> Entry:
    """Post a draft: balanced, at least two lines, in a month that is not closed. It is numbered and never
    changes again. An entry made from an invoice already posted (the same seller, symbol and number) is
    refused unless ``override`` (audited as such). Commits, audited."""
    entry = get_entry(entry_id, lock=True)
    if entry.state == "posted":
        raise LedgerError(_("Entry %(number)s is already posted.", number=entry.number))
    _post(actor, tenant, entry, ip, override=override)
    db.session.commit()
    after_posting(actor, tenant, {entry.entry_date})
    return entry


def after_posting(actor: User, tenant: Tenant, days: set[date]) -> None:
    """What follows a commit that posted into ``days``: a month being closed whose books moved gets its report
    again (``closing.posted_into``)."""
    from portal.ledger import closing

    for month in {day.replace(day=1) for day in days}:
        closing.posted_into(actor, tenant, month)


def _post(actor: User, tenant: Tenant, entry: Entry, ip: str | None, *, override: bool) -> None:
    from portal.ledger.from_documents import posted_for_same_invoice

    check_postable(entry)
    # An invoice is in the books once; a bank statement's document carries an entry per transaction, and a
    # reversal shares the document of what it reverses.
    twin = (posted_for_same_invoice(entry.document_id, entry.id)
            if entry.document_id and entry.source not in ("bank", "reversal") else None)
    if twin is not None and not override:
        raise LedgerError(_("This invoice is already in the books (entry %(number)s). Post it again only if it "
                            "really is a second invoice: tick “Post it anyway”.", number=twin.number),
                          {"override": _("Already posted as entry %(number)s.", number=twin.number)})
    # One number after another, per tenant: the tenant's posting is serialised for its number.
    db.session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(f"ledger:{tenant.id}", 0))))
    number = (db.session.scalar(select(func.max(Entry.number))) or 0) + 1
    entry.state, entry.number, entry.posted_at, entry.posted_by_id = "posted", number, utcnow(), actor.id
    audit.record("ledger.posted", audit.Actor.of(actor), tenant_id=tenant.id, object_type="ledger_entry",
                 object_id=entry.id, ip=ip, data={"number": number, "date": entry.entry_date.isoformat(),
                                                  "total": entry.total, "lines": len(entry.lines),
                                                  **({"twin_of": twin.number} if twin is not None else {})})


@dataclass(frozen=True)
class EntryInput:
    """One entry of a batch: its date, memo and lines."""

    entry_date: date
    lines: Sequence[LineInput]
    memo: str | None = None


def post_batch(actor: User, tenant: Tenant, entries: Sequence[EntryInput], *, source: str = "import",
               ip: str | None = None) -> list[int]:
    """Post many entries at once (an import: opening balances, a month of bank lines): all or none, each
    checked as ``post`` checks one, numbered in order under one lock, written in bulk, and one audit event
    naming the numbers. Raises ``LedgerError`` with the first entry's errors (``entry-3-line-2-account``).
    Returns the numbers given. Commits."""
    from sqlalchemy import insert

    _require_books(tenant)
    chart = _postable_by_code({line.account.strip() for e in entries for line in e.lines})
    closed = {p.month for p in db.session.scalars(select(Period).where(Period.state == "closed"))}
    errors: dict[str, str] = {}
    for i, entry in enumerate(entries, start=1):
        for n, line in enumerate(entry.lines, start=1):
            if line.account.strip() not in chart:
                errors[f"entry-{i}-line-{n}-account"] = _("Choose an active account that takes postings (not a "
                                                          "heading).")
            if (line.debit > 0) == (line.credit > 0) or min(line.debit, line.credit) < 0 \
                    or max(line.debit, line.credit) >= MAX_AMOUNT:
                errors[f"entry-{i}-line-{n}-amount"] = _("Give either a debit or a credit, greater than zero.")
        if len(entry.lines) < 2 or sum(x.debit for x in entry.lines) != sum(x.credit for x in entry.lines):
            errors[f"entry-{i}"] = _("An entry needs at least two lines, and its debits must equal its credits.")
        if entry.entry_date.replace(day=1) in closed:
            errors[f"entry-{i}-date"] = _("Its month is closed.")
    if errors:
        raise LedgerError(_("Nothing was posted: %(count)d problems in the entries.", count=len(errors)), errors)
    db.session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(f"ledger:{tenant.id}", 0))))
    first = (db.session.scalar(select(func.max(Entry.number))) or 0) + 1
    now = utcnow()
    entry_rows, line_rows = [], []
    for i, entry in enumerate(entries):
        entry_id = uuid.uuid4()
        entry_rows.append({"id": entry_id, "tenant_id": tenant.id, "number": first + i, "entry_date": entry.entry_date,
                           "state": "posted", "memo": entry.memo or None, "source": source, "created_by_id": actor.id,
                           "posted_at": now, "posted_by_id": actor.id})
        line_rows += [{"id": uuid.uuid4(), "tenant_id": tenant.id, "entry_id": entry_id, "line_no": n,
                       "account_id": chart[line.account.strip()].id, "debit": line.debit, "credit": line.credit,
                       "description": line.description or None, "counterparty": line.counterparty or None,
                       "tax_code": line.tax_code or None, "party_key": party_key(tenant.id, line.counterparty)}
                      for n, line in enumerate(entry.lines, start=1)]
    db.session.execute(insert(Entry), entry_rows)
    db.session.execute(insert(Line), line_rows)
    last = first + len(entries) - 1
    audit.record("ledger.batch_posted", audit.Actor.of(actor), tenant_id=tenant.id, object_type="ledger_entry",
                 ip=ip, data={"first": first, "last": last, "entries": len(entries), "lines": len(line_rows),
                              "total": sum(x.debit for e in entries for x in e.lines), "source": source})
    db.session.commit()
    after_posting(actor, tenant, {e.entry_date for e in entries})
    return list(range(first, last + 1))


def carry_result(actor: User, tenant: Tenant, since: date, until: date, ip: str | None = None) -> Entry:
    """Carry the result of ``since``..``until`` to retained earnings (kết chuyển): one entry dated ``until`` that
    empties every revenue and expense account into the profit and loss summary account (911), and moves the
    result from there to the current year's retained earnings (4212): a profit credits it, a loss debits it.
    The profit and loss report leaves this entry out (``reports.trial_balance(activity=True)``). Commits,
    audited as a posting; ``LedgerError`` when there is nothing to carry or the month is closed."""
    from portal.ledger import reports

    _require_books(tenant)
    if since > until:
        raise LedgerError(_("The first day comes before the last."))
    period = period_of(until)
    if period is not None and period.state == "closed":
        raise LedgerError(_("%(month)s is closed: nothing is posted into it. Ask the provider's admin to reopen "
                            "it, or carry the result in an open month.", month=until.strftime("%m/%Y")))
    # What is still on the revenue and expense accounts, earlier carrying included: carried once, nothing is left.
    rows = [r for r in reports.trial_balance(until, since=since)
            if r.type in ("revenue", "expense") and r.debit != r.credit]
    if not rows:
        raise LedgerError(_("Nothing to carry: no revenue or expense was posted over these dates."))
    summary, retained = role_account(tenant, "pl_summary"), role_account(tenant, "retained_earnings_current")
    memo = _("Result of %(since)s to %(until)s carried to retained earnings", since=since.isoformat(),
             until=until.isoformat())
    lines: list[LineInput] = []
    into_summary = [0, 0]  # what the summary account is debited (expenses) and credited (revenue)
    for row in rows:
        net = row.debit - row.credit  # a debit balance is credited away, a credit balance debited
        lines.append(LineInput(row.code, max(-net, 0), max(net, 0), memo))
        into_summary[0 if net > 0 else 1] += abs(net)
    lines += [LineInput(summary.code, into_summary[0], 0, memo)] if into_summary[0] else []
    lines += [LineInput(summary.code, 0, into_summary[1], memo)] if into_summary[1] else []
    result = into_summary[1] - into_summary[0]
    if result:
        lines += [LineInput(summary.code, max(result, 0), max(-result, 0), memo),
                  LineInput(retained.code, max(-result, 0), max(result, 0), memo)]
    return save_draft(actor, tenant, until, lines, memo=memo, source=reports.CARRY, post_it=True, ip=ip)


def check_postable(entry: Entry) -> None:
    """Refuse, with what to do, an entry that may not be posted: unbalanced, one line, a closed month."""
    debits, credits = sum(line.debit for line in entry.lines), sum(line.credit for line in entry.lines)
    if len(entry.lines) < 2:
        raise LedgerError(_("An entry needs at least two lines: what is debited and what is credited."))
    if debits != credits:
        raise LedgerError(_("The entry does not balance: debits %(debits)s, credits %(credits)s. Correct the lines "
                            "so that they are equal.", debits=format_decimal(debits), credits=format_decimal(credits)))
    period = period_of(entry.entry_date)
    if period is not None and period.state == "closed":
        raise LedgerError(_("%(month)s is closed: nothing is posted into it. Date the entry in an open month, or ask "
                            "the provider's admin to reopen the month.", month=entry.entry_date.strftime("%m/%Y")))


def reverse(actor: User, tenant: Tenant, entry_id: str, on: date, *, memo: str | None = None,
            ip: str | None = None) -> Entry:
    """Correct a posted entry: a new posted entry on ``on`` with every debit and credit swapped. Commits."""
    original = get_entry(entry_id, lock=True)
    if original.state != "posted":
        raise LedgerError(_("A draft is corrected by editing it; only posted entries are reversed."))
    if original.reversed_by_id is not None:
        raise LedgerError(_("Entry %(number)s was reversed already.", number=original.number))
    reversal = Entry(tenant_id=tenant.id, entry_date=on, source="reversal", reverses_id=original.id,
                     memo=memo or _("Reverses entry %(number)s", number=original.number), created_by_id=actor.id,
                     document_id=original.document_id)
    reversal.lines = [Line(tenant_id=tenant.id, line_no=line.line_no, account_id=line.account_id, debit=line.credit,
                           credit=line.debit, description=line.description, counterparty=line.counterparty,
                           tax_code=line.tax_code, currency=line.currency,
                           original_amount=line.original_amount, rate=line.rate, party_key=line.party_key)
                       for line in original.lines]
    db.session.add(reversal)
    db.session.flush()
    check_postable(reversal)
    posted = post(actor, tenant, str(reversal.id), ip)  # commits
    original = get_entry(entry_id, lock=True)
    original.reversed_by_id = posted.id
    audit.record("ledger.reversed", audit.Actor.of(actor), tenant_id=tenant.id, object_type="ledger_entry",
                 object_id=original.id, ip=ip, data={"number": original.number, "by": posted.number})
    db.session.commit()
    return posted


def delete_draft(actor: User, tenant: Tenant, entry_id: str, ip: str | None = None) -> None:
    entry = get_entry(entry_id, lock=True)
    if entry.state != "draft":
        raise LedgerError(_("Entry %(number)s is posted: it is never deleted. Reverse it instead.",
                            number=entry.number))
    db.session.delete(entry)  # a draft was never in the books: nothing to audit
    db.session.commit()


def get_entry(entry_id: str | uuid.UUID, *, lock: bool = False) -> Entry:
    """An entry of the bound tenant, or 404 (the same for another tenant's and a missing one)."""
    from tenants.lookups import one_or_404, parse_id

    return one_or_404(Entry, Entry.id == parse_id(entry_id), lock=lock)


def _with_lines(query):  # noqa: ANN001, ANN202 - a Select of Entry
    # Their lines and the lines' accounts in two more statements, whatever the number of entries: a list reads
    # each entry's total (or its lines) and would otherwise load them an entry at a time.
    return query.options(selectinload(Entry.lines).joinedload(Line.account))


def journal(limit: int = 200) -> list[Entry]:
    """The bound tenant's journal: drafts first, then posted entries newest first (at most ``limit``), with
    their lines."""
    return list(db.session.scalars(_with_lines(select(Entry)).order_by(
        Entry.state, Entry.number.desc().nulls_first(), Entry.entry_date.desc()).limit(limit)))


def latest_entries(limit: int = 10) -> list[Entry]:
    """The bound tenant's last posted entries, newest first, with their lines."""
    return list(db.session.scalars(_with_lines(select(Entry)).where(Entry.state == "posted")
                                   .order_by(Entry.number.desc()).limit(limit)))


def _require_books(tenant: Tenant) -> Book:
    book = book_of(tenant)
    if book is None:
        raise LedgerError(_("Bookkeeping is not on for this client yet: choose its chart of accounts first."))
    return book


# --- months ---------------------------------------------------------------------------------------------

def period_of(day: date) -> Period | None:
    return db.session.scalar(select(Period).where(Period.month == day.replace(day=1)))


def close_month(actor: User, tenant: Tenant, month: date, ip: str | None = None) -> Period:
    """Close a month: nothing posts into it afterwards; keeps the hash of its trial balance. Commits, audited."""
    month = month.replace(day=1)
    period = period_of(month) or Period(tenant_id=tenant.id, month=month)
    if period.state == "closed":
        raise LedgerError(_("%(month)s is closed already.", month=month.strftime("%m/%Y")))
    drafts = db.session.scalar(select(func.count()).select_from(Entry).where(
        Entry.state == "draft", Entry.entry_date >= month, Entry.entry_date < _next_month(month)))
    if drafts:
        raise LedgerError(_("%(month)s still has %(count)d draft entries: post or delete them before closing it.",
                            month=month.strftime("%m/%Y"), count=drafts))
    db.session.add(period)
    close(period, actor.id, audit.Actor.of(actor), ip=ip)
    db.session.commit()
    return period


def close(period: Period, closed_by_id: uuid.UUID | None, who: audit.Actor, ip: str | None = None,
          **data: object) -> None:
    """Close ``period``: nothing posts into it afterwards; the hash of its trial balance is kept; audited."""
    from portal.ledger import reports

    month = period.month
    period.state, period.closed_at, period.closed_by_id = "closed", utcnow(), closed_by_id
    period.closed_hash = month_hash(reports.trial_balance(last_day(month), since=month))
    db.session.flush()
    audit.record("ledger.month_closed", who, tenant_id=period.tenant_id, object_type="ledger_period",
                 object_id=period.id, ip=ip, data={"month": month.isoformat(), "hash": period.closed_hash, **data})


def reopen_month(actor: User, tenant: Tenant, month: date, reason: str, ip: str | None = None) -> Period:
    """The provider's admin reopens a closed month, with a reason (audited); entries post into it again."""
    period = period_of(month)
    if period is None or period.state != "closed":
        raise LedgerError(_("%(month)s is not closed.", month=month.strftime("%m/%Y")))
    if len(reason.strip()) < 5:
        raise LedgerError(_("Say why the month is reopened (a few words): the client sees it in the log."),
                          {"reason": _("Say why.")})
    from portal.ledger import closing

    period.state, period.reopened_reason, period.closed_hash = "open", reason.strip(), None
    closing.back_to_work(actor, period, reason.strip())
    audit.record("ledger.month_reopened", audit.Actor.of(actor), tenant_id=tenant.id, object_type="ledger_period",
                 object_id=period.id, ip=ip, data={"month": period.month.isoformat(), "reason": reason.strip()})
    db.session.commit()
    if period.report_id is not None:  # a new version of the approved report: the client sees why
        closing.rewrite_report(actor, tenant, period, note=f"reopened: {reason.strip()}")
    return period


def month_hash(rows: Sequence) -> str:
    """A SHA-256 of a trial balance (code, debit, credit per account): what an approval of the month binds to."""
    canonical = json.dumps([[r.code, r.debit, r.credit] for r in rows], separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def last_day(month: date) -> date:
    """The last day of ``month``'s month."""
    return _next_month(month.replace(day=1)) - timedelta(days=1)


def used_accounts() -> set[uuid.UUID]:
    """The accounts that have lines (they cannot be deleted)."""
    return set(db.session.scalars(select(Line.account_id).distinct()))


@dataclass(frozen=True)
class MonthView:
    month: date
    state: str  # open (no row yet counts as open), in_review, closed
    posted: int
    drafts: int
    reopened_reason: str | None


def months_shown(count: int = 12) -> list[MonthView]:
    """The last ``count`` months up to this one (newest first) with their state and how many entries they hold."""
    today = date.today().replace(day=1)
    first = today
    for _i in range(count - 1):
        first = (first - timedelta(days=1)).replace(day=1)
    periods = {p.month: p for p in db.session.scalars(select(Period).where(Period.month >= first))}
    # One expression in both places: two would bind "month" twice ($1, $2), and PostgreSQL refuses the select
    # as not grouped by what it groups by.
    in_month = func.date_trunc("month", Entry.entry_date)
    counts = dict(((m.date(), s), n) for m, s, n in db.session.execute(
        select(in_month, Entry.state, func.count()).where(Entry.entry_date >= first).group_by(in_month, Entry.state)))
    out, month = [], today
    for _i in range(count):
        period = periods.get(month)
        out.append(MonthView(month, period.state if period else "open", counts.get((month, "posted"), 0),
                             counts.get((month, "draft"), 0), period.reopened_reason if period else None))
        month = (month - timedelta(days=1)).replace(day=1)
    return out
