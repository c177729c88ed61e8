"""Open receivables and payables: invoices settled by payments in parts or several at once, their ageing, and the
database's refusal of a settlement that does not fit. Figures are worked out here from the entries posted."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from portal.extensions import db
from portal.ledger import open_items, reports, services
from portal.ledger.models import Entry, Settlement
from portal.ledger.parties import party_key
from portal.ledger.services import LedgerError, LineInput
from tenants.models import Tenant, User
from tests.ledger.test_ledger import as_person, books

TODAY = date(2026, 11, 30)
ALPHA, BETA = "Công ty Alpha (0101234567)", "Beta Trading (0312345678)"


def sale(world, amount: int, day: date, due: date | None, customer: str) -> Entry:  # noqa: ANN001
    """A sales invoice: Dr 131 (the customer), Cr 5111; no VAT, to keep the arithmetic in plain sight."""
    user, tenant = db.session.get(User, world.staff.id), db.session.get(Tenant, world.id)
    return services.save_draft(user, tenant, day, [LineInput("131", amount, 0, "sale", customer),
                                                   LineInput("5111", 0, amount, "sale")],
                               due_date=due, post_it=True)


def receipt(world, amount: int, day: date, customer: str) -> Entry:  # noqa: ANN001
    """Money in from a customer: Dr 1121, Cr 131 (the customer)."""
    user, tenant = db.session.get(User, world.staff.id), db.session.get(Tenant, world.id)
    return services.save_draft(user, tenant, day, [LineInput("1121", amount, 0, "receipt"),
                                                   LineInput("131", 0, amount, "receipt", customer)], post_it=True)


def line_on(entry: Entry, code: str):  # noqa: ANN201
    return next(line for line in entry.lines if line.account.code == code)


def test_one_payment_settles_three_invoices_and_two_payments_settle_one(app):
    world = books(app)
    with app.app_context(), as_person(world, world.staff) as (user, tenant):
        a1, a2, a3 = (sale(world, amount, date(2026, 10, d), None, ALPHA)
                      for amount, d in ((1_000_000, 1), (2_500_000, 2), (700_000, 3)))
        big = sale(world, 9_000_000, date(2026, 10, 5), None, BETA)
        paid_all = receipt(world, 4_200_000, date(2026, 10, 20), ALPHA)
        open_items.settle(user, tenant, line_on(paid_all, "131").id,
                          {line_on(a1, "131").id: 1_000_000, line_on(a2, "131").id: 2_500_000,
                           line_on(a3, "131").id: 700_000})
        first, second = receipt(world, 4_000_000, date(2026, 10, 25), BETA), \
            receipt(world, 5_000_000, date(2026, 11, 10), BETA)
        open_items.settle(user, tenant, line_on(first, "131").id, {line_on(big, "131").id: 4_000_000})

        # Between the two payments to Beta, 5,000,000 of its invoice is open; Alpha owes nothing.
        left = open_items.items(tenant, "receivable", date(2026, 11, 1))
        assert [(i.number, i.open) for i in left] == [(big.number, 5_000_000)]
        open_items.settle(user, tenant, line_on(second, "131").id, {line_on(big, "131").id: 5_000_000})
        assert open_items.items(tenant, "receivable", TODAY) == []
        assert open_items.items(tenant, "receivable", TODAY, payments=True) == []
        # "As of" a day before the second payment: the settlement it made does not count yet.
        assert [i.open for i in open_items.items(tenant, "receivable", date(2026, 11, 9))] == [5_000_000]


def test_ageing_buckets_by_days_past_due_and_adds_up_to_the_receivable_balance(app):
    world = books(app)
    with app.app_context(), as_person(world, world.staff) as (user, tenant):
        due_in = {  # invoice amount → days past due on TODAY (negative: not due yet)
            1_100_000: -5, 2_200_000: 0, 3_300_000: 1, 4_400_000: 30, 5_500_000: 31, 6_600_000: 61, 7_700_000: 91}
        for n, (amount, late) in enumerate(due_in.items()):
            due = TODAY - timedelta(days=late)
            sale(world, amount, min(due, TODAY) - timedelta(days=10), due, BETA if n % 2 else ALPHA)
        unapplied = receipt(world, 300_000, TODAY, BETA)  # Beta paid something not yet matched to an invoice
        rows, total = open_items.ageing(tenant, "receivable", TODAY)

        expected = {"current": 1_100_000 + 2_200_000, "1-30": 3_300_000 + 4_400_000, "31-60": 5_500_000,
                    "61-90": 6_600_000, "over_90": 7_700_000}
        assert total.buckets == expected
        assert total.unapplied == 300_000
        assert total.total == sum(due_in) - 300_000 == open_items.balance(tenant, "receivable", TODAY)
        sheet, _result = reports.balance_sheet(TODAY)
        assert {r.code: r.balance for r in sheet.rows["asset"]}["131"] == total.total
        by_name = {r.counterparty: r for r in rows}
        assert by_name[ALPHA].total == 1_100_000 + 3_300_000 + 5_500_000 + 7_700_000
        assert by_name[BETA].total == 2_200_000 + 4_400_000 + 6_600_000 - 300_000
        assert by_name[BETA].unapplied == 300_000
        assert [r.counterparty for r in rows] == [ALPHA, BETA]  # who owes most first
        assert line_on(unapplied, "131").party_key == party_key(tenant.id, "0312345678")  # found by the tax code


def test_a_reversed_invoice_or_payment_stops_counting_on_the_reversals_date(app):
    world = books(app)
    with app.app_context(), as_person(world, world.staff) as (user, tenant):
        invoice = sale(world, 2_000_000, date(2026, 10, 1), None, ALPHA)
        payment = receipt(world, 2_000_000, date(2026, 10, 15), ALPHA)
        open_items.settle(user, tenant, line_on(payment, "131").id, {line_on(invoice, "131").id: 2_000_000})
        services.reverse(user, tenant, str(payment.id), date(2026, 11, 2))  # the payment bounced
        assert open_items.items(tenant, "receivable", date(2026, 11, 1)) == []
        assert [i.open for i in open_items.items(tenant, "receivable", date(2026, 11, 2))] == [2_000_000]
        assert open_items.ageing(tenant, "receivable", TODAY)[1].total == \
            open_items.balance(tenant, "receivable", TODAY) == 2_000_000


def test_a_settlement_that_does_not_fit_is_refused_by_the_service_and_the_database(app):
    world = books(app)
    with app.app_context(), as_person(world, world.staff) as (user, tenant):
        invoice = sale(world, 1_000_000, date(2026, 10, 1), None, ALPHA)
        payment = receipt(world, 600_000, date(2026, 10, 2), ALPHA)
        item, paid = line_on(invoice, "131").id, line_on(payment, "131").id
        with pytest.raises(LedgerError) as refused:
            open_items.settle(user, tenant, paid, {item: 700_000})  # more than the payment holds
        assert "total" in refused.value.errors
        with pytest.raises(LedgerError):
            open_items.settle(user, tenant, line_on(invoice, "5111").id, {item: 100_000})  # revenue settles nothing
        open_items.settle(user, tenant, paid, {item: 600_000})
        assert [i.open for i in open_items.items(tenant, "receivable", TODAY)] == [400_000]

        # Bypassing the service: the database refuses more than the item holds, and any change to a settlement.
        second = receipt(world, 900_000, date(2026, 10, 3), ALPHA)
        db.session.add(Settlement(tenant_id=tenant.id, item_line_id=item, settling_line_id=line_on(second, "131").id,
                                  amount=500_000))
        with pytest.raises(DBAPIError, match="may not exceed"):
            db.session.commit()
        db.session.rollback()
        with pytest.raises(DBAPIError, match="never changes"):
            db.session.execute(text("update ledger_settlements set amount = 1"))
        db.session.rollback()


def test_the_due_date_comes_from_the_entry_and_cannot_precede_it(app):
    world = books(app)
    with app.app_context(), as_person(world, world.staff) as (user, tenant):
        with pytest.raises(LedgerError) as refused:
            sale(world, 1_000_000, date(2026, 10, 10), date(2026, 10, 1), ALPHA)
        assert "due_date" in refused.value.errors
        invoice = sale(world, 1_000_000, date(2026, 10, 10), date(2026, 11, 9), ALPHA)
        [item] = open_items.items(tenant, "receivable", TODAY)
        assert (item.due_date, item.days_overdue, item.bucket) == (date(2026, 11, 9), 21, "1-30")
        with pytest.raises(DBAPIError, match="never changes"):  # a posted entry's due date is frozen with it
            db.session.execute(text("update ledger_entries set due_date = '2027-01-01' where id = :id"),
                               {"id": invoice.id})
        db.session.rollback()
