"""The matching engine alone (``portal.ledger.reconcile_rules``): plain values in, candidates out, no database.

Scores are worked out here from the rules in the engine's docstring (amount 50, set 40, part 20, reference
+25, tax code +25, name +20, date +5 or -25, entry in the books 60 and +25 the same day, rule 70)."""

from __future__ import annotations

import uuid
from datetime import date

import pytest

from portal.ledger import reconcile_rules as engine
from portal.ledger.reconcile_rules import BookEntry, Item, Rule, Txn

HOA_SEN = "Công ty TNHH Hoa Sen (0101234567)"
KEY_HOA_SEN, KEY_OTHER = b"hoa-sen", b"other"


def item(number: int, open_: int, *, party: str | None = HOA_SEN, key: bytes | None = KEY_HOA_SEN,
         day: date = date(2026, 11, 2), due: date = date(2026, 11, 30), memo: str = "") -> Item:
    return Item(uuid.uuid4(), number, day, due, open_, party, key, (memo,) if memo else ())


def txn(amount: int, *, day: date = date(2026, 11, 20), who: str | None = None, ref: str | None = None) -> Txn:
    return Txn(uuid.uuid4(), day, amount, who, None, ref)


def codes(candidate: engine.Candidate) -> list[str]:
    return [r.code for r in candidate.reasons]


def test_text_is_folded_without_marks_and_legal_forms():
    assert engine.fold("Công ty TNHH Đông Á – chi nhánh HN") == "cong ty tnhh dong a chi nhanh hn"
    assert engine.name_words("CÔNG TY CỔ PHẦN Sao Mai (0309876543)") == {"sao", "mai"}
    assert engine.tax_code_of("Hoa Sen, MST 0101234567-001") == "0101234567"
    # An invoice number stands alone; a symbol's digits, a date's parts and a tax code are no numbers.
    assert engine.invoice_numbers(["Bán hàng: 1C26TAA 0000101 · 05/11/2026 · Hoa Sen", "HĐ 42"]) == {"101", "42"}


def test_one_invoice_with_the_amount_the_reference_and_the_name_scores_a_hundred():
    invoice = item(7, 12_000_000, memo="Mua hàng: 1K26TSM 0000555 · Sao Mai", party="CÔNG TY CP PHẦN MỀM SAO MAI")
    paid = txn(-12_000_000, day=date(2026, 11, 28), who="CTY CP PHAN MEM SAO MAI", ref="Thanh toan dot 2 HD 555")
    [best] = engine.candidates(paid, [invoice], [], [])
    assert best.kind == "items" and best.allocations == ((invoice.line_id, 12_000_000),)
    assert codes(best) == ["amount", "reference", "name", "date"]
    assert best.score == min(100, 50 + 25 + 20 + 5)
    assert best.key == f"items:{invoice.line_id}=12000000"
    assert engine.parse_key(best.key) == ("items", {invoice.line_id: 12_000_000})


def test_three_invoices_of_one_customer_adding_up_are_one_candidate_and_another_customers_are_not_mixed_in():
    s1, s2, s3 = (item(n, v, memo=f"Bán hàng: 1C26TAA {n:07d}") for n, v in ((101, 11_000_000), (102, 5_500_000),
                                                                           (103, 3_300_000)))
    stranger = item(104, 8_800_000, party="Khách lẻ", key=KEY_OTHER)  # 11.0 + 8.8 = 19.8 too, but another customer
    paid = txn(19_800_000, who="CONG TY TNHH HOA SEN", ref="TT HD 101 102 103")
    found = engine.candidates(paid, [s1, s2, s3, stranger], [], [])
    assert [c.kind for c in found] == ["items"]
    [best] = found
    assert sorted(best.allocations) == sorted([(s1.line_id, 11_000_000), (s2.line_id, 5_500_000),
                                               (s3.line_id, 3_300_000)])
    assert codes(best) == ["set", "reference", "name", "date"] and best.score == 40 + 25 + 20 + 5


def test_a_part_payment_needs_more_than_the_amount_to_point_at_the_invoice():
    invoice = item(9, 22_000_000, party="Công ty CP Phần mềm Sao Mai (0309876543)", key=b"sao-mai")
    assert engine.candidates(txn(-10_000_000, who="NGUYEN VAN B"), [invoice], [], []) == []
    [part] = engine.candidates(txn(-10_000_000, ref="Thanh toan MST 0309876543"), [invoice], [], [])
    assert part.allocations == ((invoice.line_id, 10_000_000),)
    assert codes(part) == ["part", "tax_code", "date"] and part.score == 20 + 25 + 5


def test_the_date_window_runs_from_ten_days_before_the_invoice_to_sixty_after_its_due_date():
    invoice = item(3, 1_000_000, day=date(2026, 11, 2), due=date(2026, 11, 30))
    on_time = engine.candidates(txn(1_000_000, day=date(2026, 10, 23)), [invoice], [], [])[0]
    late = engine.candidates(txn(1_000_000, day=date(2027, 1, 30)), [invoice], [], [])[0]
    early = engine.candidates(txn(1_000_000, day=date(2026, 10, 22)), [invoice], [], [])[0]
    assert (codes(on_time)[-1], on_time.score) == ("date", 55)
    assert (codes(late)[-1], late.score) == ("late", 25)  # 61 days after the due date
    assert (codes(early)[-1], early.score) == ("early", 25)  # 11 days before the invoice


def test_an_entry_already_in_the_books_and_a_rule_are_candidates_too():
    cash = BookEntry(uuid.uuid4(), 12, date(2026, 11, 12), -5_000_000)
    elsewhere = BookEntry(uuid.uuid4(), 13, date(2026, 11, 1), -5_000_000)  # 11 days away: not offered
    fee = Rule(uuid.uuid4(), None, "phi dich vu", "out", "6422", "Phí ngân hàng")
    interest = Rule(uuid.uuid4(), None, "phi dich vu", "in", "515", "Lãi")  # money in only
    found = engine.candidates(txn(-5_000_000, day=date(2026, 11, 12), ref="Phí dịch vụ rút tiền"), [],
                              [cash, elsewhere], [fee, interest])
    assert [(c.kind, c.score) for c in found] == [("entry", 85), ("rule", 70)]
    assert found[0].key == f"entry:{cash.entry_id}" and found[1].key == f"rule:{fee.id}"
    assert engine.fits(Rule(uuid.uuid4(), "vietcombank", None, "out", "6422", "x"),
                       Txn(uuid.uuid4(), date(2026, 11, 1), -1, "NGAN HANG VIETCOMBANK", None, None))


def test_the_best_is_offered_only_when_sure_and_what_it_takes_is_not_offered_again():
    first, second = item(1, 5_000_000, party=None, key=None), item(2, 5_000_000, party=None, key=None)
    both = engine.suggest_all([txn(5_000_000, day=date(2026, 11, 3)), txn(5_000_000, day=date(2026, 11, 4))],
                              {"receivable": [first, second]}, [], [])
    assert [s.best for s in both] == [None, None]  # two invoices fit as well as each other: staff choose

    named = item(3, 5_000_000, memo="HĐ 0000003")
    early, later = txn(5_000_000, day=date(2026, 11, 3), ref="TT HD 3"), txn(5_000_000, day=date(2026, 11, 4))
    out = engine.suggest_all([later, early], {"receivable": [named]}, [], [])
    assert [s.txn for s in out] == [early, later]  # booking order
    assert out[0].best.allocations == ((named.line_id, 5_000_000),)
    assert out[1].candidates == []  # the invoice is taken by the earlier payment


def test_sets_of_up_to_four_are_found_by_their_sums():
    pool = [item(n, v) for n, v in enumerate((1, 2, 4, 8, 16, 32), start=1)]
    assert [tuple(i.open for i in s) for s in engine.sets_adding_up(pool, 3)] == [(1, 2)]
    assert [tuple(i.open for i in s) for s in engine.sets_adding_up(pool, 7)] == [(1, 2, 4)]
    assert [tuple(i.open for i in s) for s in engine.sets_adding_up(pool, 60)] == [(4, 8, 16, 32)]
    assert engine.sets_adding_up(pool, 63) == []  # five of them: more than four


# Fixed ids, not uuid4(): parallel workers (pytest-xdist) must collect the same test names.
_SOME_ITEM = "7f9c1e52-3b1a-4c55-9d0e-2a6b8f4c1d90"


@pytest.mark.parametrize("key", ["", "items:", "items:not-a-uuid=5", f"items:{_SOME_ITEM}=0",
                                 f"items:{_SOME_ITEM}=x", "entry:42", "other:1"])
def test_a_key_that_is_not_a_candidates_is_refused(key):
    with pytest.raises(ValueError):
        engine.parse_key(key)
