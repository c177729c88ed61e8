"""The books' reports: receivables and payables by age, VAT per period, drill-down, XLSX and PDF, the API.

One small set of entries, posted through the services; every expected figure below is worked out by hand from
them (in the comments), never read back from the report under test. The reports must also agree with each
other: the ageing's total is the balance sheet's receivable, the result is the balance sheet's unclosed result,
the months' VAT adds up to the range's.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
from datetime import date
from pathlib import Path
from types import SimpleNamespace

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from portal.extensions import db
from portal.ledger import open_items, reports, services
from portal.ledger.models import Entry
from portal.ledger.parties import party_key
from portal.ledger.services import LineInput
from tenants.audit import AuditEvent
from tenants.context import Scope, bound
from tenants.models import Tenant, User
from tests.api.util import bearer, issue_token, problem
from tests.factories import TenantRef, csrf_token, login
from tests.ledger.test_ledger import as_person, books

TODAY = date(2026, 11, 30)
ALPHA, BETA = "Công ty Alpha (0101234567)", "Beta Trading (0312345678)"
GAMMA, MISCHIEF = "Gamma Supplies (0109876543)", "=HYPERLINK(\"https://evil.example\",\"Gamma\")"

# Receivables on 30/11/2026, by hand (days past due on that day):
#   S1 Alpha 11,000,000 due 15/08 (107 days: over 90)         S2 Alpha 5,400,000 due 20/10 (41: 31-60), 2,000,000
#   S3 Beta   3,300,000 due 20/11 (10: 1-30)                     paid and settled against it -> 3,400,000 open
#   S4 Beta   2,200,000 due 25/12 (not due: current)            S5 Beta 1,100,000 due 10/09 (81: 61-90)
#   S6 nobody   100,000 no due date: due on its date 29/11 (1: 1-30)
#   Beta paid 500,000 on 28/11 that no invoice was matched to (unapplied).
RECEIVABLE = {"current": 2_200_000, "1-30": 3_300_000 + 100_000, "31-60": 3_400_000, "61-90": 1_100_000,
              "over_90": 11_000_000}
RECEIVABLE_TOTAL = sum(RECEIVABLE.values()) - 500_000  # 20,600,000
# Account 131 by hand: debits 11,000,000 + 5,400,000 + 3,300,000 + 2,200,000 + 1,100,000 + 100,000 = 23,100,000,
# credits 2,000,000 + 500,000 -> 20,600,000: the same figure, reached the other way.
PAYABLE = {"current": 1_050_000, "1-30": 4_400_000, "31-60": 0, "61-90": 0, "over_90": 0}  # U2, U1 (due 31/10: 30)
# Revenue 10,000,000 + 5,000,000 + 3,000,000 + 2,000,000 + 1,000,000 + 100,000; expenses 4,000,000 + 1,000,000.
RESULT = 21_100_000 - 5_000_000
# VAT per month, (month, rate): (output, input).
VAT_MONTHS = {("2026-08-01", "10"): (1_000_000, 0), ("2026-09-01", "10"): (100_000, 0),
              ("2026-10-01", "10"): (0, 400_000), ("2026-10-01", "8"): (400_000, 0),
              ("2026-11-01", "10"): (500_000, 0), ("2026-11-01", "5"): (0, 50_000)}
VAT_DUE = 1_000_000 + 100_000 - 400_000 + 400_000 + 500_000 - 50_000  # 1,550,000


def _post(world, day: date, lines: list[LineInput], due: date | None = None):  # noqa: ANN001, ANN202
    user, tenant = db.session.get(User, world.staff.id), db.session.get(Tenant, world.id)
    return services.save_draft(user, tenant, day, lines, memo="test", due_date=due, post_it=True)


def sale(world, day: date, due: date | None, customer: str | None, net: int, vat: int = 0, rate: str = "10"):  # noqa: ANN001, ANN201
    lines = [LineInput("131", net + vat, 0, "sale", customer), LineInput("5111", 0, net, "sale")]
    if vat:
        lines.append(LineInput("33311", 0, vat, "VAT", tax_code=rate))
    return _post(world, day, lines, due)


def purchase(world, day: date, due: date, supplier: str, net: int, vat: int, rate: str):  # noqa: ANN001, ANN201
    return _post(world, day, [LineInput("6422", net, 0, "purchase"), LineInput("1331", vat, 0, "VAT", tax_code=rate),
                              LineInput("331", 0, net + vat, "purchase", supplier)], due)


def receipt(world, day: date, amount: int, customer: str):  # noqa: ANN001, ANN201
    return _post(world, day, [LineInput("1121", amount, 0, "receipt"),
                              LineInput("131", 0, amount, "receipt", customer)])


def line_on(entry, code: str):  # noqa: ANN001, ANN201
    return next(line for line in entry.lines if line.account.code == code)


def post_the_entries(app, world: SimpleNamespace) -> None:  # noqa: ANN001
    """The entries the figures above are worked out from (the browser test posts them too)."""
    with app.app_context(), as_person(world, world.staff) as (user, tenant):
        sale(world, date(2026, 8, 1), date(2026, 8, 15), ALPHA, 10_000_000, 1_000_000)  # S1
        s2 = sale(world, date(2026, 10, 10), date(2026, 10, 20), ALPHA, 5_000_000, 400_000, "8")
        sale(world, date(2026, 11, 5), date(2026, 11, 20), BETA, 3_000_000, 300_000)  # S3
        sale(world, date(2026, 11, 25), date(2026, 12, 25), BETA, 2_000_000, 200_000)  # S4
        sale(world, date(2026, 9, 1), date(2026, 9, 10), BETA, 1_000_000, 100_000)  # S5
        sale(world, date(2026, 11, 29), None, None, 100_000)  # S6: no counterparty, no VAT
        paid = receipt(world, date(2026, 11, 10), 2_000_000, ALPHA)
        open_items.settle(user, tenant, line_on(paid, "131").id, {line_on(s2, "131").id: 2_000_000})
        receipt(world, date(2026, 11, 28), 500_000, "0312345678")  # Beta, by its tax code alone: unapplied
        purchase(world, date(2026, 10, 1), date(2026, 10, 31), GAMMA, 4_000_000, 400_000, "10")  # U1
        purchase(world, date(2026, 11, 15), date(2026, 12, 15), GAMMA, 1_000_000, 50_000, "5")  # U2
        world.alpha = reports.party_token(party_key(tenant.id, ALPHA))
        world.name = tenant.name


@pytest.fixture(scope="module")
def world(app) -> SimpleNamespace:
    """The client's books with the entries above, and another client's books that know Alpha too."""
    world, other = books(app), books(app)
    post_the_entries(app, world)
    with app.app_context(), as_person(other, other.staff) as (user, tenant):
        sale(other, date(2026, 11, 1), None, ALPHA, 1_000)
        services.add_account(user, tenant, "6422", "64229", "Chi phí riêng", "Other's own")
        other.alpha = reports.party_token(party_key(tenant.id, ALPHA))
    world.other = other
    return world


_SIGNED_IN: dict = {}


def _client(app, person):  # noqa: ANN001, ANN202
    """A browser signed in as ``person``, once per module (sign-in is throttled per account, as it should be)."""
    if person.id not in _SIGNED_IN:
        _SIGNED_IN[person.id] = app.test_client()
        login(_SIGNED_IN[person.id], person)
    return _SIGNED_IN[person.id]


def test_the_ageing_has_the_hand_figures_and_its_total_is_the_balance_sheets_receivable(app, world):
    with app.app_context(), as_person(world, world.staff) as (_user, tenant):
        found = reports.ageing(tenant, "receivable", TODAY)
        assert found.total.buckets == RECEIVABLE and found.total.unapplied == 500_000
        assert found.total.total == RECEIVABLE_TOTAL == 20_600_000
        sheet, _unclosed = reports.balance_sheet(TODAY)
        assert {r.code: r.balance for r in sheet.rows["asset"]}["131"] == RECEIVABLE_TOTAL
        assert found.on_sheet == RECEIVABLE_TOTAL and found.agrees
        rows = {r.party_key: r for r in found.rows}  # by the keyed hash: Beta's name is last written as its tax code
        alpha, beta = rows[party_key(tenant.id, ALPHA)], rows[party_key(tenant.id, BETA)]
        assert alpha.buckets == {"current": 0, "1-30": 0, "31-60": 3_400_000, "61-90": 0, "over_90": 11_000_000}
        assert (beta.total, beta.unapplied) == (2_200_000 + 3_300_000 + 1_100_000 - 500_000, 500_000)
        assert rows[None].buckets["1-30"] == 100_000
        payables = reports.ageing(tenant, "payable", TODAY)
        assert payables.total.buckets == PAYABLE and payables.on_sheet == 5_450_000 and payables.agrees

    page = _client(app, world.client).get(f"/t/{world.slug}/books/receivables?as_of=2026-11-30")
    body = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'data-testid="ageing-total"><strong>₫20,600,000' in body
    assert 'data-testid="total-over_90">₫11,000,000' in body and 'data-testid="total-unapplied">-₫500,000' in body
    assert "The total equals the balance of account 131 on the balance sheet" in body
    assert f'/books/receivables/{world.alpha}?as_of=2026-11-30' in body  # the drill-down, by key
    parties = re.findall(r'/books/receivables/([^?"]+)\?as_of', body)
    assert len(parties) == 3 and world.alpha in parties and "unnamed" in parties
    assert all(len(p) == 16 for p in parties if p != "unnamed")  # a keyed hash, never a name
    payables = _client(app, world.staff).get(f"/t/{world.slug}/books/payables?as_of=2026-11-30")
    assert 'data-testid="ageing-total"><strong>₫5,450,000' in payables.get_data(as_text=True)


def test_a_counterparty_opens_its_open_items_with_entries_documents_and_days_overdue(app, world):
    reader = _client(app, world.client)
    page = reader.get(f"/t/{world.slug}/books/receivables/{world.alpha}?as_of=2026-11-30")
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and ALPHA in body
    # S1 (entry 1): 107 days overdue, 11,000,000 open; S2 (entry 2): 41 days, 3,400,000 of 5,400,000 open.
    assert body.count('data-testid="days-overdue">107<') == 1 and body.count('data-testid="days-overdue">41<') == 1
    assert "₫3,400,000" in body and "₫5,400,000" in body
    assert "/books/entries/" in body and 'data-testid="counterparty-total"' in body
    assert "₫14,400,000" in body.split('data-testid="counterparty-total"')[1]
    unnamed = reader.get(f"/t/{world.slug}/books/receivables/unnamed?as_of=2026-11-30").get_data(as_text=True)
    assert "No counterparty given" in unnamed and "₫100,000" in unnamed


def test_another_tenants_party_key_or_account_code_is_not_found(app, world):
    reader = _client(app, world.client)
    assert world.other.alpha != world.alpha  # the same customer, keyed per client
    for url in (f"/books/receivables/{world.other.alpha}", "/books/payables/" + world.alpha,
                "/books/receivables/not-a-key", "/books/receivables/" + "A" * 16 + "x",
                "/books/accounts/64229", "/books/accounts/64229.xlsx", "/books/accounts/64229.pdf"):
        assert reader.get(f"/t/{world.slug}{url}").status_code == 404, url
    # And the other client's reader never reaches this client's pages at all.
    outsider = _client(app, world.other.client)
    assert outsider.get(f"/t/{world.slug}/books/receivables").status_code == 404


def test_the_result_is_the_balance_sheets_unclosed_result_and_every_figure_opens_its_lines(app, world):
    with app.app_context(), as_person(world, world.staff):
        pl = reports.profit_and_loss(TODAY, since=date(2026, 1, 1))
        sheet, unclosed = reports.balance_sheet(TODAY)
        assert reports.result(pl) == unclosed == RESULT
        assert sheet.total("asset") == sheet.total("liability") + sheet.total("equity") + unclosed
    reader = _client(app, world.client)
    pl_page = reader.get(f"/t/{world.slug}/books/profit-and-loss?since=2026-01-01&until=2026-11-30").get_data(
        as_text=True)
    assert "/books/accounts/5111?since=2026-01-01&amp;until=2026-11-30" in pl_page
    sheet_page = reader.get(f"/t/{world.slug}/books/balance-sheet?on=2026-11-30").get_data(as_text=True)
    assert "/books/accounts/131?since=2026-01-01&amp;until=2026-11-30" in sheet_page
    ledger = reader.get(f"/t/{world.slug}/books/accounts/131?since=2026-01-01&until=2026-11-30").get_data(as_text=True)
    assert 'data-testid="closing">₫20,600,000' in ledger  # the balance sheet's figure, line by line
    assert ledger.count("/books/entries/") == 8  # six sales and two receipts, each opening its entry
    tb = reader.get(f"/t/{world.slug}/books/trial-balance?since=2026-01-01&until=2026-11-30").get_data(as_text=True)
    row = tb.split('data-account="131"')[1].split("</tr>")[0]
    assert row.count("/books/accounts/131?since=2026-01-01&amp;until=2026-11-30") == 4  # the name and each figure


def test_vat_per_month_and_per_quarter_adds_up_to_the_range(app, world):
    since = date(2026, 8, 1)
    with app.app_context(), as_person(world, world.staff) as (_user, tenant):
        output, inputs = reports.vat_accounts(tenant)
        months = reports.vat_by_period(TODAY, since=since, output_code=output, input_codes=inputs)
        assert {(p.start.isoformat(), p.rate): (p.output, p.input) for p in months} == VAT_MONTHS
        assert all(p.end == services.last_day(p.start) for p in months)
        summary = reports.vat_summary(TODAY, since=since, output_code=output, input_codes=inputs)
        assert {r.rate: r.due for r in summary} == {"10": 1_200_000, "8": 400_000, "5": -50_000}
        for rate in ("10", "8", "5"):
            assert sum(p.due for p in months if p.rate == rate) == {r.rate: r.due for r in summary}[rate]
        quarters = reports.vat_by_period(TODAY, since=date(2026, 8, 15), output_code=output, input_codes=inputs,
                                         per="quarter")
        # Q3 from 15/08 (S1 on 01/08 falls before it): S5's 100,000; Q4 to 30/11: the rest of the months above.
        assert {(p.start, p.end, p.rate): (p.output, p.input) for p in quarters} == {
            (date(2026, 8, 15), date(2026, 9, 30), "10"): (100_000, 0),
            (date(2026, 10, 1), TODAY, "10"): (500_000, 400_000), (date(2026, 10, 1), TODAY, "8"): (400_000, 0),
            (date(2026, 10, 1), TODAY, "5"): (0, 50_000)}
    reader = _client(app, world.client)
    page = reader.get(f"/t/{world.slug}/books/vat?since=2026-08-01&until=2026-11-30").get_data(as_text=True)
    assert 'data-testid="vat-due">₫1,550,000' in page and 'data-testid="periods-due">₫1,550,000' in page
    assert VAT_DUE == 1_550_000
    # A figure opens its lines: November's output at 10 % is S3's and S4's VAT.
    link = "/books/vat/lines?since=2026-11-01&amp;until=2026-11-30&amp;rate=10&amp;side=output"
    assert link in page
    lines = reader.get(link.replace("&amp;", "&").join([f"/t/{world.slug}", ""])).get_data(as_text=True)
    assert 'data-testid="lines-output">₫500,000' in lines and lines.count("/books/entries/") == 2


def _sheet_rows(data: bytes, title: str) -> list[tuple]:
    sheet = load_workbook(io.BytesIO(data))[title]
    return [tuple(c for c in row) for row in sheet.iter_rows(values_only=True)]


def test_the_xlsx_files_read_back_to_the_pages_figures_and_the_download_is_in_the_access_log(app, world):
    reader = _client(app, world.client)
    r = reader.get(f"/t/{world.slug}/books/receivables.xlsx?as_of=2026-11-30")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/vnd.openxmlformats")
    assert "attachment" in r.headers["Content-Disposition"] and "receivables-2026-11-30.xlsx" in \
        r.headers["Content-Disposition"]
    rows = _sheet_rows(r.data, "Receivables by age")
    assert rows[0][0] == "Receivables by age" and rows[1][0] == world.name and "2026" in rows[2][0]
    assert rows[3][0].startswith("Generated at") and rows[3][0].endswith("(Asia/Ho_Chi_Minh)")  # the client's zone
    assert rows[6][:2] == ("Counterparty", "Current")
    total = next(row for row in rows if row[0] == "Total")
    assert total[1:8] == (*RECEIVABLE.values(), -500_000, RECEIVABLE_TOTAL)  # numbers, not text
    alpha = next(row for row in rows if row[0] == ALPHA)
    assert alpha[1:8] == (0, 0, 3_400_000, 0, 11_000_000, 0, 14_400_000)

    payables = _sheet_rows(reader.get(f"/t/{world.slug}/books/payables.xlsx?as_of=2026-11-30").data,
                           "Payables by age")
    assert next(row for row in payables if row[0] == "Total")[1:8] == (*PAYABLE.values(), 0, 5_450_000)

    tb = _sheet_rows(reader.get(f"/t/{world.slug}/books/trial-balance.xlsx?since=2026-01-01&until=2026-11-30").data,
                     "Trial balance")
    by_code = {row[0]: row for row in tb[7:]}
    assert by_code["131"][2:5] == (23_100_000, 2_500_000, RECEIVABLE_TOTAL)
    assert by_code["Total"][2] == by_code["Total"][3]
    pl = _sheet_rows(reader.get(f"/t/{world.slug}/books/profit-and-loss.xlsx?since=2026-01-01&until=2026-11-30").data,
                     "Profit and loss")
    assert next(row for row in pl if row[0] == "Profit")[3] == RESULT
    vat = load_workbook(io.BytesIO(
        reader.get(f"/t/{world.slug}/books/vat.xlsx?since=2026-08-01&until=2026-11-30").data))
    assert vat.sheetnames == ["Per rate", "Per month"]
    month_rows = list(vat["Per month"].iter_rows(min_row=8, values_only=True))
    assert {(row[1].date().isoformat(), row[3]): (row[4], row[5]) for row in month_rows if row[0] != "Total"} == \
        {(m, f"{rate}%"): figures for (m, rate), figures in VAT_MONTHS.items()}
    assert next(row for row in month_rows if row[0] == "Total")[6] == VAT_DUE
    account = load_workbook(io.BytesIO(
        reader.get(f"/t/{world.slug}/books/accounts/131.xlsx?since=2026-11-01&until=2026-11-30").data)).active
    assert account["A1"].value == "Account ledger 131 · Trade receivables"
    assert list(account.iter_rows(values_only=True))[-1][5] == RECEIVABLE_TOTAL  # the closing balance

    with app.app_context(), bound(Scope(tenant_ids=frozenset({world.id}))):
        events = list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == "ledger.report_exported")
                                         .where(AuditEvent.actor_id == world.client.id)))
        assert {(e.details["report"], e.details["format"]) for e in events} >= {
            ("receivables", "xlsx"), ("payables", "xlsx"), ("trial-balance", "xlsx"), ("vat", "xlsx"),
            ("account", "xlsx")}
        assert next(e for e in events if e.details["report"] == "receivables").details["on"] == "2026-11-30"
    log = reader.get(f"/t/{world.slug}/access-log?kind=books").get_data(as_text=True)
    assert "downloaded a report of the books" in log and "Receivables by age, XLSX, on 2026-11-30" in log


def test_a_counterpartys_name_that_looks_like_a_formula_stays_text_in_the_xlsx(app, world):
    with app.app_context(), as_person(world, world.staff):
        purchase(world, date(2026, 11, 20), date(2026, 11, 20), MISCHIEF, 100_000, 10_000, "10")
    try:
        data = _client(app, world.client).get(f"/t/{world.slug}/books/payables.xlsx?as_of=2026-11-30").data
        names = [row[0] for row in _sheet_rows(data, "Payables by age")]
        assert "'" + MISCHIEF in names and MISCHIEF not in names
    finally:  # the module's other figures stay as worked out by hand
        with app.app_context(), as_person(world, world.staff) as (user, tenant):
            entry = db.session.scalar(select(Entry).where(Entry.entry_date == date(2026, 11, 20)))
            services.reverse(user, tenant, str(entry.id), date(2026, 11, 20))


def _pdf_text(data: bytes) -> str:
    done = subprocess.run(["pdftotext", "-layout", "-", "-"], input=data, capture_output=True, check=True)
    return done.stdout.decode()


def test_the_pdfs_are_pdfs_with_the_totals(app, world):
    reader = _client(app, world.client)
    r = reader.get(f"/t/{world.slug}/books/receivables.pdf?as_of=2026-11-30")
    if os.environ.get("PORTAL_SCREENSHOTS"):  # for a person to look at, beside the browser tests' screenshots
        Path(os.environ["PORTAL_SCREENSHOTS"], "reports-receivables.pdf").write_bytes(r.data)
    assert r.status_code == 200 and r.data.startswith(b"%PDF") and r.headers["Content-Type"] == "application/pdf"
    text = _pdf_text(r.data)
    assert "Receivables by age" in text and world.name in text and "₫20,600,000" in text and "₫11,000,000" in text
    assert "The total equals the balance of account 131" in text
    sheet = _pdf_text(reader.get(f"/t/{world.slug}/books/balance-sheet.pdf?on=2026-11-30").data)
    assert "₫16,100,000" in sheet and "Result not yet closed to equity" in sheet
    vat_pdf = reader.get(f"/t/{world.slug}/books/vat.pdf?since=2026-08-01&until=2026-11-30").data
    if os.environ.get("PORTAL_SCREENSHOTS"):
        Path(os.environ["PORTAL_SCREENSHOTS"], "reports-vat.pdf").write_bytes(vat_pdf)
    vat = _pdf_text(vat_pdf)
    assert "₫1,550,000" in vat and "Per month" in vat
    staff = _client(app, world.staff)
    staff.post("/language", data={"lang": "vi", "csrf_token": csrf_token(staff, f"/t/{world.slug}/books")})
    try:
        vi = _pdf_text(staff.get(f"/t/{world.slug}/books/trial-balance.pdf?since=2026-01-01&until=2026-11-30").data)
        assert "23.100.000" in vi  # figures written the reader's way
    finally:
        staff.post("/language", data={"lang": "en", "csrf_token": csrf_token(staff, f"/t/{world.slug}/books")})


def test_a_report_too_long_for_a_pdf_is_refused_with_what_to_do(app, world, monkeypatch):
    from portal.ledger import report_files

    monkeypatch.setattr(report_files, "PDF_MAX_ROWS", 3)
    reader = _client(app, world.client)
    r = reader.get(f"/t/{world.slug}/books/trial-balance.pdf?since=2026-01-01&until=2026-11-30")
    assert r.status_code == 303 and "/books/trial-balance?since=2026-01-01" in r.headers["Location"]
    assert "too many for a PDF" in reader.get(r.headers["Location"]).get_data(as_text=True)


def test_bad_dates_are_said_and_never_a_500(app, world):
    reader = _client(app, world.client)
    page = reader.get(f"/t/{world.slug}/books/receivables?as_of=2026-13-40")
    assert page.status_code == 400 and "is not a date" in page.get_data(as_text=True)
    assert reader.get(f"/t/{world.slug}/books/vat.xlsx?since=2026-12-01&until=2026-11-01").status_code == 400
    assert "is not a date" in reader.get(f"/t/{world.slug}/books/balance-sheet.pdf?on=x").get_data(as_text=True)
    # Whatever else the address carries is ignored, never a 500.
    odd = reader.get(f"/t/{world.slug}/books/receivables.xlsx?kind=x&tenant_slug=y&code=z&as_of=2026-11-30")
    assert odd.status_code == 200
    assert reader.get(f"/t/{world.slug}/books/accounts/131.pdf?code=1&fmt=x&tenant_slug=y").status_code == 200


def test_a_client_reads_every_report_but_keeps_nothing(app, world):
    reader = _client(app, world.client)
    for url in ("receivables", "payables", "receivables?as_of=2026-01-01", "vat/lines", "trial-balance",
                "profit-and-loss", "balance-sheet", "vat", "accounts/131", "receivables.pdf", "accounts/131.pdf"):
        assert reader.get(f"/t/{world.slug}/books/{url}").status_code == 200, url
    empty = reader.get(f"/t/{world.slug}/books/receivables?as_of=2026-01-01").get_data(as_text=True)
    assert 'data-testid="ageing-empty"' in empty and 'data-testid="new-entry"' not in empty
    staff_empty = _client(app, world.staff).get(f"/t/{world.slug}/books/receivables?as_of=2026-01-01")
    assert 'data-testid="new-entry"' in staff_empty.get_data(as_text=True)  # staff are told what to do next
    token = csrf_token(reader, f"/t/{world.slug}/books")
    assert reader.post(f"/t/{world.slug}/books/entries", data={"csrf_token": token}).status_code == 403


def test_the_api_answers_the_same_figures(app, world):
    tenant = TenantRef(world.id, world.slug, world.name)
    headers = bearer(issue_token(app, world.client, tenant))
    api = app.test_client()
    base = f"/api/v1/tenants/{world.slug}/books"
    ageing = api.get(f"{base}/ageing?kind=receivable&as_of=2026-11-30", headers=headers).json
    totals = ageing["totals"]
    assert (totals["current"], totals["days_1_30"], totals["days_31_60"], totals["days_61_90"], totals["over_90"]) \
        == tuple(RECEIVABLE.values())
    assert (totals["unapplied"], totals["total"], ageing["balance_sheet"], ageing["agrees"]) == \
        (500_000, RECEIVABLE_TOTAL, RECEIVABLE_TOTAL, True)
    alpha = next(r for r in ageing["rows"] if r["party"] == world.alpha)
    assert (alpha["counterparty"], alpha["total"]) == (ALPHA, 14_400_000)
    problem(api.get(f"{base}/ageing?kind=owed", headers=headers), 422)
    pl = api.get(f"{base}/profit-and-loss?since=2026-01-01&until=2026-11-30", headers=headers).json
    sheet = api.get(f"{base}/balance-sheet?on=2026-11-30", headers=headers).json
    assert pl["result"] == sheet["unclosed_result"] == RESULT
    assert sheet["total_assets"] == sheet["total_liabilities"] + sheet["total_equity"] + sheet["unclosed_result"]
    vat = api.get(f"{base}/vat?since=2026-08-01&until=2026-11-30", headers=headers).json
    assert vat["due"] == VAT_DUE == sum(p["due"] for p in vat["periods"])
    assert {(p["start"], p["rate"]): (p["output"], p["input"]) for p in vat["periods"]} == VAT_MONTHS
    problem(api.get(f"{base}/vat?since=2026-12-01&until=2026-11-01", headers=headers), 422)
    other = TenantRef(world.other.id, world.other.slug, "other")
    foreign = bearer(issue_token(app, world.other.client, other))
    assert api.get(f"{base}/ageing?kind=receivable", headers=foreign).status_code in (403, 404)
