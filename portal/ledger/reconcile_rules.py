"""How a bank transaction is matched: pure functions over plain values, no database (unit-tested alone).

A transaction gets *candidates*, each with a score (0-100) and the reasons staff read:

(a) open invoices of the right kind (money in settles receivables, money out payables):
    - one invoice whose open amount equals the transaction's (``amount``, 50 points);
    - two to four invoices of one counterparty adding up to it (``set``, 40);
    - part of one invoice (``part``, 20), only when the counterparty or the reference points at it;
    and, for each, the reference naming the invoice's number (``reference``, +25), the counterparty's tax
    code (``tax_code``, +25) or name (``name``, +20), and the date: from ``WINDOW_BEFORE`` days before the
    invoice's date to ``WINDOW_AFTER`` days after its due date (``date``, +5; outside it ``late`` or
    ``early``, -25);
(b) an entry already in the books on the bank's ledger account (recorded by hand), not matched yet, with the
    same amount, dated within ``ENTRY_DAYS`` days (``book_entry``, 60; +25 the same day, +15 within 3 days);
(c) a rule staff saved that fits (``rule``, 70).

``suggest_all`` gives each transaction its candidates, best first, and lets a transaction's best claim what
it takes (an invoice's open amount, an entry), so two transactions are not offered the same money.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date

from flask_babel import lazy_gettext as _l

WINDOW_BEFORE = 10  # days before an invoice's date a payment may come (paid in advance)
WINDOW_AFTER = 60  # days after its due date
ENTRY_DAYS = 7  # an entry recorded by hand is looked for this many days either side of the booking
SET_MAX = 4  # invoices in one set paid together
SET_POOL = 16  # a counterparty's oldest open invoices tried in sets (16 choose 4 = 1,820 sums)
CONFIDENT = 50  # the least score offered for one click on the workspace

_TAX_CODE = re.compile(r"\b(\d{10})(?:-\d{3})?\b")
# An invoice number in an entry's memo or line: a run of digits standing alone (not a date's or a symbol's part).
_NUMBER = re.compile(r"(?<![\w/.,:-])(\d{1,8})(?![\w/.,:-])")
_DIGITS = re.compile(r"\d+")
# Words of a company's legal form, in Vietnamese (without marks) and English: they name no one.
_FORM_WORDS = frozenset((
    "cong", "ty", "tnhh", "cp", "co", "phan", "mtv", "mot", "thanh", "vien", "dntn", "doanh", "nghiep", "tu", "nhan",
    "hop", "tac", "xa", "chi", "nhanh", "van", "phong", "dai", "dien", "jsc", "ltd", "llc", "company", "limited",
    "corp", "corporation", "inc", "plc", "the", "and", "va"))


@dataclass(frozen=True)
class Txn:
    """A bank transaction: ``amount`` signed, money in positive, in the minor unit."""

    id: uuid.UUID
    booked_on: date
    amount: int
    counterparty: str | None = None
    account: str | None = None
    reference: str | None = None

    @property
    def kind(self) -> str:
        """The open items it may settle: receivables for money in, payables for money out."""
        return "receivable" if self.amount > 0 else "payable"


@dataclass(frozen=True)
class Item:
    """An open invoice (its receivable or payable line): ``open`` of ``amount`` is left to pay."""

    line_id: uuid.UUID
    number: int  # its entry's number
    entry_date: date
    due_date: date
    open: int
    counterparty: str | None = None
    party_key: bytes | None = None
    texts: tuple[str, ...] = ()  # its entry's memo and line descriptions: where its invoice number is written


@dataclass(frozen=True)
class BookEntry:
    """A posted entry on the bank's ledger account not matched to a transaction yet: ``amount`` is its net on
    that account (debit - credit, so money in is positive, as on the statement)."""

    entry_id: uuid.UUID
    number: int
    entry_date: date
    amount: int


@dataclass(frozen=True)
class Rule:
    """A saved rule: counterparty contains ``counterparty``, reference contains ``reference`` (either may be
    None, not both), ``direction`` in or out, posted to ``account`` with ``description``."""

    id: uuid.UUID
    counterparty: str | None
    reference: str | None
    direction: str
    account: str
    description: str


@dataclass(frozen=True)
class Reason:
    """Why a candidate fits (``code`` for the API and tests, ``text`` for people) and what it adds."""

    code: str
    text: object  # a lazy string, read in the reader's language
    points: int


@dataclass(frozen=True)
class Candidate:
    """A way to book a transaction: invoices settled (``allocations``: item line -> amount), an entry already
    in the books, or a rule. ``key`` names it in a form or the API (``items:<line>=<amount>;...``,
    ``entry:<id>``, ``rule:<id>``)."""

    kind: str  # items | entry | rule
    reasons: tuple[Reason, ...]
    allocations: tuple[tuple[uuid.UUID, int], ...] = ()
    entry_id: uuid.UUID | None = None
    rule_id: uuid.UUID | None = None
    numbers: tuple[int, ...] = ()  # the entries of the invoices (items) or the entry (entry) it names

    @property
    def score(self) -> int:
        return max(0, min(100, sum(r.points for r in self.reasons)))

    @property
    def key(self) -> str:
        if self.kind == "items":
            return "items:" + ";".join(f"{line}={amount}" for line, amount in self.allocations)
        return f"{self.kind}:{self.entry_id if self.kind == 'entry' else self.rule_id}"


@dataclass
class Suggested:
    """A transaction's candidates, best first, and the one offered for one click (None when none is sure)."""

    txn: Txn
    candidates: list[Candidate] = field(default_factory=list)

    @property
    def best(self) -> Candidate | None:
        """The top candidate when it scores at least ``CONFIDENT`` and strictly more than the next one."""
        if not self.candidates or self.candidates[0].score < CONFIDENT:
            return None
        if len(self.candidates) > 1 and self.candidates[1].score == self.candidates[0].score:
            return None  # two fit as well as each other: staff choose
        return self.candidates[0]


# --- text ---------------------------------------------------------------------------------------------------

def fold(text: str | None) -> str:
    """Lower case, without Vietnamese marks, words separated by single spaces ("Công ty Đông Á" -> "cong ty
    dong a"): bank files often drop the marks, invoices keep them."""
    if not text:
        return ""
    text = text.replace("đ", "d").replace("Đ", "D")
    plain = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^0-9a-z]+", " ", plain.casefold()).split())


def name_words(text: str | None) -> set[str]:
    """The words that name a counterparty: folded, without its legal form and without tax codes."""
    return {w for w in fold(text).split() if w not in _FORM_WORDS and not (w.isdigit() and len(w) >= 10)}


def tax_code_of(text: str | None) -> str | None:
    """The 10-digit tax code written in ``text`` (a branch's suffix dropped), or None."""
    found = _TAX_CODE.search(text or "")
    return found.group(1) if found else None


def invoice_numbers(texts: Iterable[str | None]) -> set[str]:
    """The invoice numbers an entry's texts name: digits standing alone, leading zeros dropped ("HĐ 0000123"
    -> "123"); a date's parts and a symbol's digits ("1C25TAA") are not numbers."""
    out = set()
    for text in texts:
        for found in _NUMBER.findall(text or ""):
            number = found.lstrip("0")
            if number:
                out.add(number)
    return out


def _reference_numbers(txn: Txn) -> set[str]:
    return {d.lstrip("0") for d in _DIGITS.findall(txn.reference or "") if d.strip("0")}


def _party_reasons(txn: Txn, counterparty: str | None) -> list[Reason]:
    """The counterparty's tax code in the transaction, else its name in the transaction's counterparty."""
    code = tax_code_of(counterparty)
    said = " ".join(p for p in (txn.counterparty, txn.account, txn.reference) if p)
    if code and code in _DIGITS.findall(said):
        return [Reason("tax_code", _l("The transaction names the counterparty's tax code %(code)s.", code=code), 25)]
    wanted, seen = name_words(counterparty), name_words(txn.counterparty) | name_words(txn.reference)
    if wanted and len(wanted & seen) * 3 >= len(wanted) * 2:
        return [Reason("name", _l("The counterparty's name matches (%(name)s).", name=counterparty), 20)]
    return []


def _date_reason(txn: Txn, first: date, due: date) -> Reason:
    if (first - txn.booked_on).days > WINDOW_BEFORE:
        return Reason("early", _l("Paid %(days)d days before the invoice's date: more than the %(window)d days "
                                  "expected.", days=(first - txn.booked_on).days, window=WINDOW_BEFORE), -25)
    late = (txn.booked_on - due).days
    if late > WINDOW_AFTER:
        return Reason("late", _l("Paid %(days)d days after the due date: more than the %(window)d days expected.",
                                 days=late, window=WINDOW_AFTER), -25)
    if late > 0:
        text = _l("Paid %(days)d days after the due date (within %(window)d days).", days=late, window=WINDOW_AFTER)
    else:
        text = _l("Paid by the due date (%(before)d days before the invoice's date to %(after)d days after its due "
                  "date is expected).", before=WINDOW_BEFORE, after=WINDOW_AFTER)
    return Reason("date", text, 5)


# --- candidates ---------------------------------------------------------------------------------------------

def _items_candidate(txn: Txn, chosen: Sequence[Item], amounts: Sequence[int], base: Reason) -> Candidate:
    reasons = [base]
    wanted = set().union(*(invoice_numbers(i.texts) for i in chosen))
    mentioned = wanted & _reference_numbers(txn)
    if mentioned:
        numbers = ", ".join(sorted(mentioned, key=lambda n: (len(n), n)))
        reasons.append(Reason("reference", _l("The reference names invoice number %(numbers)s.", numbers=numbers)
                              if len(mentioned) == 1 else
                              _l("The reference names invoice numbers %(numbers)s.", numbers=numbers), 25))
    reasons += _party_reasons(txn, chosen[0].counterparty)
    reasons.append(_date_reason(txn, min(i.entry_date for i in chosen), max(i.due_date for i in chosen)))
    return Candidate("items", tuple(reasons), tuple((i.line_id, a) for i, a in zip(chosen, amounts, strict=True)),
                     numbers=tuple(i.number for i in chosen))


def item_candidates(txn: Txn, items: Sequence[Item]) -> list[Candidate]:
    """Open invoices (of the transaction's kind, as the caller chose them) that the transaction may settle."""
    paid = abs(txn.amount)
    out: list[Candidate] = []
    for item in items:
        if item.open == paid:
            out.append(_items_candidate(txn, [item], [paid], Reason(
                "amount", _l("The amount equals what is open on entry %(number)d.", number=item.number), 50)))
        elif 0 < paid < item.open:
            candidate = _items_candidate(txn, [item], [paid], Reason(
                "part", _l("Pays part of entry %(number)d (what is open stays open).", number=item.number), 20))
            if any(r.code in ("reference", "tax_code", "name") for r in candidate.reasons):
                out.append(candidate)  # a part payment only when something but the amount points at it
    by_party: dict[bytes, list[Item]] = {}
    for item in items:
        if item.party_key is not None and 0 < item.open < paid:
            by_party.setdefault(item.party_key, []).append(item)
    for group in by_party.values():
        pool = sorted(group, key=lambda i: (i.due_date, i.number))[:SET_POOL]
        if len(pool) < 2 or sum(i.open for i in pool) < paid:
            continue
        for chosen in sets_adding_up(pool, paid):
            out.append(_items_candidate(txn, chosen, [i.open for i in chosen], Reason(
                "set", _l("%(count)d invoices of one counterparty add up to the amount.", count=len(chosen)), 40)))
    return out


def sets_adding_up(pool: Sequence[Item], total: int, limit: int = 10) -> list[tuple[Item, ...]]:
    """Sets of 2 to ``SET_MAX`` (4) items of ``pool`` whose open amounts add up to ``total``, fewest items first;
    at most ``limit``. Pairs' sums are indexed once, so a set of three or four is a look-up, not a search."""
    opens = [i.open for i in pool]
    pairs: dict[int, list[tuple[int, int]]] = {}
    for a, b in itertools.combinations(range(len(pool)), 2):
        pairs.setdefault(opens[a] + opens[b], []).append((a, b))
    found: set[tuple[int, ...]] = set(pairs.get(total, []))
    for c in range(len(pool)):
        found |= {tuple(sorted((a, b, c))) for a, b in pairs.get(total - opens[c], []) if c not in (a, b)}
    if SET_MAX >= 4:
        for first_sum, firsts in pairs.items():
            for a, b in firsts:
                found |= {tuple(sorted((a, b, c, d))) for c, d in pairs.get(total - first_sum, [])
                          if len({a, b, c, d}) == 4}
            if len(found) > limit * 4:
                break
    return [tuple(pool[i] for i in chosen) for chosen in sorted(found, key=lambda s: (len(s), s))[:limit]]


def entry_candidates(txn: Txn, entries: Sequence[BookEntry]) -> list[Candidate]:
    """Entries already on the bank's ledger account with the same amount, dated within ``ENTRY_DAYS`` days."""
    out = []
    for entry in entries:
        days = abs((entry.entry_date - txn.booked_on).days)
        if entry.amount != txn.amount or days > ENTRY_DAYS:
            continue
        reasons = [Reason("book_entry", _l("Entry %(number)d is already in the books on the bank's account with this "
                                           "amount.", number=entry.number), 60)]
        if days == 0:
            reasons.append(Reason("date", _l("Dated the same day."), 25))
        elif days <= 3:
            reasons.append(Reason("date", _l("Dated %(days)d days apart.", days=days), 15))
        else:
            reasons.append(Reason("date", _l("Dated %(days)d days apart.", days=days), 0))
        out.append(Candidate("entry", tuple(reasons), entry_id=entry.entry_id, numbers=(entry.number,)))
    return out


def fits(rule: Rule, txn: Txn) -> bool:
    """The rule fits the transaction: its direction, and each pattern it has within the counterparty (name or
    account) or the reference, marks and case aside."""
    if (rule.direction == "in") != (txn.amount > 0):
        return False
    if rule.counterparty and fold(rule.counterparty) not in fold(f"{txn.counterparty or ''} {txn.account or ''}"):
        return False
    return not (rule.reference and fold(rule.reference) not in fold(txn.reference))


def rule_candidates(txn: Txn, rules: Sequence[Rule]) -> list[Candidate]:
    return [Candidate("rule", (Reason("rule", _l("A saved rule fits: %(description)s → %(account)s.",
                                                 description=rule.description, account=rule.account), 70),),
                      rule_id=rule.id) for rule in rules if fits(rule, txn)]


def candidates(txn: Txn, items: Sequence[Item], entries: Sequence[BookEntry], rules: Sequence[Rule]) -> list[Candidate]:
    """Every candidate for ``txn``, best first (by score, then fewer invoices, then the oldest)."""
    found = item_candidates(txn, items) + entry_candidates(txn, entries) + rule_candidates(txn, rules)
    return sorted(found, key=lambda c: (-c.score, len(c.allocations), c.numbers))


def suggest_all(txns: Sequence[Txn], items: dict[str, list[Item]], entries: Sequence[BookEntry],
                rules: Sequence[Rule]) -> list[Suggested]:
    """Candidates for each transaction (in booking order); what one's best takes (an invoice's open amount, an
    entry) is not offered to the ones after it. ``items`` by kind (receivable, payable)."""
    left: dict[uuid.UUID, int] = {i.line_id: i.open for kind in items.values() for i in kind}
    taken: set[uuid.UUID] = set()
    out = []
    for txn in sorted(txns, key=lambda t: (t.booked_on, str(t.id))):
        open_now = [Item(i.line_id, i.number, i.entry_date, i.due_date, left[i.line_id], i.counterparty, i.party_key,
                         i.texts) for i in items.get(txn.kind, []) if left[i.line_id] > 0]
        suggested = Suggested(txn, candidates(txn, open_now, [e for e in entries if e.entry_id not in taken], rules))
        best = suggested.best
        if best is not None:
            for line_id, amount in best.allocations:
                left[line_id] -= amount
            if best.entry_id is not None:
                taken.add(best.entry_id)
        out.append(suggested)
    return out


def parse_key(key: str) -> tuple[str, object]:
    """A candidate's ``key`` read back: ("items", {line: amount}), ("entry", id) or ("rule", id); ValueError
    when it is not one."""
    kind, _sep, rest = (key or "").partition(":")
    if kind in ("entry", "rule"):
        return kind, uuid.UUID(rest)
    if kind == "items":
        allocations: dict[uuid.UUID, int] = {}
        for part in rest.split(";"):
            line, _eq, amount = part.partition("=")
            line_id, value = uuid.UUID(line), int(amount)
            if value <= 0 or line_id in allocations:
                raise ValueError(key)
            allocations[line_id] = value
        if not allocations or len(allocations) > 50:
            raise ValueError(key)
        return kind, allocations
    raise ValueError(key)
