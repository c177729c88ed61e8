"""Bank reconciliation: the transactions read from a client's bank statements, matched with its books.

A bank account seen in statements (by its keyed hash and currency) is linked once to the ledger account that
keeps it (a leaf under the chart's bank account). Each of its transactions is then reconciled one way:

- with open invoices (``items``): a payment entry is posted on the booking day (money in: Dr bank / Cr
  receivable; money out: Dr payable / Cr bank), linked to the statement's document, and settles the invoices
  (``open_items.settle``) in the same transaction: one payment may settle several invoices, an invoice may be
  paid by several payments;
- with an entry already in the books on the bank's ledger account (``entry``), recorded by hand: only the
  match is recorded;
- by a rule staff saved, or to an account chosen by hand (``rule``, ``account``): an entry is posted.

The engine that suggests how (scores and reasons) is ``reconcile_rules``: pure functions. The report puts the
statement's balance beside the books' and lists every item between them.

Callers are the ledger's pages and the API after the gate checked ``tenant:ledger.keep`` (reconciling, rules)
or ``tenant:ledger.view`` (the report). Everything runs in the bound tenant: another tenant's transaction,
link, match or rule is not found (404), like one that does not exist. A transaction counts only while its
statement is on the current version of a document not in the trash.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from flask_babel import get_locale
from flask_babel import gettext as _
from sqlalchemy import exists, func, select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased
from werkzeug.exceptions import NotFound

from portal.billing.render import format_money
from portal.documents.models import Document
from portal.extensions import db
from portal.intake.bank.models import BankStatement, BankTransaction
from portal.ledger import open_items, services
from portal.ledger import reconcile_rules as engine
from portal.ledger.models import Account, BankLink, BankMatch, BankRule, Entry, Line
from portal.ledger.services import LedgerError, LineInput
from tenants import audit
from tenants.lookups import one_or_404
from tenants.models import Tenant, User, utcnow

KINDS = ("items", "entry", "rule", "account")
SHOWN = 100  # unmatched transactions on the workspace, oldest first
_MatchEntry = aliased(Entry)


def _parse(raw: object) -> uuid.UUID:
    try:
        return uuid.UUID(str(raw))
    except (TypeError, ValueError):
        raise NotFound() from None


# --- which transactions count -------------------------------------------------------------------------------

def _live(query):  # noqa: ANN001, ANN202 - a select joining BankStatement
    """Only statements on the current version of a document not in the trash."""
    return query.join(Document, (Document.id == BankStatement.document_id)
                      & (Document.current_version == BankStatement.version)).where(Document.trashed_at.is_(None))


def _transactions_of(link: BankLink, *columns):  # noqa: ANN001, ANN202
    query = select(*columns).select_from(BankTransaction).join(BankStatement,
                                                               BankStatement.id == BankTransaction.statement_id)
    return _live(query).where(BankStatement.account_key == link.account_key, BankStatement.currency == link.currency)


def _reconciled():  # noqa: ANN202 - a SQL condition on BankTransaction
    """The transaction has an active match whose entry is still in the books (not reversed since)."""
    return (select(1).select_from(BankMatch).join(_MatchEntry, _MatchEntry.id == BankMatch.entry_id)
            .where(BankMatch.transaction_id == BankTransaction.id, BankMatch.state == "active",
                   _MatchEntry.reversed_by_id.is_(None)).exists())


# --- bank accounts and their links --------------------------------------------------------------------------

@dataclass(frozen=True)
class SeenAccount:
    """A bank account seen in the tenant's statements; ``ref`` names it in a form (its keyed hash and currency)."""

    ref: str
    bank: str | None
    mask: str | None
    currency: str
    statements: int
    last_day: date | None
    link: BankLink | None


def _ref(key: bytes, currency: str) -> str:
    return f"{key.hex()}:{currency}"


def seen_accounts() -> list[SeenAccount]:
    """The bound tenant's bank accounts in statements, with their link when there is one (by bank and mask)."""
    counted = _live(select(BankStatement.account_key, BankStatement.currency, func.count(),
                           func.max(BankStatement.period_end))
                    .where(BankStatement.account_key.is_not(None))
                    .group_by(BankStatement.account_key, BankStatement.currency))
    latest = _live(select(BankStatement.account_key, BankStatement.currency, BankStatement.bank,
                          BankStatement.account_mask)
                   .where(BankStatement.account_key.is_not(None))
                   .ext(distinct_on(BankStatement.account_key, BankStatement.currency))
                   .order_by(BankStatement.account_key, BankStatement.currency,
                             BankStatement.period_end.desc().nulls_last(), BankStatement.created_at.desc()))
    names = {(bytes(k), c): (bank, mask) for k, c, bank, mask in db.session.execute(latest)}
    linked = {(bytes(li.account_key), li.currency): li for li in links()}
    out = [SeenAccount(_ref(bytes(k), c), *names.get((bytes(k), c), (None, None)), c, n, last,
                       linked.get((bytes(k), c))) for k, c, n, last in db.session.execute(counted)]
    return sorted(out, key=lambda s: (s.bank or "", s.mask or "", s.currency))


def links() -> list[BankLink]:
    """The bound tenant's linked bank accounts, by ledger account code."""
    return list(db.session.scalars(select(BankLink).join(Account, Account.id == BankLink.account_id)
                                   .order_by(Account.code)))


def get_link(link_id: object) -> BankLink:
    """A link of the bound tenant, or 404 (the same for another tenant's and a missing one)."""
    link = db.session.scalar(select(BankLink).where(BankLink.id == _parse(link_id)))
    if link is None:
        raise NotFound()
    return link


def ledger_accounts(tenant: Tenant) -> list[Account]:
    """The accounts a bank account may be linked to: active leaves under the chart's bank account (112 over
    1121 in Circular 133's chart), not linked already."""
    role = services.role_account(tenant, "bank")
    if role is None:
        return []
    root = role
    parent = db.session.get(Account, role.parent_id) if role.parent_id else None
    if parent is not None and role.code.startswith(parent.code):
        root = parent
    taken = {li.account_id for li in links()}
    return [a for a in services.postable(services.accounts(active_only=True))
            if a.code.startswith(root.code) and a.id not in taken]


def link_account(actor: User, tenant: Tenant, ref: str, code: str, ip: str | None = None) -> BankLink:
    """Link the bank account ``ref`` (``SeenAccount.ref``) to the ledger account ``code``, once. Commits,
    audited; ``LedgerError`` with every problem at once."""
    book = services.book_of(tenant)
    if book is None:
        raise LedgerError(_("Bookkeeping is not on for this client yet: choose its chart of accounts first."))
    seen = {s.ref: s for s in seen_accounts()}
    errors: dict[str, str] = {}
    account = next((a for a in ledger_accounts(tenant) if a.code == (code or "").strip()), None)
    found = seen.get(ref or "")
    if found is None:
        errors["bank_account"] = _("Choose one of the bank accounts read from the statements.")
    elif found.link is not None:
        errors["bank_account"] = _("This bank account is linked already, to %(code)s.", code=found.link.account.code)
    elif found.currency != book.currency:
        errors["bank_account"] = _("This account is in %(currency)s; the books are kept in %(books)s. Only accounts "
                                   "in the books' currency are reconciled here.", currency=found.currency,
                                   books=book.currency)
    if account is None:
        errors["account"] = _("Choose a ledger account under the bank account that takes postings and is not linked "
                              "to another bank account (add a sub-account for it on the chart if needed).")
    if errors:
        raise LedgerError(_("The bank account was not linked: correct the fields marked."), errors)
    link = BankLink(tenant_id=tenant.id, account_key=bytes.fromhex(ref.split(":")[0]), currency=found.currency,
                    bank=found.bank, account_mask=found.mask, account_id=account.id, linked_by_id=actor.id)
    db.session.add(link)
    try:
        db.session.flush()
    except IntegrityError:  # linked at the same moment by someone else
        db.session.rollback()
        raise LedgerError(_("This bank account or ledger account was linked just now: look at the list again."),
                          {"bank_account": _("Linked already.")}) from None
    audit.record("ledger.bank_account_linked", audit.Actor.of(actor), tenant_id=tenant.id,
                 object_type="ledger_bank_link", object_id=link.id, ip=ip,
                 data={"account": account.code, "bank": found.bank, "mask": found.mask, "currency": found.currency})
    db.session.commit()
    return link


@dataclass(frozen=True)
class Progress:
    reconciled: int
    total: int


def progress(link: BankLink) -> Progress:
    """How many of the account's transactions are reconciled, of how many (two counts in one query)."""
    total, done = db.session.execute(_transactions_of(
        link, func.count(BankTransaction.id), func.count(BankTransaction.id).filter(_reconciled()))).one()
    return Progress(int(done), int(total))


def unmatched(link: BankLink, limit: int | None = SHOWN) -> list[BankTransaction]:
    """The account's transactions not reconciled yet, oldest first."""
    query = (_transactions_of(link, BankTransaction).where(~_reconciled())
             .order_by(BankTransaction.booked_on, BankStatement.period_end, BankTransaction.line_no))
    return list(db.session.scalars(query.limit(limit) if limit else query))


def recent_matches(link: BankLink, limit: int = 20) -> list[tuple[BankMatch, BankTransaction]]:
    """The account's latest active matches with their transactions, newest first (each may be undone)."""
    query = (_transactions_of(link, BankMatch, BankTransaction).join(BankMatch,
                                                                      BankMatch.transaction_id == BankTransaction.id)
             .where(BankMatch.state == "active").order_by(BankMatch.created_at.desc()).limit(limit))
    return [(m, t) for m, t in db.session.execute(query)]


def get_transaction(transaction_id: object, *, lock: bool = False) -> tuple[BankTransaction, BankStatement, BankLink]:
    """A transaction of a linked bank account of the bound tenant, its statement and the link; else 404."""
    query = (select(BankTransaction, BankStatement, BankLink)
             .join(BankStatement, BankStatement.id == BankTransaction.statement_id)
             .join(BankLink, (BankLink.account_key == BankStatement.account_key)
                   & (BankLink.currency == BankStatement.currency))
             .where(BankTransaction.id == _parse(transaction_id)))
    query = _live(query)
    if lock:
        query = query.with_for_update(of=BankTransaction).execution_options(populate_existing=True)
    row = db.session.execute(query).first()
    if row is None:
        raise NotFound()
    return row[0], row[1], row[2]


def match_of(txn: BankTransaction) -> BankMatch | None:
    """The transaction's active match whose entry is still in the books, if any."""
    return db.session.scalar(select(BankMatch).join(_MatchEntry, _MatchEntry.id == BankMatch.entry_id)
                             .where(BankMatch.transaction_id == txn.id, BankMatch.state == "active",
                                    _MatchEntry.reversed_by_id.is_(None)))


def get_match(match_id: object, *, lock: bool = False) -> BankMatch:
    """A match of the bound tenant, or 404 (the same for another tenant's and a missing one)."""
    return one_or_404(BankMatch, BankMatch.id == _parse(match_id), lock=lock)


# --- suggestions --------------------------------------------------------------------------------------------

def as_txn(txn: BankTransaction) -> engine.Txn:
    return engine.Txn(txn.id, txn.booked_on, txn.amount, txn.counterparty_name, txn.counterparty_account,
                      txn.reference)


def open_invoices(tenant: Tenant) -> dict[str, list[engine.Item]]:
    """The open receivables and payables, as the engine reads them (with their counterparty's key and the texts
    their invoice number is written in)."""
    out: dict[str, list[engine.Item]] = {}
    for kind in open_items.KINDS:
        found = open_items.items(tenant, kind, date.max, limit=2000)
        extra = {line_id: (key, texts) for line_id, key, texts in _line_texts([i.line_id for i in found])}
        out[kind] = [engine.Item(i.line_id, i.number, i.entry_date, i.due_date, i.open, i.counterparty,
                                 *extra.get(i.line_id, (None, ()))) for i in found]
    return out


def _line_texts(line_ids: list[uuid.UUID]) -> list[tuple[uuid.UUID, bytes | None, tuple[str, ...]]]:
    if not line_ids:
        return []
    rows = db.session.execute(select(Line.id, Line.party_key, Line.description, Entry.memo)
                              .join(Entry, Entry.id == Line.entry_id).where(Line.id.in_(line_ids)))
    return [(line_id, bytes(key) if key is not None else None, tuple(t for t in (description, memo) if t))
            for line_id, key, description, memo in rows]


def book_entries(link: BankLink) -> list[engine.BookEntry]:
    """Posted entries on the link's ledger account not matched to a transaction (nor reversed, nor reversals),
    with their net amount on it."""
    net = func.sum(Line.debit - Line.credit)
    matched = exists().where(BankMatch.entry_id == Entry.id, BankMatch.state == "active")
    query = (select(Entry.id, Entry.number, Entry.entry_date, net).join(Line, Line.entry_id == Entry.id)
             .where(Line.account_id == link.account_id, Entry.state == "posted", Entry.reverses_id.is_(None),
                    Entry.reversed_by_id.is_(None), ~matched)
             .group_by(Entry.id).having(net != 0).order_by(Entry.entry_date, Entry.number))
    return [engine.BookEntry(entry_id, number, day, int(amount)) for entry_id, number, day, amount
            in db.session.execute(query)]


def rules() -> list[BankRule]:
    """The bound tenant's saved rules, oldest first (the first that fits a transaction is the one applied)."""
    return list(db.session.scalars(select(BankRule).order_by(BankRule.created_at, BankRule.id)))


def as_rule(rule: BankRule) -> engine.Rule:
    return engine.Rule(rule.id, rule.counterparty, rule.reference, rule.direction, rule.account.code,
                       rule.description)


def suggestions(tenant: Tenant, link: BankLink, txns: Sequence[BankTransaction]) -> list[engine.Suggested]:
    """Each transaction's candidates, best first, in booking order (``reconcile_rules.suggest_all``)."""
    return engine.suggest_all([as_txn(t) for t in txns], open_invoices(tenant), book_entries(link),
                              [as_rule(r) for r in rules()])


# --- reconciling --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Reconciled:
    """A transaction's match, and whether this call made it (False: it was reconciled already, nothing posted)."""

    match: BankMatch
    created: bool


def _active_match(txn_id: uuid.UUID) -> BankMatch | None:
    """The transaction's active match; one whose entry was reversed on the entry's own page since is marked
    undone here (the transaction is to be reconciled again)."""
    match = db.session.scalar(select(BankMatch).where(BankMatch.transaction_id == txn_id,
                                                      BankMatch.state == "active").with_for_update())
    if match is not None and match.entry.reversed_by_id is not None:
        match.state, match.undone_at, match.reversal_id = "undone", utcnow(), match.entry.reversed_by_id
        db.session.flush()
        return None
    return match


Booker = Callable[[BankTransaction, BankStatement, BankLink], tuple[Entry, dict]]


def _reconcile(actor: User, tenant: Tenant, transaction_id: object, kind: str, book: Booker, *,
               rule_id: uuid.UUID | None = None, ip: str | None = None) -> Reconciled:
    """Reconcile a transaction with what ``book`` posts or finds, once: the transaction's row is locked first,
    and one already reconciled is answered with its match (a double click posts nothing twice)."""
    txn, statement, link = get_transaction(transaction_id, lock=True)
    existing = _active_match(txn.id)
    if existing is not None:
        db.session.rollback()
        return Reconciled(existing, False)
    try:
        entry, data = book(txn, statement, link)
        match = BankMatch(tenant_id=tenant.id, transaction_id=txn.id, link_id=link.id, kind=kind, entry_id=entry.id,
                          rule_id=rule_id, amount=txn.amount, created_by_id=actor.id)
        db.session.add(match)
        db.session.flush()
        audit.record("ledger.rule_applied" if kind == "rule" else "ledger.reconciled", audit.Actor.of(actor),
                     tenant_id=tenant.id, object_type="ledger_entry", object_id=entry.id, ip=ip,
                     data={"how": kind, "amount": txn.amount, "booked_on": txn.booked_on.isoformat(),
                           "entry": entry.number, **data})
        db.session.commit()
    except LedgerError:
        db.session.rollback()
        raise
    except IntegrityError:  # the unique indexes, or the settlements' check, at the same moment as another
        db.session.rollback()
        existing = db.session.scalar(select(BankMatch).where(BankMatch.transaction_id == _parse(transaction_id),
                                                             BankMatch.state == "active"))
        if existing is not None:
            return Reconciled(existing, False)
        raise LedgerError(_("The books changed while this was being reconciled: nothing was posted. Look at the "
                            "transaction again.")) from None
    if kind != "entry":
        services.after_posting(actor, tenant, {entry.entry_date})
    return Reconciled(match, True)


def _money(amount: int, currency: str) -> str:
    return format_money(amount, currency, str(get_locale() or "en"))


def _memo(txn: BankTransaction, link: BankLink) -> str:
    said = " · ".join(p for p in (txn.counterparty_name, txn.reference) if p)
    return _("Bank %(account)s: %(text)s", account=link.account_mask or link.bank or "",
             text=said or _("no reference"))[:500]


def _post(actor: User, tenant: Tenant, txn: BankTransaction, statement: BankStatement, lines: list[LineInput],
          memo: str, ip: str | None) -> Entry:
    return services.post_in_transaction(actor, tenant, txn.booked_on, lines, memo=memo,
                                        document_id=statement.document_id, source="bank", ip=ip)


def reconcile_items(actor: User, tenant: Tenant, transaction_id: object, allocations: Mapping[uuid.UUID, int], *,
                    ip: str | None = None) -> Reconciled:
    """Post the payment the transaction is and let it settle invoices: ``allocations`` maps an open item's line
    (a receivable for money in, a payable for money out) to the amount settled; they add up to the
    transaction's amount. Commits, audited ``ledger.reconciled``."""

    def book(txn: BankTransaction, statement: BankStatement, link: BankLink) -> tuple[Entry, dict]:
        kind = "receivable" if txn.amount > 0 else "payable"
        open_ = {i.line_id: i for i in open_items.items(tenant, kind, date.max, line_ids=list(allocations))}
        errors: dict[str, str] = {}
        for line_id, amount in allocations.items():
            item = open_.get(line_id)
            if item is None:
                errors[f"item-{line_id}"] = (_("This invoice is not an open receivable: money in settles what "
                                               "customers owe.") if kind == "receivable" else
                                             _("This invoice is not an open payable: money out settles what is owed "
                                               "to suppliers."))
            elif not 0 < amount <= item.open:
                errors[f"item-{line_id}"] = _("Settle more than nothing and at most what is open on it (%(open)s).",
                                              open=_money(item.open, txn.currency))
        if sum(allocations.values()) != abs(txn.amount):
            errors["total"] = _("The amounts settled add up to %(sum)s; the transaction is %(amount)s. They must be "
                                "equal.", sum=_money(sum(allocations.values()), txn.currency),
                                amount=_money(abs(txn.amount), txn.currency))
        if errors or not allocations:
            raise LedgerError(_("Nothing was posted: correct the amounts marked."), errors)
        item_lines = {line.id: line for line in db.session.scalars(select(Line).where(Line.id.in_(allocations)))}
        paid, memo = abs(txn.amount), _memo(txn, link)
        lines = [LineInput(link.account.code, paid, 0, memo)] if txn.amount > 0 else []
        for line_id, amount in allocations.items():
            item_line = item_lines[line_id]
            described = _("Payment of entry %(number)d", number=open_[line_id].number)
            lines.append(LineInput(item_line.account.code, 0 if txn.amount > 0 else amount,
                                   amount if txn.amount > 0 else 0, described, item_line.counterparty))
        if txn.amount < 0:
            lines.append(LineInput(link.account.code, 0, paid, memo))
        entry = _post(actor, tenant, txn, statement, lines, memo, ip)
        first = 2 if txn.amount > 0 else 1  # the payment lines, in the allocations' order
        by_no = {line.line_no: line for line in entry.lines}
        for n, (line_id, amount) in enumerate(allocations.items()):
            open_items.settle(actor, tenant, by_no[first + n].id, {line_id: amount}, ip=ip, commit=False)
        return entry, {"items": sorted(open_[i].number for i in allocations)}

    return _reconcile(actor, tenant, transaction_id, "items", book, ip=ip)


def reconcile_entry(actor: User, tenant: Tenant, transaction_id: object, entry_id: object, *,
                    ip: str | None = None) -> Reconciled:
    """Record that an entry already in the books (on the link's ledger account, with the transaction's amount,
    not matched yet) is the transaction. Nothing is posted. Commits, audited ``ledger.reconciled``."""

    def book(txn: BankTransaction, _statement: BankStatement, link: BankLink) -> tuple[Entry, dict]:
        entry = services.get_entry(_parse(entry_id))
        if entry.state != "posted" or entry.reverses_id is not None or entry.reversed_by_id is not None:
            raise LedgerError(_("Only a posted entry that is not reversed (nor a reversal) matches a transaction."))
        net = sum(line.debit - line.credit for line in entry.lines if line.account_id == link.account_id)
        if net != txn.amount:
            raise LedgerError(_("Entry %(number)s does not move %(code)s by the transaction's amount.",
                                number=entry.number, code=link.account.code))
        if db.session.scalar(select(func.count()).select_from(BankMatch).where(BankMatch.entry_id == entry.id,
                                                                               BankMatch.state == "active")):
            raise LedgerError(_("Entry %(number)s is matched to another transaction already.", number=entry.number))
        return entry, {}

    return _reconcile(actor, tenant, transaction_id, "entry", book, ip=ip)


def _booked_to(actor: User, tenant: Tenant, txn: BankTransaction, statement: BankStatement, link: BankLink,
               code: str, description: str, ip: str | None) -> Entry:
    """Post the transaction against ``code``: money in Dr bank / Cr it, money out Dr it / Cr bank."""
    paid = abs(txn.amount)
    bank, other = LineInput(link.account.code, paid, 0, description), LineInput(code, 0, paid, description)
    if txn.amount < 0:
        bank, other = LineInput(link.account.code, 0, paid, description), LineInput(code, paid, 0, description)
    return _post(actor, tenant, txn, statement, [bank, other] if txn.amount > 0 else [other, bank],
                 _memo(txn, link), ip)


def reconcile_by_rule(actor: User, tenant: Tenant, transaction_id: object, rule_id: object, *,
                      ip: str | None = None) -> Reconciled:
    """Post the transaction as a saved rule says (it must fit). Commits, audited ``ledger.rule_applied``."""
    rule = get_rule(rule_id)

    def book(txn: BankTransaction, statement: BankStatement, link: BankLink) -> tuple[Entry, dict]:
        if not engine.fits(as_rule(rule), as_txn(txn)):
            raise LedgerError(_("This rule does not fit the transaction: its direction, counterparty or reference "
                                "differ."))
        if rule.account_id == link.account_id:
            raise LedgerError(_("A rule posts to another account than the bank's own."))
        return _booked_to(actor, tenant, txn, statement, link, rule.account.code, rule.description, ip), \
            {"rule": str(rule.id), "account": rule.account.code}

    return _reconcile(actor, tenant, transaction_id, "rule", book, rule_id=rule.id, ip=ip)


def reconcile_to_account(actor: User, tenant: Tenant, transaction_id: object, code: str, description: str, *,
                         ip: str | None = None) -> Reconciled:
    """Post the transaction against an account chosen by hand (a one-off: a bank fee, interest). Commits,
    audited ``ledger.reconciled``."""
    code, description = (code or "").strip(), " ".join((description or "").split())

    def book(txn: BankTransaction, statement: BankStatement, link: BankLink) -> tuple[Entry, dict]:
        errors = {}
        if code == link.account.code or not code:
            errors["account"] = _("Choose the account the money comes from or goes to (not the bank's own).")
        if not 2 <= len(description) <= 200:
            errors["description"] = _("Say what it is (2 to 200 characters): it is the entry's description.")
        if errors:
            raise LedgerError(_("Nothing was posted: correct the fields marked."), errors)
        return _booked_to(actor, tenant, txn, statement, link, code, description, ip), {"account": code}

    return _reconcile(actor, tenant, transaction_id, "account", book, ip=ip)


def accept(actor: User, tenant: Tenant, transaction_id: object, key: str, *, ip: str | None = None) -> Reconciled:
    """Accept a suggestion by its ``key`` (``reconcile_rules.Candidate.key``): one click, checked again here."""
    try:
        kind, target = engine.parse_key(key)
    except ValueError:
        get_transaction(transaction_id)  # another tenant's transaction: 404 before anything else
        raise LedgerError(_("This suggestion cannot be read: open the transaction again and choose one.")) from None
    if kind == "items":
        return reconcile_items(actor, tenant, transaction_id, target, ip=ip)  # type: ignore[arg-type]
    if kind == "entry":
        return reconcile_entry(actor, tenant, transaction_id, target, ip=ip)
    return reconcile_by_rule(actor, tenant, transaction_id, target, ip=ip)


def undo(actor: User, tenant: Tenant, match_id: object, *, ip: str | None = None) -> BankMatch:
    """Undo a match: its payment entry is reversed (dated as it was, or today when that month is closed) and
    the match marked undone; a match with an entry recorded by hand only stops. Commits, audited."""
    match = get_match(match_id, lock=True)
    if match.state != "active":
        raise LedgerError(_("This match was undone already."))
    entry = match.entry
    match.state, match.undone_at, match.undone_by_id = "undone", utcnow(), actor.id
    db.session.flush()
    if match.kind != "entry" and entry.reversed_by_id is None:
        period = services.period_of(entry.entry_date)
        on = entry.entry_date if period is None or period.state != "closed" else date.today()
        try:
            reversal = services.reverse(actor, tenant, str(entry.id), on, ip=ip)  # commits the mark with it
        except LedgerError:
            db.session.rollback()
            raise
        match = get_match(match_id, lock=True)
        match.reversal_id = reversal.id
    elif match.kind != "entry":
        match.reversal_id = entry.reversed_by_id
    audit.record("ledger.match_undone", audit.Actor.of(actor), tenant_id=tenant.id, object_type="ledger_entry",
                 object_id=entry.id, ip=ip, data={"how": match.kind, "entry": entry.number, "amount": match.amount,
                                                  "reversal": match.reversal.number if match.reversal_id else None})
    db.session.commit()
    return match


# --- rules --------------------------------------------------------------------------------------------------

def get_rule(rule_id: object) -> BankRule:
    rule = db.session.scalar(select(BankRule).where(BankRule.id == _parse(rule_id)))
    if rule is None:
        raise NotFound()
    return rule


@dataclass
class RuleInput:
    """A rule as typed: patterns (either may be empty, not both), in or out, the account and the description."""

    counterparty: str = ""
    reference: str = ""
    direction: str = ""
    account: str = ""
    description: str = ""


def save_rule(actor: User, tenant: Tenant, given: RuleInput, *, ip: str | None = None) -> BankRule:
    """Save a rule for the tenant (``LedgerError`` with every problem at once). Commits, audited."""
    counterparty = " ".join(given.counterparty.split()) or None
    reference = " ".join(given.reference.split()) or None
    description = " ".join(given.description.split())
    errors: dict[str, str] = {}
    if counterparty is None and reference is None:
        errors["counterparty"] = _("Give what the counterparty contains, what the reference contains, or both.")
    for name, value in (("counterparty", counterparty), ("reference", reference)):
        if value is not None and not 2 <= len(value) <= 100:
            errors[name] = _("Between 2 and 100 characters.")
    if given.direction not in ("in", "out"):
        errors["direction"] = _("Choose money in or money out.")
    bank_accounts = {li.account_id for li in links()}
    account = next((a for a in services.postable(services.accounts(active_only=True))
                    if a.code == given.account.strip()), None)
    if account is None:
        errors["account"] = _("Choose an active account that takes postings (not a heading).")
    elif account.id in bank_accounts:
        errors["account"] = _("A rule posts to another account than a bank's own.")
    if not 2 <= len(description) <= 200:
        errors["description"] = _("Say what it is (2 to 200 characters): it is the entries' description.")
    if errors:
        raise LedgerError(_("The rule was not saved: correct the fields marked."), errors)
    rule = BankRule(tenant_id=tenant.id, counterparty=counterparty, reference=reference, direction=given.direction,
                    account_id=account.id, description=description, created_by_id=actor.id)
    db.session.add(rule)
    db.session.flush()
    audit.record("ledger.rule_saved", audit.Actor.of(actor), tenant_id=tenant.id, object_type="ledger_bank_rule",
                 object_id=rule.id, ip=ip, data={"direction": rule.direction, "account": account.code})
    db.session.commit()
    return rule


def delete_rule(actor: User, tenant: Tenant, rule_id: object, *, ip: str | None = None) -> None:
    """Delete a rule; the entries it posted stay (their matches forget it). Commits, audited."""
    rule = get_rule(rule_id)
    code = rule.account.code
    db.session.delete(rule)
    audit.record("ledger.rule_deleted", audit.Actor.of(actor), tenant_id=tenant.id, object_type="ledger_bank_rule",
                 object_id=rule.id, ip=ip, data={"direction": rule.direction, "account": code})
    db.session.commit()


@dataclass(frozen=True)
class RuleHit:
    """An unmatched transaction a rule fits: what applying the rules would post."""

    link: BankLink
    txn: BankTransaction
    rule: BankRule


def rule_hits() -> list[RuleHit]:
    """Every unmatched transaction of the linked accounts that a saved rule fits (the first rule that does)."""
    saved = [(r, as_rule(r)) for r in rules()]
    if not saved:
        return []
    out = []
    for link in links():
        for txn in unmatched(link, limit=None):
            fitting = next((r for r, plain in saved if r.account_id != link.account_id
                            and engine.fits(plain, as_txn(txn))), None)
            if fitting is not None:
                out.append(RuleHit(link, txn, fitting))
    return out


@dataclass(frozen=True)
class Applied:
    posted: list[int]  # the entries' numbers
    refused: list[tuple[RuleHit, str]]  # and why
    gone: int  # previewed, but reconciled since or no rule fits any more


def apply_rules(actor: User, tenant: Tenant, transaction_ids: Sequence[str], *, ip: str | None = None) -> Applied:
    """Post, for each transaction previewed (``transaction_ids``) that a rule still fits, the rule's entry. Each
    commits on its own (``ledger.rule_applied``); one that cannot be posted (a closed month) is said, not fatal."""
    hits = {str(h.txn.id): h for h in rule_hits()}
    posted, refused, gone = [], [], 0
    for tid in dict.fromkeys(transaction_ids):
        hit = hits.get(tid)
        if hit is None:
            gone += 1
            continue
        try:
            done = reconcile_by_rule(actor, tenant, hit.txn.id, hit.rule.id, ip=ip)
        except LedgerError as exc:
            refused.append((hit, str(exc)))
            continue
        if done.created:
            posted.append(done.match.entry.number)
        else:
            gone += 1
    return Applied(posted, refused, gone)


# --- the report ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ReportLine:
    """An item between the statement and the books: a bank transaction not in the books (``transaction_id``)
    or a book entry not on a statement (``entry_id``); ``amount`` signed, money in positive."""

    day: date
    amount: int
    text: str
    transaction_id: uuid.UUID | None = None
    entry_id: uuid.UUID | None = None
    number: int | None = None


@dataclass(frozen=True)
class Report:
    """The statement's balance and the books' on ``on``, and every item between them.

    ``difference`` = statement - books - bank transactions not in the books + book entries not on a statement:
    zero when everything is explained. ``statement_balance`` is None when no statement reaches the day.
    """

    link: BankLink
    on: date
    statement_balance: int | None
    statement_from: date | None  # the statement the balance is read from
    statement_until: date | None
    statement_how: str  # "closing" (its closing balance), "running" (its opening plus its lines), "none"
    book_balance: int
    unbooked: list[ReportLine]
    unpresented: list[ReportLine]
    start: date | None  # the first statement's first day: book entries before it are brought forward
    bank_opening: int | None  # the bank's balance then
    book_opening: int  # the books' balance of the account the day before

    @property
    def unbooked_total(self) -> int:
        return sum(x.amount for x in self.unbooked)

    @property
    def unpresented_total(self) -> int:
        return sum(x.amount for x in self.unpresented)

    @property
    def difference(self) -> int | None:
        if self.statement_balance is None:
            return None
        return self.statement_balance - self.book_balance - self.unbooked_total + self.unpresented_total


def _statements(link: BankLink) -> list[BankStatement]:
    return list(db.session.scalars(_live(select(BankStatement)).where(
        BankStatement.account_key == link.account_key, BankStatement.currency == link.currency)
        .order_by(BankStatement.period_end.nulls_first(), BankStatement.seq)))


def statement_balance(link: BankLink, on: date) -> tuple[int | None, BankStatement | None, str]:
    """The bank's balance on ``on``: within a statement's period, its opening balance plus its lines booked by
    then (or its closing balance less the lines after, or the last running balance printed); after a
    statement, its closing balance. None when no statement reaches the day or none gives a balance."""
    statements = [s for s in _statements(link) if s.period_end is not None]
    covering = [s for s in statements if s.period_start is not None and s.period_start <= on <= s.period_end]
    if covering:
        found = covering[-1]
        lines = db.session.execute(select(BankTransaction.booked_on, BankTransaction.amount, BankTransaction.balance)
                                   .where(BankTransaction.statement_id == found.id)
                                   .order_by(BankTransaction.booked_on, BankTransaction.line_no)).all()
        if found.opening_balance is not None:
            return found.opening_balance + sum(int(a) for d, a, _b in lines if d <= on), found, "running"
        if found.closing_balance is not None:
            return found.closing_balance - sum(int(a) for d, a, _b in lines if d > on), found, "running"
        printed = [int(b) for d, _a, b in lines if d <= on and b is not None]
        return (printed[-1], found, "running") if printed else (None, None, "none")
    before = [s for s in statements if s.period_end < on]
    if before and before[-1].closing_balance is not None:
        return before[-1].closing_balance, before[-1], "closing"
    return None, None, "none"


def book_balance(account_id: uuid.UUID, on: date) -> int:
    """The ledger account's balance on ``on`` (debit - credit of the posted lines dated by then)."""
    return int(db.session.scalar(select(func.coalesce(func.sum(Line.debit - Line.credit), 0))
                                 .join(Entry, Entry.id == Line.entry_id)
                                 .where(Line.account_id == account_id, Entry.state == "posted",
                                        Entry.entry_date <= on)) or 0)


def report(link: BankLink, on: date) -> Report:
    """The reconciliation on ``on``: a match counts when its transaction and its entry are both dated by then
    (and the entry is not reversed by then); an entry and its reversal both dated by then cancel out."""
    statements = _statements(link)
    starts = [s.period_start for s in statements if s.period_start is not None]
    first_booked = db.session.scalar(_transactions_of(link, func.min(BankTransaction.booked_on)))
    start = min(starts + ([first_booked] if first_booked else []), default=None)
    first = min((s for s in statements if s.period_start is not None), key=lambda s: s.period_start, default=None)
    balance, source, how = statement_balance(link, on)

    reversal = aliased(Entry)
    effective: dict[uuid.UUID, uuid.UUID] = {}  # transaction -> entry, for matches that count on ``on``
    for txn_id, entry_id in db.session.execute(
            _transactions_of(link, BankMatch.transaction_id, BankMatch.entry_id)
            .join(BankMatch, BankMatch.transaction_id == BankTransaction.id)
            .join(Entry, Entry.id == BankMatch.entry_id)
            .where(BankMatch.state == "active", BankTransaction.booked_on <= on, Entry.entry_date <= on,
                   ~exists().where(reversal.id == Entry.reversed_by_id, reversal.entry_date <= on))):
        effective[txn_id] = entry_id
    unbooked = [ReportLine(t.booked_on, t.amount, " · ".join(p for p in (t.counterparty_name, t.reference) if p),
                           transaction_id=t.id)
                for t in db.session.scalars(_transactions_of(link, BankTransaction)
                                            .where(BankTransaction.booked_on <= on)
                                            .order_by(BankTransaction.booked_on, BankTransaction.line_no))
                if t.id not in effective]
    net = func.sum(Line.debit - Line.credit)
    rows = db.session.execute(
        select(Entry.id, Entry.number, Entry.entry_date, Entry.reverses_id, Entry.memo, net)
        .join(Line, Line.entry_id == Entry.id)
        .where(Line.account_id == link.account_id, Entry.state == "posted", Entry.entry_date <= on,
               *([Entry.entry_date >= start] if start else []))
        .group_by(Entry.id).having(net != 0).order_by(Entry.entry_date, Entry.number)).all()
    present = {r[0] for r in rows}
    cancelled = {x for r in rows if r[3] in present for x in (r[0], r[3])}
    matched = set(effective.values())
    unpresented = [ReportLine(day, int(amount), memo or "", entry_id=entry_id, number=number)
                   for entry_id, number, day, _reverses, memo, amount in rows
                   if entry_id not in cancelled and entry_id not in matched]
    return Report(link, on, balance, source.period_start if source else None, source.period_end if source else None,
                  how, book_balance(link.account_id, on), unbooked, unpresented, start,
                  first.opening_balance if first is not None else None,
                  book_balance(link.account_id, start - timedelta(days=1)) if start else 0)
