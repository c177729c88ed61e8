"""The ledger's rules, held by the service and by the database behind it (real PostgreSQL).

Expected figures are worked out here from the entries posted, never read back from the tables under test.
"""

from __future__ import annotations

from datetime import date
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from portal.extensions import db
from portal.ledger import reports, services
from portal.ledger.models import Account, Book, Entry, Line
from portal.ledger.services import LedgerError, LineInput
from tenants.audit import AuditEvent
from tenants.lifecycle import assign
from tenants.models import Tenant, User
from tenants.policy import Role
from tests.factories import as_person, csrf_token, login, make_person, make_tenant

DAY = date(2026, 11, 5)


def books(app, chart: str = "vn_tt133") -> SimpleNamespace:
    """A tenant with its books on, the provider's admin and a staff member assigned to it, and its client admin."""
    with app.app_context():
        tenant = make_tenant()
        admin = make_person(Role.PROVIDER_ADMIN)
        staff = make_person(Role.STAFF)
        client = make_person(Role.CLIENT_ADMIN, tenant)
        assign(db.session.get(User, admin.id), db.session.get(Tenant, tenant.id), db.session.get(User, staff.id))
        db.session.commit()
        world = SimpleNamespace(id=tenant.id, slug=tenant.slug, admin=admin, staff=staff, client=client)
        with as_person(world, admin) as (user, t):
            services.start_books(user, t, chart)
        return world


def post(world, person, lines: list[tuple[str, int, int]], day: date = DAY) -> Entry:  # noqa: ANN001
    """Post an entry of (account, debit, credit) lines through the service."""
    user, tenant = db.session.get(User, person.id), db.session.get(Tenant, world.id)
    draft = services.save_draft(user, tenant, day, [LineInput(a, d, c) for a, d, c in lines], memo="test")
    return services.post(user, tenant, str(draft.id))


SALE = [("131", 11_000_000, 0), ("5111", 0, 10_000_000), ("33311", 0, 1_000_000)]
PURCHASE = [("6422", 2_000_000, 0), ("1331", 200_000, 0), ("331", 0, 2_200_000)]


def test_bookkeeping_starts_from_its_chart_and_posts_numbered_entries_that_add_up(app):
    world = books(app)
    with app.app_context(), as_person(world, world.staff) as (user, tenant):
        codes = {a.code for a in services.accounts()}
        assert {"111", "1111", "131", "331", "1331", "33311", "5111", "6422", "911"} <= codes
        first, second = post(world, world.staff, SALE), post(world, world.staff, PURCHASE)
        assert (first.number, second.number) == (1, 2)
        rows = {r.code: (r.debit, r.credit) for r in reports.trial_balance(DAY)}
        assert rows == {"131": (11_000_000, 0), "5111": (0, 10_000_000), "33311": (0, 1_000_000),
                        "6422": (2_000_000, 0), "1331": (200_000, 0), "331": (0, 2_200_000)}
        assert sum(d for d, _c in rows.values()) == sum(c for _d, c in rows.values()) == 13_200_000
        actions = list(db.session.scalars(select(AuditEvent.action).where(AuditEvent.action.like("ledger.%"))))
        assert actions.count("ledger.posted") == 2 and "ledger.started" in actions
        with pytest.raises(LedgerError, match="already on"):
            services.start_books(user, tenant, "vn_tt133")


def test_an_unbalanced_entry_is_refused_by_the_service_and_by_the_database_behind_it(app):
    world = books(app)
    with app.app_context(), as_person(world, world.staff) as (user, tenant):
        draft = services.save_draft(user, tenant, DAY, [LineInput("131", 1_000, 0), LineInput("5111", 0, 900)])
        with pytest.raises(LedgerError, match="does not balance"):
            services.post(user, tenant, str(draft.id))
        with pytest.raises(LedgerError, match="at least two lines"):
            services.post(user, tenant, str(services.save_draft(user, tenant, DAY, [LineInput("131", 5, 0)]).id))
        # A code path that skips the service: the deferred trigger refuses at commit.
        accounts = {a.code: a.id for a in services.accounts()}
        entry = Entry(tenant_id=tenant.id, entry_date=DAY, state="posted", number=99, posted_at=DAY, source="manual")
        entry.lines = [Line(tenant_id=tenant.id, line_no=1, account_id=accounts["131"], debit=1_000, credit=0),
                       Line(tenant_id=tenant.id, line_no=2, account_id=accounts["5111"], debit=0, credit=999)]
        db.session.add(entry)
        db.session.flush()  # deferred: nothing yet
        with pytest.raises(DBAPIError, match="not balanced"):
            db.session.commit()
        db.session.rollback()


def test_a_posted_entry_never_changes_and_is_corrected_by_its_reversal(app):
    world = books(app)
    with app.app_context(), as_person(world, world.staff) as (user, tenant):
        entry = post(world, world.staff, SALE)
        with pytest.raises(LedgerError, match="never changes"):
            services.save_draft(user, tenant, DAY, [LineInput("131", 1, 0)], entry_id=str(entry.id))
        for statement in ("update ledger_lines set debit = debit + 1 where entry_id = :e and debit > 0",
                          "delete from ledger_lines where entry_id = :e",
                          "delete from ledger_entries where id = :e",
                          "update ledger_entries set entry_date = entry_date + 1 where id = :e"):
            with pytest.raises(DBAPIError, match="posted"):
                db.session.execute(text(statement), {"e": entry.id})
            db.session.rollback()
        reversal = services.reverse(user, tenant, str(entry.id), date(2026, 11, 30))
        assert reversal.number == 2 and reversal.reverses_id == entry.id
        assert services.get_entry(entry.id).reversed_by_id == reversal.id
        assert all(r.debit == r.credit for r in reports.trial_balance(date(2026, 11, 30)))  # each account nets to 0
        with pytest.raises(LedgerError, match="reversed already"):
            services.reverse(user, tenant, str(entry.id), date(2026, 11, 30))


def test_a_closed_month_takes_nothing_until_the_providers_admin_reopens_it_with_a_reason(app):
    world = books(app)
    with app.app_context(), as_person(world, world.staff) as (user, tenant):
        post(world, world.staff, SALE)
        services.close_month(user, tenant, DAY)
        with pytest.raises(LedgerError, match="is closed"):
            post(world, world.staff, PURCHASE)
        db.session.rollback()
        draft = services.save_draft(user, tenant, DAY, [LineInput(a, d, c) for a, d, c in PURCHASE])
        with pytest.raises(DBAPIError, match="closed"):  # the database refuses it too
            db.session.execute(text("update ledger_entries set state = 'posted', number = 50, posted_at = now() "
                                    "where id = :e"), {"e": draft.id})
        db.session.rollback()
    with app.app_context(), as_person(world, world.admin) as (admin, tenant):
        with pytest.raises(LedgerError, match="Say why"):
            services.reopen_month(admin, tenant, DAY, "")
        services.reopen_month(admin, tenant, DAY, "Supplier invoice arrived late")
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "ledger.month_reopened"))
        assert event.details["reason"] == "Supplier invoice arrived late"
    with app.app_context(), as_person(world, world.staff):
        assert post(world, world.staff, PURCHASE).number == 2


def test_accounts_take_sub_accounts_and_an_account_with_postings_is_never_deleted(app):
    world = books(app)
    with app.app_context(), as_person(world, world.staff) as (user, tenant):
        services.add_account(user, tenant, "6422", "64221", "Chi phí văn phòng phẩm", "Stationery")
        with pytest.raises(LedgerError) as refused:
            services.add_account(user, tenant, "6422", "7000", "", "")
        assert set(refused.value.errors) == {"code", "name_vi"}  # every error at once
        with pytest.raises(LedgerError, match="correct the lines"):  # 6422 is a heading now
            services.save_draft(user, tenant, DAY, [LineInput("6422", 5, 0), LineInput("331", 0, 5)])
        post(world, world.staff, [("64221", 500_000, 0), ("331", 0, 500_000)])
        with pytest.raises(LedgerError, match="has postings"):
            services.delete_account(user, tenant, "64221")
        services.set_account_active(user, tenant, "64221", False)
        with pytest.raises(LedgerError, match="correct the lines"):
            services.save_draft(user, tenant, DAY, [LineInput("64221", 5, 0), LineInput("331", 0, 5)])
        assert db.session.scalar(select(Account.active).where(Account.code == "64221")) is False


# (account, side) moves that keep the books valid: what a sale, a purchase, a payment and a salary do.
MOVES = [[("131", "d"), ("5111", "c")], [("6422", "d"), ("331", "c")], [("1121", "d"), ("131", "c")],
         [("331", "d"), ("1121", "c")], [("1111", "d"), ("4111", "c")], [("632", "d"), ("156", "c")]]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(range(len(MOVES))), st.integers(1, 10**12), st.booleans()),
                min_size=1, max_size=12))
def test_any_postings_and_reversals_keep_the_trial_balance_at_zero_and_the_balance_sheet_balanced(app, steps):
    world = books(app)
    with app.app_context(), as_person(world, world.staff) as (user, tenant):
        for move, amount, reverse_it in steps:
            entry = post(world, world.staff, [(a, amount if side == "d" else 0, amount if side == "c" else 0)
                                              for a, side in MOVES[move]])
            if reverse_it:
                services.reverse(user, tenant, str(entry.id), DAY)
        rows = reports.trial_balance(DAY)
        assert sum(r.debit for r in rows) == sum(r.credit for r in rows)
        by_type = {kind: sum(r.debit - r.credit for r in rows if r.type == kind)
                   for kind in ("asset", "liability", "equity", "revenue", "expense")}
        # Assets = liabilities + equity + the period's result (revenue - expenses), in debit-minus-credit terms.
        assert by_type["asset"] + by_type["expense"] == -(by_type["liability"] + by_type["equity"] + by_type["revenue"])

        # At close, carrying the result: retained earnings change by exactly the P&L's result, revenue and expense
        # accounts are empty, the summary account nets to zero, and the P&L still reports the period's trading.
        result = -(by_type["revenue"] + by_type["expense"])  # revenue - expenses
        pl_before = reports.result(reports.profit_and_loss(DAY, since=DAY.replace(day=1)))
        assert pl_before == result
        retained_before = {r.code: r.balance for r in rows}.get("4212", 0)
        if any(by_type[k] for k in ("revenue", "expense")):
            services.carry_result(user, tenant, DAY.replace(day=1), DAY)
            after = {r.code: r for r in reports.trial_balance(DAY)}
            retained_after = after["4212"].balance if "4212" in after else 0
            assert retained_after - retained_before == result
            assert all(r.debit == r.credit for r in after.values() if r.type in ("revenue", "expense", "closing"))
            assert reports.result(reports.profit_and_loss(DAY, since=DAY.replace(day=1))) == pl_before
            sheet, unclosed = reports.balance_sheet(DAY)
            assert unclosed == 0 and sheet.total("asset") == sheet.total("liability") + sheet.total("equity")
        else:
            with pytest.raises(LedgerError, match="Nothing to carry"):
                services.carry_result(user, tenant, DAY.replace(day=1), DAY)


def test_staff_post_from_the_form_and_the_client_reads_the_books_but_keeps_nothing(app):
    world = books(app)
    staff = app.test_client()
    login(staff, world.staff)
    page = f"/t/{world.slug}/books/entries/new"
    token = csrf_token(staff, page)
    typed = {"csrf_token": token, "entry_date": "2026-11-05", "memo": "Bán hàng", "line_count": "4", "then": "post",
             "line-1-account": "131", "line-1-debit": "11000000", "line-2-account": "5111", "line-2-credit": "10000000",
             "line-3-account": "33311", "line-3-credit": "900000", "line-4-account": "9999", "line-4-debit": "12,5x"}
    refused = staff.post(f"/t/{world.slug}/books/entries", data=typed)
    body = refused.get_data(as_text=True)
    assert refused.status_code == 422 and "Write the amount in figures" in body
    assert 'value="12,5x"' in body and 'value="Bán hàng"' in body  # what was typed stays
    typed.update({"line-3-credit": "1000000", "line-4-account": "", "line-4-debit": ""})
    unbalanced = staff.post(f"/t/{world.slug}/books/entries", data={**typed, "line-3-credit": "900000"})
    assert unbalanced.status_code == 422 and "does not balance" in unbalanced.get_data(as_text=True)
    posted = staff.post(f"/t/{world.slug}/books/entries", data=typed)
    assert posted.status_code == 303
    assert "11.000.000" in staff.get(posted.headers["Location"]).get_data(as_text=True) or \
        "11,000,000" in staff.get(posted.headers["Location"]).get_data(as_text=True)

    client = app.test_client()
    login(client, world.client)
    balance = client.get(f"/t/{world.slug}/books/trial-balance?since=2026-11-01&until=2026-11-30")
    assert balance.status_code == 200 and 'data-account="131"' in balance.get_data(as_text=True)
    assert client.get(page).status_code == 403
    token = csrf_token(client, f"/t/{world.slug}/books")
    assert client.post(f"/t/{world.slug}/books/entries", data={**typed, "csrf_token": token}).status_code == 403


def test_another_tenants_entry_is_not_found_under_this_tenant(app):
    world, other = books(app), books(app)
    with app.app_context(), as_person(world, world.staff):
        entry_id = post(world, world.staff, SALE).id
    intruder = app.test_client()
    login(intruder, other.staff)
    assert intruder.get(f"/t/{other.slug}/books/entries/{entry_id}").status_code == 404
    token = csrf_token(intruder, f"/t/{other.slug}/books")
    assert intruder.post(f"/t/{other.slug}/books/entries/{entry_id}/reverse",
                         data={"csrf_token": token, "on": "2026-11-30"}).status_code == 404


def test_profit_and_loss_and_balance_sheet_agree_with_each_other_and_with_the_figures_by_hand(app):
    world = books(app)
    with app.app_context(), as_person(world, world.staff):
        post(world, world.staff, [("1111", 50_000_000, 0), ("4111", 0, 50_000_000)])  # capital paid in
        post(world, world.staff, SALE)  # 10,000,000 revenue + 1,000,000 VAT receivable
        post(world, world.staff, PURCHASE)  # 2,000,000 expense + 200,000 VAT payable
        post(world, world.staff, [("1121", 11_000_000, 0), ("131", 0, 11_000_000)])  # the customer pays
        pl = reports.profit_and_loss(DAY, since=date(2026, 1, 1))
        assert (pl.total("revenue"), pl.total("expense"), reports.result(pl)) == (10_000_000, 2_000_000, 8_000_000)
        sheet, unclosed = reports.balance_sheet(DAY)
        # By hand: cash 50m + bank 11m + input VAT 0.2m; payables 2.2m + output VAT 1m; capital 50m; result 8m.
        assert sheet.total("asset") == 61_200_000
        assert (sheet.total("liability"), sheet.total("equity"), unclosed) == (3_200_000, 50_000_000, 8_000_000)
        assert sheet.total("asset") == sheet.total("liability") + sheet.total("equity") + unclosed
    client = app.test_client()
    login(client, world.client)
    page = client.get(f"/t/{world.slug}/books/balance-sheet?on=2026-11-30").get_data(as_text=True)
    assert "8,000,000</td>" in page.split('data-testid="unclosed">')[1][:20]
    assert "does not balance" not in page
    page = client.get(f"/t/{world.slug}/books/profit-and-loss?since=2026-01-01&until=2026-11-30").get_data(as_text=True)
    assert "8,000,000</td>" in page.split('data-testid="result">')[1][:20]


def test_a_batch_posts_all_or_nothing_and_numbers_in_order(app):
    world = books(app)
    with app.app_context(), as_person(world, world.staff) as (user, tenant):
        good = [services.EntryInput(DAY, [LineInput(a, d, c) for a, d, c in SALE]) for _ in range(3)]
        bad = services.EntryInput(DAY, [LineInput("131", 5, 0), LineInput("5111", 0, 4)])
        with pytest.raises(LedgerError) as refused:
            services.post_batch(user, tenant, [*good, bad])
        assert "entry-4" in refused.value.errors
        assert db.session.scalar(select(text("count(*)")).select_from(Entry)) == 0  # nothing of the batch
        assert services.post_batch(user, tenant, good) == [1, 2, 3]
        assert post(world, world.staff, PURCHASE).number == 4
        rows = {r.code: r for r in reports.trial_balance(DAY)}
        assert rows["131"].debit == 33_000_000 and rows["5111"].credit == 30_000_000
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "ledger.batch_posted"))
        assert (event.details["first"], event.details["last"], event.details["lines"]) == (1, 3, 9)


def test_an_accounts_ledger_opens_from_the_trial_balance_and_ends_at_its_balance(app):
    world = books(app)
    with app.app_context(), as_person(world, world.staff):
        post(world, world.staff, SALE, day=date(2026, 10, 20))  # before the range: the opening balance
        post(world, world.staff, SALE)
        post(world, world.staff, [("1121", 4_000_000, 0), ("131", 0, 4_000_000)])
        account = services.account_by_code("131")
        opening, lines = reports.general_ledger(account, date(2026, 11, 30), since=date(2026, 11, 1))
        assert opening == 11_000_000
        assert [(line.debit, line.credit, line.balance) for line in lines] == [
            (11_000_000, 0, 22_000_000), (0, 4_000_000, 18_000_000)]
        tb = {r.code: r for r in reports.trial_balance(date(2026, 11, 30))}
        assert lines[-1].balance == tb["131"].balance  # the drill-down ends where the trial balance says
    client = app.test_client()
    login(client, world.client)
    page = client.get(f"/t/{world.slug}/books/trial-balance?since=2026-11-01&until=2026-11-30").get_data(as_text=True)
    assert "/books/accounts/131?since=2026-11-01&amp;until=2026-11-30" in page  # each figure opens its lines
    ledger = client.get(f"/t/{world.slug}/books/accounts/131?since=2026-11-01&until=2026-11-30")
    assert ledger.status_code == 200 and 'data-testid="closing">₫18,000,000' in ledger.get_data(as_text=True)
    assert client.get(f"/t/{world.slug}/books/accounts/9999").status_code == 404


def test_the_vat_summary_per_rate_is_output_minus_input(app):
    world = books(app)
    with app.app_context(), as_person(world, world.staff) as (user, tenant):
        lines = [LineInput("131", 16_200_000, 0), LineInput("5111", 0, 15_000_000),
                 LineInput("33311", 0, 800_000, tax_code="8"), LineInput("33311", 0, 400_000, tax_code="10")]
        services.save_draft(user, tenant, DAY, lines, post_it=True)
        services.save_draft(user, tenant, DAY, [LineInput("6422", 2_000_000, 0),
                                                LineInput("1331", 200_000, 0, tax_code="10"),
                                                LineInput("331", 0, 2_200_000)], post_it=True)
        rows = {r.rate: (r.output, r.input, r.due) for r in reports.vat_summary(
            date(2026, 11, 30), since=date(2026, 11, 1), output_code="33311", input_codes=("1331", "1332"))}
        # By hand: 8 %: 800,000 out, nothing in; 10 %: 400,000 out, 200,000 in.
        assert rows == {"8": (800_000, 0, 800_000), "10": (400_000, 200_000, 200_000)}
    client = app.test_client()
    login(client, world.client)
    page = client.get(f"/t/{world.slug}/books/vat?since=2026-11-01&until=2026-11-30").get_data(as_text=True)
    assert 'data-testid="vat-due">₫1,000,000' in page


def test_staff_rename_an_account_and_its_postings_and_code_stay(app):
    world = books(app)
    with app.app_context(), as_person(world, world.staff):
        post(world, world.staff, SALE)
    staff = app.test_client()
    login(staff, world.staff)
    page = f"/t/{world.slug}/books/accounts/5111/name"
    token = csrf_token(staff, page)
    refused = staff.post(page, data={"csrf_token": token, "name_vi": "X", "name_en": "Product sales"})
    body = refused.get_data(as_text=True)
    assert refused.status_code == 422 and "2 to 200 characters" in body and 'value="Product sales"' in body
    done = staff.post(page, data={"csrf_token": token, "name_vi": "Doanh thu bán sản phẩm", "name_en": ""})
    assert done.status_code == 303
    balance = staff.get(f"/t/{world.slug}/books/trial-balance?since=2026-11-01&until=2026-11-30")
    assert "Doanh thu bán sản phẩm" in balance.get_data(as_text=True)  # the English name falls back to it
    with app.app_context(), as_person(world, world.staff):
        account = services.account_by_code("5111")
        assert (account.name_vi, account.name_en) == ("Doanh thu bán sản phẩm", "Doanh thu bán sản phẩm")
        assert {r.code: r.credit for r in reports.trial_balance(date(2026, 11, 30))}["5111"] == 10_000_000
        renamed = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "ledger.account_renamed"))
        data = renamed.details
        assert data["before"]["name_vi"] != data["after"]["name_vi"] == "Doanh thu bán sản phẩm"
    client = app.test_client()
    login(client, world.client)
    assert client.get(page).status_code == 403


def test_the_years_result_is_carried_to_retained_earnings_from_the_profit_and_loss_page(app):
    world = books(app)
    with app.app_context(), as_person(world, world.staff):
        post(world, world.staff, SALE)
        post(world, world.staff, PURCHASE)
    result = 10_000_000 - 2_000_000  # the sale's revenue less the purchase's expense
    staff = app.test_client()
    login(staff, world.staff)
    page = f"/t/{world.slug}/books/profit-and-loss?since=2026-01-01&until=2026-12-31"
    token = csrf_token(staff, page)
    carry = f"/t/{world.slug}/books/carry-result?since=2026-01-01&until=2026-12-31"
    client = app.test_client()
    login(client, world.client)
    assert 'data-testid="carry-result"' not in client.get(page).get_data(as_text=True)
    assert client.post(carry, data={"csrf_token": csrf_token(client, page)}).status_code == 403
    done = staff.post(carry, data={"csrf_token": token})
    assert done.status_code == 303 and "/books/entries/" in done.headers["Location"]
    with app.app_context(), as_person(world, world.staff):
        rows = {r.code: r for r in reports.trial_balance(date(2026, 12, 31))}
        assert rows["4212"].balance == result and rows["5111"].balance == rows["6422"].balance == 0
        assert rows["911"].debit == rows["911"].credit
        # The report still shows the year's trading, and the balance sheet holds the result in equity.
        assert reports.result(reports.profit_and_loss(date(2026, 12, 31), since=date(2026, 1, 1))) == result
        sheet, unclosed = reports.balance_sheet(date(2026, 12, 31))
        assert unclosed == 0 and {r.code: r.balance for r in sheet.rows["equity"]}["4212"] == result
    again = staff.post(carry, data={"csrf_token": token})
    assert "Nothing to carry" in staff.get(again.headers["Location"]).get_data(as_text=True)


def test_the_books_and_role_accounts_are_read_once_a_transaction_and_never_kept_past_it_or_another_scope(app):
    from tenants.context import Scope, bound
    from tests.querycount import count_queries

    world, other = books(app), books(app)
    with app.app_context():
        bare = make_tenant().id  # no books yet
    with app.app_context(), as_person(world, world.staff) as (_user, tenant):
        with count_queries() as first:
            receivable = services.role_account(tenant, "receivable")
            book = services.book_of(tenant)
        with count_queries() as again:
            assert services.role_account(tenant, "receivable") is receivable
            assert services.role_account(tenant, "output_vat").code == "33311"
            assert services.book_of(tenant) is book
        assert receivable.code == "131" and first.n >= 2 and again.n == 0, (first, again)
        db.session.commit()  # a new transaction reads them again
        with count_queries() as after_commit:
            services.book_of(tenant)
        assert any("ledger_books" in sql for sql in after_commit.statements), after_commit
    # Another tenant bound in the same transaction: the first one's books are not found under its scope.
    with app.app_context(), as_person(world, world.staff) as (user, tenant):
        mine = services.book_of(tenant)
        with bound(Scope(user_id=user.id, tenant_ids=frozenset({other.id}))):
            assert services.book_of(tenant) is None and services.role_account(tenant, "receivable") is None
            assert services.book_of(db.session.get(Tenant, other.id)).id != mine.id
    # A miss is not kept: books added later in the same transaction are found at once.
    with app.app_context(), as_person(bare, world.admin) as (user, tenant):
        assert services.book_of(tenant) is None
        db.session.add(Book(tenant_id=tenant.id, chart="vn_tt133", currency="VND", started_by_id=user.id))
        assert services.book_of(tenant) is not None
