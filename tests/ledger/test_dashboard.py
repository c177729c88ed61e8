"""The books dashboard and the statement's books section (real PostgreSQL).

One year and a bit of a small company's books is posted through the service (``scenario``); every expected
figure below is worked out by hand from those entries, never read back from the code under test. Then the
figures are checked to agree with the reports they summarise.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pytest
import time_machine
from sqlalchemy import select

from portal.billing import statements
from portal.billing.models import Statement
from portal.extensions import db
from portal.ledger import dashboard, open_items, reports, services
from portal.ledger.models import Book
from portal.ledger.services import LedgerError, LineInput
from portal.work.kpi import Month
from tenants.context import Scope, bound, for_tenant
from tenants.models import Tenant, User
from tenants.policy import Role
from tests.factories import login, make_person, make_tenant, put_on_plan
from tests.ledger.test_ledger import as_person, books

ON = date(2026, 11, 20)  # "today" in these tests
NOON = datetime(2026, 11, 20, 5, 0, tzinfo=UTC)  # midday of ON in Ho Chi Minh City
AN_PHAT = "Công ty An Phát (0101234567)"
BINH_MINH = "Nhà cung cấp Bình Minh"

# (date, lines as (account, debit, credit[, counterparty]), due date)
ENTRIES = [
    (date(2025, 1, 2), [("1111", 50_000_000, 0), ("4111", 0, 50_000_000)], None),  # capital paid in, in cash
    (date(2025, 3, 10), [("1111", 4_400_000, 0), ("5111", 0, 4_000_000), ("33311", 0, 400_000)], None),  # cash sale
    (date(2025, 3, 15), [("6422", 1_000_000, 0), ("1111", 0, 1_000_000)], None),  # an expense paid in cash
    (date(2026, 2, 10), [("131", 11_000_000, 0, AN_PHAT), ("5111", 0, 10_000_000), ("33311", 0, 1_000_000)],
     date(2026, 3, 12)),  # a sale on credit, never paid
    (date(2026, 2, 20), [("6422", 2_000_000, 0), ("1331", 200_000, 0), ("331", 0, 2_200_000, BINH_MINH)],
     date(2026, 3, 20)),  # a purchase on credit, never paid
    (date(2026, 4, 1), [("1121", 20_000_000, 0), ("4111", 0, 20_000_000)], None),  # more capital, at the bank
    (date(2026, 6, 1), [("1112", 2_300_000, 0), ("711", 0, 2_300_000)], None),  # other income, in foreign cash
    (date(2026, 7, 15), [("6422", 500_000, 0), ("1111", 0, 500_000)], None),
    (date(2026, 8, 8), [("6422", 700_000, 0), ("1111", 0, 700_000)], None),  # reversed on 9 August
    (date(2026, 11, 3), [("131", 5_500_000, 0, AN_PHAT), ("5111", 0, 5_000_000), ("33311", 0, 500_000)],
     date(2026, 12, 3)),  # a sale on credit, not due yet on ON
    (date(2026, 11, 12), [("6422", 1_000_000, 0), ("1331", 100_000, 0), ("1121", 0, 1_100_000)], None),
    (date(2026, 12, 1), [("1111", 1_000_000, 0), ("5111", 0, 1_000_000)], None),  # after ON, in the year
]

# By hand, fiscal year 2026 (January to December), as of 20 November 2026:
MONTHS = {2: (10_000_000, 2_000_000), 6: (2_300_000, 0), 7: (0, 500_000), 11: (5_000_000, 1_000_000),
          12: (1_000_000, 0)}  # August: 700,000 and its reversal, nothing
YTD = (17_300_000, 3_500_000)  # January..November: 10m + 2.3m + 5m; 2m + 0.5m + 1m
LAST_YEAR = (4_000_000, 1_000_000)  # January..November 2025
# Cash (111*) and bank (112*): 53.4m before 2026 (50m + 4.4m - 1m); April +20m; June +2.3m (1112);
# July -0.5m; August -0.7m +0.7m; November -1.1m. December's 1m comes after ON.
CASH_MONTHS = [53_400_000, 53_400_000, 53_400_000, 73_400_000, 73_400_000, 75_700_000, 75_200_000, 75_200_000,
               75_200_000, 75_200_000, 74_100_000]


def post(world, lines, day: date, due: date | None = None):  # noqa: ANN001, ANN201
    user, tenant = db.session.get(User, world.staff.id), db.session.get(Tenant, world.id)
    draft = services.save_draft(user, tenant, day, [LineInput(a, d, c, counterparty=p[0] if p else None)
                                                    for a, d, c, *p in lines], memo="test", due_date=due)
    return services.post(user, tenant, str(draft.id))


def scenario(app):  # noqa: ANN001, ANN201
    """A tenant on the Circular 133 chart with ``ENTRIES`` posted, one reversed, and a draft left unposted."""
    world = books(app)
    with app.app_context(), as_person(world, world.staff) as (user, tenant):
        for day, lines, due in ENTRIES:
            entry = post(world, lines, day, due)
            if day == date(2026, 8, 8):
                services.reverse(user, tenant, str(entry.id), date(2026, 8, 9))
        services.save_draft(user, tenant, date(2026, 11, 15), [LineInput("6422", 9_999_000, 0),
                                                               LineInput("1111", 0, 9_999_000)])
    return world


def digits(text: str) -> str:
    return re.sub(r"[^\d-]", "", text)


def test_the_dashboard_figures_worked_out_by_hand(app):
    world = scenario(app)
    with app.app_context(), as_person(world, world.client) as (_user, tenant):
        board = dashboard.build(tenant, 2026, on=ON)
        assert (board.start, board.end, board.as_of, board.currency) == (date(2026, 1, 1), date(2026, 12, 31), ON,
                                                                          "VND")
        assert [m.month for m in board.months] == [date(2026, n, 1) for n in range(1, 13)]
        assert {m.month.month: (m.revenue, m.expenses) for m in board.months if m.revenue or m.expenses} == MONTHS
        assert [m.result for m in board.months][1] == 8_000_000 and board.months[6].result == -500_000
        assert (board.year_to_date.revenue, board.year_to_date.expenses, board.year_to_date.result) == (
            *YTD, 13_800_000)
        assert (board.last_year.revenue, board.last_year.expenses) == LAST_YEAR
        assert board.change("revenue") == dashboard.Change(13_300_000, 13_300_000 / 4_000_000)
        assert board.change("result") == dashboard.Change(10_800_000, 10_800_000 / 3_000_000)
        assert board.cash == 74_100_000
        assert board.cash_months == [(date(2026, n, 1), v) for n, v in enumerate(CASH_MONTHS, start=1)]
        # Owed to us: February's 11m, 253 days past its due day; November's 5.5m, due on 3 December.
        assert (board.receivable.total, board.receivable.overdue) == (16_500_000, 11_000_000)
        assert board.receivable.buckets == {"current": 5_500_000, "1-30": 0, "31-60": 0, "61-90": 0,
                                            "over_90": 11_000_000}
        assert [(r.counterparty, r.total) for r in board.receivable.top] == [(AN_PHAT, 16_500_000)]
        assert (board.payable.total, board.payable.overdue, board.payable.buckets["over_90"]) == (
            2_200_000, 2_200_000, 2_200_000)
        # VAT of November to the 20th: 500,000 on the sale less 100,000 on the purchase.
        assert (board.vat_since, board.vat_until, board.vat_due) == (date(2026, 11, 1), ON, 400_000)
        assert board.has_entries and board.posted_in_year

        past = dashboard.build(tenant, 2025, on=ON)  # a past year: as of its last day, against 2024 (nothing)
        assert past.as_of == date(2025, 12, 31) and past.last_year is None and past.change("revenue") is None
        assert (past.year_to_date.revenue, past.year_to_date.expenses, past.cash) == (4_000_000, 1_000_000,
                                                                                       53_400_000)


def test_the_dashboard_agrees_with_the_reports(app):
    world = scenario(app)
    with app.app_context(), as_person(world, world.client) as (_user, tenant):
        board = dashboard.build(tenant, 2026, on=ON)
        year = reports.profit_and_loss(board.end, since=board.start)
        assert sum(m.result for m in board.months) == reports.result(year) == 14_800_000
        assert sum(m.revenue for m in board.months) == year.total("revenue")
        for m in board.months:
            month = reports.profit_and_loss(services.last_day(m.month), since=m.month)
            assert (m.revenue, m.expenses) == (month.total("revenue"), month.total("expense")), m.month
        sheet, _unclosed = reports.balance_sheet(ON)
        cash_and_bank = sum(r.balance for r in sheet.rows["asset"] if r.code.startswith(("111", "112")))
        assert board.cash == cash_and_bank
        assert board.receivable.total == open_items.balance(tenant, "receivable", ON)
        assert board.payable.total == open_items.balance(tenant, "payable", ON)
        output, inputs = services.role_account(tenant, "output_vat"), ("1331", "1332")
        vat = reports.vat_summary(ON, since=date(2026, 11, 1), output_code=output.code, input_codes=inputs)
        assert board.vat_due == sum(r.due for r in vat)


def test_a_fiscal_year_from_april_and_the_years_people_may_ask_for(app):
    world = scenario(app)
    with app.app_context(), as_person(world, world.client) as (_user, tenant):
        book = db.session.scalar(select(Book))
        assert dashboard.parse_year(book, "", ON) == dashboard.parse_year(book, None, ON) == 2026
        assert dashboard.parse_year(book, " 2025 ", ON) == 2025
        for wrong in ("2027", "1999", "twenty", "20 26"):
            with pytest.raises(LedgerError, match="Choose a year from 2000 to 2026"):
                dashboard.parse_year(book, wrong, ON)
        book.fiscal_year_start = 4
        db.session.flush()
        assert dashboard.year_of(book, date(2026, 3, 31)) == 2025 and dashboard.year_of(book, ON) == 2026
        assert dashboard.fiscal_year(book, 2025) == (date(2025, 4, 1), date(2026, 3, 31))
        board = dashboard.build(tenant, 2025, on=ON)  # April 2025 to March 2026, over
        assert board.as_of == date(2026, 3, 31) and board.months[0].month == date(2025, 4, 1)
        assert (board.year_to_date.revenue, board.year_to_date.expenses) == (10_000_000, 2_000_000)
        assert (board.last_year.revenue, board.last_year.expenses) == LAST_YEAR  # March 2025 was in 2024's
        assert board.cash == 53_400_000
        assert sum(m.result for m in board.months) == reports.result(
            reports.profit_and_loss(date(2026, 3, 31), since=date(2025, 4, 1)))


def test_the_month_for_the_statement_by_hand(app):
    world = scenario(app)
    with app.app_context(), as_person(world, world.client) as (_user, tenant):
        november = dashboard.month_summary(tenant, date(2026, 11, 1), date(2026, 11, 30))
        assert november == {"currency": "VND", "month": "2026-11-01", "revenue": 5_000_000, "expenses": 1_000_000,
                            "result": 4_000_000, "cash": 74_100_000, "vat_due": 400_000,
                            "receivable": 16_500_000, "receivable_overdue": 11_000_000,
                            "payable": 2_200_000, "payable_overdue": 2_200_000}
        february = dashboard.month_summary(tenant, date(2026, 2, 1), date(2026, 2, 28))
        # Nothing was due yet at February's end (due on 12 and 20 March); VAT 1m on the sale less 0.2m.
        assert (february["result"], february["cash"], february["vat_due"]) == (8_000_000, 53_400_000, 800_000)
        assert (february["receivable"], february["receivable_overdue"], february["payable"],
                february["payable_overdue"]) == (11_000_000, 0, 2_200_000, 0)


def test_the_statement_shows_the_books_section_on_its_page_and_in_its_pdf(app, provider_bank, run_jobs, tmp_path):
    import subprocess

    world = scenario(app)
    with app.app_context():
        bare_id = make_tenant().id  # no books: no books section
        for tenant_id in (world.id, bare_id):
            put_on_plan(db.session.get(Tenant, tenant_id))
        with_books = statements.run_for_tenant(world.id, Month(2026, 11))
        without = statements.run_for_tenant(bare_id, Month(2026, 11))
    run_jobs()
    with app.app_context():
        with for_tenant(world.id):
            section = next(s["data"] for s in db.session.get(Statement, with_books.statement_id).sections
                           if s["key"] == "books")
            assert (section["result"], section["cash"], section["vat_due"], section["receivable_overdue"],
                    section["payable_overdue"]) == (4_000_000, 74_100_000, 400_000, 11_000_000, 2_200_000)
        with for_tenant(bare_id):
            assert "books" not in {s["key"] for s in db.session.get(Statement, without.statement_id).sections}
    reader = app.test_client()
    login(reader, world.client)
    url = f"/t/{world.slug}/statements/{with_books.statement_id}"
    for lang in ("en", "vi"):
        page = reader.get(url, headers={"Accept-Language": lang}).get_data(as_text=True)
        books_part = page.split('data-section="books"')[1].split("</section>")[0]
        for testid, amount in (("books-result", "4000000"), ("books-cash", "74100000"), ("books-vat", "400000")):
            assert digits(books_part.split(f'data-testid="{testid}">')[1].split("</td>")[0]) == amount
        assert "11.000.000" in books_part or "11,000,000" in books_part  # overdue owed to the client
    pdf = reader.get(url + "/pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    (tmp_path / "s.pdf").write_bytes(pdf.data)
    text = subprocess.run(["pdftotext", "-layout", str(tmp_path / "s.pdf"), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert "74.100.000" in text and "4.000.000" in text and "11.000.000" in text  # the tenant's language: vi


def _page(app, person, url: str):  # noqa: ANN001, ANN202
    client = app.test_client()
    login(client, person)
    return client, client.get(url)


def _figure(html: str, testid: str) -> str:
    return digits(html.split(f'data-testid="{testid}-figure">')[1].split("</strong>")[0])


def test_the_client_reads_the_dashboard_and_each_tile_opens_its_report(app):
    world = scenario(app)
    with time_machine.travel(NOON, tick=True):
        client, answer = _page(app, world.client, f"/t/{world.slug}/books/dashboard")
        assert answer.status_code == 200
        html = answer.get_data(as_text=True)
        assert _figure(html, "tile-revenue") == "17300000" and _figure(html, "tile-expenses") == "3500000"
        assert _figure(html, "tile-result") == "13800000" and _figure(html, "tile-cash") == "74100000"
        assert _figure(html, "tile-receivable") == "16500000" and _figure(html, "tile-payable") == "2200000"
        assert _figure(html, "tile-vat") == "400000"
        assert 'data-testid="change-revenue"' in html and 'data-testid="receivable-overdue"' in html
        assert f'/t/{world.slug}/books/profit-and-loss?since=2026-01-01&amp;until=2026-11-20' in html
        assert f'/t/{world.slug}/books/balance-sheet?on=2026-11-20' in html
        assert f'/t/{world.slug}/books/receivables' in html and f'/t/{world.slug}/books/payables' in html
        assert f'/t/{world.slug}/books/vat?since=2026-11-01&amp;until=2026-11-20' in html
        assert html.count('role="img"') == 3 and 'data-testid="months-table"' in html
        assert 'data-month="2026-02"' in html and AN_PHAT in html
        assert digits(html.split('data-testid="year-result">')[1].split("</td>")[0]) == "14800000"
        # The client's Books link leads to the dashboard; the overview links to it too.
        assert f'href="/t/{world.slug}/books/dashboard"' in client.get(f"/t/{world.slug}/books/entries"
                                                                       ).get_data(as_text=True)
        assert 'data-testid="dashboard-link"' in client.get(f"/t/{world.slug}/books").get_data(as_text=True)
        vi = client.get(f"/t/{world.slug}/books/dashboard?year=2025", headers={"Accept-Language": "vi"})
        assert vi.status_code == 200 and "2025" in vi.get_data(as_text=True)
        refused = client.get(f"/t/{world.slug}/books/dashboard?year=2031")
        assert refused.status_code == 400 and "Choose a year from 2000 to 2026" in refused.get_data(as_text=True)
        # Staff see it too.
        _staff, seen = _page(app, world.staff, f"/t/{world.slug}/books/dashboard")
        assert seen.status_code == 200 and _figure(seen.get_data(as_text=True), "tile-cash") == "74100000"


def test_another_tenant_cannot_see_it_and_a_member_is_not_let_in(app):
    world, other = scenario(app), books(app)
    with app.app_context():
        member = make_person(Role.CLIENT_MEMBER, db.session.get(Tenant, world.id), mfa=False)
        db.session.commit()
    for intruder in (other.client, other.staff):
        client = app.test_client()
        login(client, intruder)
        assert client.get(f"/t/{world.slug}/books/dashboard").status_code == 404
        html = client.get(f"/t/{other.slug}/books/dashboard").get_data(as_text=True)  # their own: nothing posted
        assert 'data-testid="dashboard-empty"' in html and AN_PHAT not in html
    _member, answer = _page(app, member, f"/t/{world.slug}/books/dashboard")
    assert answer.status_code == 403


def test_the_empty_states(app):
    world = books(app)  # books on, nothing posted
    _client, answer = _page(app, world.client, f"/t/{world.slug}/books/dashboard")
    html = answer.get_data(as_text=True)
    assert answer.status_code == 200 and 'data-testid="dashboard-empty"' in html and 'role="img"' not in html
    with app.app_context():
        tenant = make_tenant()  # books not switched on: how they start
        client_admin = make_person(Role.CLIENT_ADMIN, tenant)
        db.session.commit()
        slug = tenant.slug
    _client, answer = _page(app, client_admin, f"/t/{slug}/books/dashboard")
    assert answer.status_code == 200 and 'data-testid="dashboard-tiles"' not in answer.get_data(as_text=True)
    # Only last year's entries: this year's charts say so, the cash still shows.
    world = books(app)
    with app.app_context(), as_person(world, world.staff):
        post(world, ENTRIES[0][1], date(2025, 1, 2))
    with app.app_context(), as_person(world, world.client) as (_user, tenant):
        board = dashboard.build(tenant, 2026, on=ON)
        assert board.has_entries and not board.posted_in_year and board.cash == 50_000_000
    with time_machine.travel(NOON, tick=True):
        _client, answer = _page(app, world.client, f"/t/{world.slug}/books/dashboard")
    html = answer.get_data(as_text=True)
    assert "No revenue or expenses are posted in 2026 yet." in html and _figure(html, "tile-cash") == "50000000"


def test_the_api_answers_the_same_figures_to_a_token_of_the_tenant_only(app):
    from portal.api.tokens import create_token

    world, other = scenario(app), books(app)
    with app.app_context():
        with as_person(world, world.client) as (user, tenant):
            secret = create_token(user, tenant, "dashboard", "read")
        with as_person(other, other.client) as (user, tenant):
            other_secret = create_token(user, tenant, "dashboard", "read")
        bare = make_tenant()
        bare_admin = make_person(Role.CLIENT_ADMIN, bare)
        with bound(Scope(user_id=bare_admin.id, tenant_ids=frozenset({bare.id}))):
            bare_secret = create_token(db.session.get(User, bare_admin.id), db.session.get(Tenant, bare.id), "x",
                                       "read")
        bare_slug = bare.slug
    api = app.test_client()
    with time_machine.travel(NOON, tick=True):
        answer = api.get(f"/api/v1/tenants/{world.slug}/books/dashboard", headers={"Authorization": f"Bearer {secret}"})
        assert answer.status_code == 200, answer.data[:300]
        body = answer.json
        assert (body["year"], body["as_of"], body["currency"]) == (2026, "2026-11-20", "VND")
        assert body["year_to_date"] == {"revenue": 17_300_000, "expenses": 3_500_000, "result": 13_800_000}
        assert body["last_year"] == {"revenue": 4_000_000, "expenses": 1_000_000, "result": 3_000_000}
        assert sum(m["result"] for m in body["months"]) == 14_800_000 and len(body["months"]) == 12
        assert body["cash"] == 74_100_000 and [m["balance"] for m in body["cash_months"]] == CASH_MONTHS
        assert body["receivable"]["overdue"] == 11_000_000 and body["payable"]["total"] == 2_200_000
        assert body["vat"] == {"since": "2026-11-01", "until": "2026-11-20", "due": 400_000}
        past = api.get(f"/api/v1/tenants/{world.slug}/books/dashboard?year=2025",
                       headers={"Authorization": f"Bearer {secret}"}).json
        assert past["year_to_date"]["result"] == 3_000_000 and past["last_year"] is None
        wrong = api.get(f"/api/v1/tenants/{world.slug}/books/dashboard?year=2030",
                        headers={"Authorization": f"Bearer {secret}"})
        assert wrong.status_code == 422 and "Choose a year" in wrong.json["detail"]
    assert api.get(f"/api/v1/tenants/{world.slug}/books/dashboard",
                   headers={"Authorization": f"Bearer {other_secret}"}).status_code == 404
    off = api.get(f"/api/v1/tenants/{bare_slug}/books/dashboard", headers={"Authorization": f"Bearer {bare_secret}"})
    assert off.status_code == 409 and off.mimetype == "application/problem+json"


def test_the_dashboard_charts_say_their_numbers_and_escape_their_words():
    from portal.work import charts

    months = charts.columns_and_line([("<Jan>", 10, 4, 6), ("Feb", 0, 5, -5)], title="R & E",
                                     names=("revenue", "expenses", "result"))
    assert months.startswith("<svg") and 'role="img"' in months and "&lt;Jan&gt;" in months and "<Jan>" not in months
    assert "&lt;Jan&gt;: revenue 10, expenses 4, result 6; Feb: revenue 0, expenses 5, result -5" in months
    assert months.count('class="chart-s0"') == 1 and months.count('class="chart-s1"') == 2  # no column for 0
    assert months.count('class="chart-dot"') == 2 and "chart-zero" in months  # the loss sits under the zero line
    cash = charts.line_chart([("Jan", 100), ("Feb", -20)], title="Cash")
    assert "Jan: 100; Feb: -20" in cash and cash.count('class="chart-point"') == 2
    ages = charts.stacked_bars([("Owed to you", [5, 0, 0, 0, 11]), ("You owe", [0, 0, 0, 0, 0])], title="Age",
                               segments=["now", "1", "2", "3", "90+"])
    assert "Owed to you: now 5, 1 0, 2 0, 3 0, 90+ 11" in ages and ages.count("<rect class=\"chart-age") == 2
    assert charts.columns_and_line([], title="x", names=("a", "b", "c")) == ""
    assert charts.columns_and_line([("Jan", 0, 0, 0)], title="x", names=("a", "b", "c")) == ""
    assert charts.line_chart([], title="x") == "" and charts.stacked_bars([("a", [0, 0])], title="x",
                                                                          segments=["p", "q"]) == ""
    assert charts._nice_ticks(-500_000, 10_000_000) == [-2_500_000, 0, 2_500_000, 5_000_000, 7_500_000, 10_000_000]
