"""Bank statements through intake: OFX (v1 and v2), MT940 and CSV uploaded through the vault, read by the
"bank" step into statements and transactions, their continuity, the CSV mapping form, the API, isolation.

Real PostgreSQL, Redis and an rq worker (``run_jobs``). Expected transactions come from the ground truth the
files are made from (``bank_samples``), never from the tables under test.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from portal.documents import services as documents
from portal.extensions import db
from portal.intake import chain
from portal.intake.bank import parse_csv
from portal.intake.bank.models import BankCsvMapping, BankStatement, BankTransaction
from portal.intake.bank.statement import BankFileError, to_minor
from portal.intake.bank.step import read
from portal.intake.models import IntakeRecord
from tenants.audit import AuditEvent
from tenants.context import Scope, bound, for_tenant
from tenants.models import Tenant, User
from tenants.policy import Role
from tests.factories import csrf_token, login, make_person, make_tenant
from tests.intake.bank_samples import CSV_HEADER, Tx, csv_statement, mt940, mt940_block, ofx_v1, ofx_v2
from tests.intake.test_intake import make_staff
from workers.models import OutboxJob

ACCOUNT = "0011004123456"
OCTOBER = [Tx(date(2024, 10, 2), D("-2500000"), "Công ty TNHH Hoa Sen", "0123456789", "Tiền thuê văn phòng", "F1"),
           Tx(date(2024, 10, 15), D("7500000"), "Khách hàng A & B", None, "Thanh toán hóa đơn 0001234", "F2"),
           Tx(date(2024, 10, 31), D("-12000"), None, None, "Phí dịch vụ", "F3")]


def _tenant(app):
    """A new client with its admin."""
    with app.app_context():
        tenant = make_tenant()
        person = make_person(Role.CLIENT_ADMIN, tenant)
        return SimpleNamespace(id=tenant.id, slug=tenant.slug), person


def _upload(app, tenant, person, body: bytes, name: str, category: str = "bank_statement"):
    """The client's admin uploads a file through the vault; its document's id (or the refusal's message)."""
    with app.app_context():
        user = db.session.get(User, person.id)
        with bound(Scope(user_id=user.id, tenant_ids=frozenset({tenant.id}), role=Role.CLIENT_ADMIN)):
            result = documents.upload(user, db.session.get(Tenant, tenant.id), [body], filename=name,
                                      target=documents.upload_target(user, category=category))
            return result.document.id if result.ok else result.message


def _record(app, tenant, doc_id) -> IntakeRecord:
    with app.app_context(), for_tenant(tenant.id):
        record = db.session.scalar(select(IntakeRecord).where(IntakeRecord.document_id == doc_id))
        db.session.expunge(record)
        return record


def _stored(app, tenant, doc_id) -> list[tuple]:
    """The statements stored for the document, each as (fields..., [transactions as tuples])."""
    with app.app_context(), for_tenant(tenant.id):
        out = []
        for s in db.session.scalars(select(BankStatement).where(BankStatement.document_id == doc_id)
                                    .order_by(BankStatement.seq)):
            lines = db.session.scalars(select(BankTransaction).where(BankTransaction.statement_id == s.id)
                                       .order_by(BankTransaction.line_no)).all()
            out.append(SimpleNamespace(
                format=s.format, bank=s.bank, account=s.account, mask=s.account_mask, currency=s.currency,
                period=(s.period_start, s.period_end), opening=s.opening_balance, closing=s.closing_balance,
                computed=s.opening_computed, continuity=s.continuity, follows=s.follows_id, id=s.id,
                lines=[(ln.booked_on, ln.amount, ln.currency, ln.counterparty_name, ln.counterparty_account,
                        ln.reference, ln.balance) for ln in lines]))
        return out


def _page(app, person, tenant, doc_id):
    client = app.test_client()
    login(client, person)
    return client, client.get(f"/t/{tenant.slug}/documents/{doc_id}").get_data(as_text=True)


# --- OFX -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("make", [ofx_v1, ofx_v2], ids=["sgml-v1", "xml-v2"])
def test_an_ofx_statement_is_read_into_exact_transactions(app, run_jobs, make):
    tenant, person = _tenant(app)
    closing = D("15000000") + sum((t.amount for t in OCTOBER), D(0))
    doc_id = _upload(app, tenant, person, make(ACCOUNT, "VND", date(2024, 10, 1), date(2024, 10, 31), OCTOBER,
                                               closing), "vcb-2024-10.ofx")
    run_jobs()
    record = _record(app, tenant, doc_id)
    assert (record.state, record.classified) == ("done", "bank_statement"), record.error
    [s] = _stored(app, tenant, doc_id)
    assert (s.format, s.bank, s.account, s.mask, s.currency) == ("ofx", "Vietcombank", ACCOUNT, "•••• 3456", "VND")
    assert s.period == (date(2024, 10, 1), date(2024, 10, 31))
    # OFX gives the closing balance only: the opening is the closing less the lines, and says so.
    assert (s.opening, s.closing, s.computed, s.continuity) == (15_000_000, int(closing), True, "first")
    # The posting day as the bank wrote it ("20241002000000[+7:ICT]"), not the UTC instant's day before.
    assert s.lines == [(t.day, int(t.amount), "VND", t.name, t.account, t.memo, None) for t in OCTOBER]
    _client, page = _page(app, person, tenant, doc_id)
    assert "•••• 3456" in page and "Khách hàng A &amp; B" in page and "₫7,500,000" in page
    assert "A bank statement, read transaction by transaction." in page


def test_a_usd_ofx_keeps_cents_exactly(app, run_jobs):
    tenant, person = _tenant(app)
    txs = [Tx(date(2024, 10, 3), D("-25.50"), "Café Crème", memo="Office coffee"),
           Tx(date(2024, 10, 9), D("1200.05"), "Client Ltd", "998877", "Invoice 42")]
    body = ofx_v1("12345678", "USD", date(2024, 10, 1), date(2024, 10, 31), txs, D("5174.55"), charset="1252")
    assert "Café".encode("cp1252") in body  # Windows-1252, as the header says
    doc_id = _upload(app, tenant, person, body, "chase.ofx")
    run_jobs()
    [s] = _stored(app, tenant, doc_id)
    assert [ln[1] for ln in s.lines] == [-2550, 120005] and (s.opening, s.closing) == (400000, 517455)
    assert s.lines[0][3] == "Café Crème"


def test_a_malformed_ofx_says_why_on_the_document_and_is_not_retried_for_ever(app, run_jobs):
    tenant, person = _tenant(app)
    good = ofx_v1(ACCOUNT, "VND", date(2024, 10, 1), date(2024, 10, 31), OCTOBER, D("1"))
    doc_id = _upload(app, tenant, person, good.replace(b"<TRNAMT>7500000", b"<TRNAMT>7,5tr"), "hong.ofx")
    run_jobs()
    record = _record(app, tenant, doc_id)
    assert (record.state, record.step, record.error, record.attempts) == ("failed", "bank", "bank_malformed_ofx", 1)
    assert _stored(app, tenant, doc_id) == []
    with app.app_context():
        runs = db.session.scalars(select(OutboxJob).where(OutboxJob.name == "intake.run",
                                                          OutboxJob.scope_tenant == str(tenant.id))).all()
        assert [(r.finished_at is not None, r.last_error) for r in runs] == [(True, None)]
    _client, page = _page(app, person, tenant, doc_id)
    assert ("Could not read this file: it is an OFX file that is damaged or incomplete; download it from the bank "
            "again.") in page


# --- MT940 and continuity -------------------------------------------------------------------------------------

def _month(ref: str, opening: D, month: int, txs: list[Tx]) -> str:
    end = date(2024, month + 1, 1).toordinal() - 1 if month < 12 else date(2024, 12, 31).toordinal()
    return mt940_block(ref, f"BFTVVNVX/{ACCOUNT}", "VND", (date(2024, month, 1), opening), txs,
                       date.fromordinal(end))


def test_mt940_statements_are_read_and_a_gap_in_the_balances_is_flagged_whatever_the_upload_order(app, run_jobs):
    tenant, person = _tenant(app)
    november = [Tx(date(2024, 11, 5), D("-500000"), "EVN", memo="Tien dien")]
    # November first: nothing before it yet.
    nov_id = _upload(app, tenant, person, mt940(_month("NOV", D("20000000"), 11, november)), "nov.sta")
    run_jobs()
    [nov] = _stored(app, tenant, nov_id)
    assert nov.continuity == "first" and (nov.opening, nov.closing) == (20_000_000, 19_500_000)
    assert nov.lines == [(date(2024, 11, 5), -500000, "VND", "EVN", None, "Tien dien/NAME/EVN", None)]
    # October arrives late, in one file of two daily statements: November now follows it.
    first_half, second_half = OCTOBER[:1], OCTOBER[1:]
    oct_id = _upload(app, tenant, person, mt940(_month("OCT1", D("15000000"), 10, first_half),
                                                mt940_block("OCT2", f"BFTVVNVX/{ACCOUNT}", "VND",
                                                            (date(2024, 10, 2), D("12500000")), second_half,
                                                            date(2024, 10, 31))), "oct.sta")
    run_jobs()
    one, two = _stored(app, tenant, oct_id)
    assert (one.continuity, two.continuity, two.follows) == ("first", "ok", one.id)
    assert one.lines[0][:5] == (date(2024, 10, 2), -2_500_000, "VND", "Công ty TNHH Hoa Sen", "0123456789")
    assert two.closing == 12_500_000 + 7_500_000 - 12_000
    assert [ln[1] for ln in one.lines + two.lines] == [int(t.amount) for t in OCTOBER]
    [nov] = _stored(app, tenant, nov_id)
    assert (nov.continuity, nov.follows) == ("gap", two.id)  # 20,000,000 does not follow 19,988,000
    # December follows November exactly.
    dec_id = _upload(app, tenant, person, mt940(_month("DEC", D("19500000"), 12, [])), "dec.sta")
    run_jobs()
    [dec] = _stored(app, tenant, dec_id)
    assert (dec.continuity, dec.follows) == ("ok", nov.id)
    _client, page = _page(app, person, tenant, nov_id)
    assert ("The opening balance ₫20,000,000 does not follow the previous statement&#39;s closing balance "
            "₫19,988,000 (statement of Oct 31, 2024).") in page
    assert 'data-continuity="gap"' in page


def test_a_malformed_mt940_says_why(app, run_jobs):
    tenant, person = _tenant(app)
    body = mt940(_month("BAD", D("1000"), 10, OCTOBER)).replace(b":61:2410021002D", b":61:24XX1002D")
    doc_id = _upload(app, tenant, person, body, "bad.sta")
    run_jobs()
    record = _record(app, tenant, doc_id)
    assert (record.state, record.error) == ("failed", "bank_malformed_mt940")
    assert _stored(app, tenant, doc_id) == []


# --- CSV and its mapping ----------------------------------------------------------------------------------------

CSV_ROWS = [Tx(date(2024, 10, 1), D("5000000"), "Công ty Hoa Sen", "0123456789", "Thanh toán HĐ 0001234"),
            Tx(date(2024, 10, 5), D("-1200000"), "EVN Hà Nội", None, "Tiền điện tháng 9"),
            Tx(date(2024, 10, 5), D("-30000"), None, None, "Phí SMS")]


def _mapping_form(**override) -> dict:
    form = {"bank": "Vietcombank", "date_format": "%d/%m/%Y", "decimal": ".", "currency": "VND", "account": "",
            "col_date": "0", "col_reference": "1", "col_counterparty": "2", "col_counterparty_account": "3",
            "col_debit": "4", "col_credit": "5", "col_balance": "6"}
    form.update(override)
    return form


def test_a_csv_needs_its_columns_chosen_then_is_read_and_the_next_one_is_read_by_itself(app, run_jobs):
    tenant, person = _tenant(app)
    doc_id = _upload(app, tenant, person, csv_statement(CSV_ROWS, D("10000000")), "vcb-10.csv")
    run_jobs()
    record = _record(app, tenant, doc_id)
    assert (record.state, record.step, record.error) == ("failed", "bank", "bank_needs_mapping")
    # The client is told what happens; the form is staff's.
    _client, page = _page(app, person, tenant, doc_id)
    assert 'data-testid="bank-needs-mapping"' in page and 'data-testid="bank-mapping"' not in page
    assert "Thanh toán HĐ 0001234" in page  # the first rows of the file
    staff = make_staff(app, tenant)
    client, page = _page(app, staff, tenant, doc_id)
    assert 'data-testid="bank-mapping"' in page
    url = f"/t/{tenant.slug}/documents/{doc_id}"
    # Everything wrong at once: no bank, no date column, an amount and debit/credit both, a bad currency.
    bad = client.post(url + "/intake/bank-mapping", data={**_mapping_form(bank=" ", col_date="", col_amount="5",
                                                                           currency="ĐỒNG"),
                                                          "csrf_token": csrf_token(client, url)})
    text = bad.get_data(as_text=True)
    assert bad.status_code == 422
    for sentence in ("Name the bank", "Choose the column that holds the date",
                     "Choose either one amount column, or debit and credit columns", "three-letter code"):
        assert sentence in text, sentence
    assert 'value="ĐỒNG"' in text  # what was typed is kept
    with app.app_context(), for_tenant(tenant.id):
        assert db.session.scalar(select(func.count()).select_from(BankCsvMapping)) == 0
    ok = client.post(url + "/intake/bank-mapping", data={**_mapping_form(account="0011 0049 99888"),
                                                         "csrf_token": csrf_token(client, url)})
    assert ok.status_code == 303
    assert "Reading “vcb-10.csv” again" in client.get(url).get_data(as_text=True)
    run_jobs()
    record = _record(app, tenant, doc_id)
    assert (record.state, record.classified) == ("done", "bank_statement"), record.error
    [s] = _stored(app, tenant, doc_id)
    # Newest first in the file, oldest first here; the opening is the first balance less its amount.
    balances = [10_000_000 + sum(int(t.amount) for t in CSV_ROWS[:i + 1]) for i in range(len(CSV_ROWS))]
    assert s.lines == [(t.day, int(t.amount), "VND", t.name, t.account, t.memo, b) for t, b in zip(CSV_ROWS, balances,
                                                                                                   strict=True)]
    assert (s.format, s.bank, s.account, s.opening, s.closing) == ("csv", "Vietcombank", "0011004999888", 10_000_000,
                                                                   balances[-1])
    with app.app_context(), for_tenant(tenant.id):
        saved = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "intake.bank_mapping_saved")).all()
        assert len(saved) == 1 and saved[0].actor_id == staff.id
    # November's export of the same bank, filed as "other": read with the saved mapping, and it follows October.
    november = [Tx(date(2024, 11, 3), D("250000"), "Khách lẻ", None, "Nộp tiền")]
    next_id = _upload(app, tenant, person, csv_statement(november, D(balances[-1])), "vcb-11.csv", category="other")
    run_jobs()
    assert _record(app, tenant, next_id).classified == "bank_statement"
    [n] = _stored(app, tenant, next_id)
    assert (n.continuity, n.follows, n.lines[0][1]) == ("ok", s.id, 250_000)


def test_a_wrong_mapping_names_the_row_and_column_stores_nothing_and_ends_failed(app, run_jobs):
    from tests.api.util import bearer, issue_token

    tenant, person = _tenant(app)
    staff = make_staff(app, tenant)
    raw = issue_token(app, staff, tenant, "write")
    base = f"/api/v1/tenants/{tenant.slug}"
    # The amount mapped to the description column.
    put = app.test_client().put(f"{base}/bank-csv-mappings", headers=bearer(raw), json={
        "bank": "VCB", "header": CSV_HEADER, "date_format": "%d/%m/%Y", "decimal": ".", "currency": "VND",
        "columns": {"date": 0, "amount": 1, "balance": 6}})
    assert put.status_code == 200, put.json
    assert put.json["columns"] == {"date": 0, "amount": 1, "balance": 6}
    doc_id = _upload(app, tenant, person, csv_statement(CSV_ROWS, D("10000000")), "vcb.csv")
    run_jobs()
    record = _record(app, tenant, doc_id)
    # Row 5 of the file (after the preamble and the header), column 2.
    assert (record.state, record.error, record.attempts) == ("failed", "bank_amount:5:2", 1)
    assert _stored(app, tenant, doc_id) == []
    with app.app_context():
        runs = db.session.scalars(select(OutboxJob).where(OutboxJob.name == "intake.run",
                                                          OutboxJob.scope_tenant == str(tenant.id))).all()
        assert [(r.finished_at is not None, r.last_error) for r in runs] == [(True, None)]
    _client, page = _page(app, staff, tenant, doc_id)
    assert "Row 5, column 2 (“Mô tả”) does not hold an amount." in page
    assert "a column chosen as an amount holds something that is not a number" in page
    # Fixed on the page (debit and credit): read again, and right this time.
    client = app.test_client()
    login(client, staff)
    url = f"/t/{tenant.slug}/documents/{doc_id}"
    assert client.post(url + "/intake/bank-mapping", data={**_mapping_form(bank="VCB"),
                                                           "csrf_token": csrf_token(client, url)}).status_code == 303
    run_jobs()
    assert _record(app, tenant, doc_id).state == "done"
    assert [ln[1] for ln in _stored(app, tenant, doc_id)[0].lines] == [int(t.amount) for t in CSV_ROWS]
    # The API refuses a mapping that cannot be, naming every problem.
    refused = app.test_client().put(f"{base}/bank-csv-mappings", headers=bearer(raw), json={
        "bank": "VCB", "header": CSV_HEADER, "date_format": "%d/%m/%Y", "decimal": ".", "columns": {"date": 9}})
    assert refused.status_code == 422
    assert set(refused.json["errors"]) == {"columns.date", "columns.amount", "currency"}


def test_a_zero_byte_csv_is_refused_at_upload_with_a_clear_message(app):
    tenant, person = _tenant(app)
    message = _upload(app, tenant, person, b"", "empty.csv")
    assert message == "This file is empty. Check that you picked the right file, then upload it again."
    # Whatever reaches the step empty (another way in) fails with its own word, never a crash.
    for kind in ("csv", "ofx", "mt940"):
        with pytest.raises(BankFileError) as caught:
            read(kind, b"  \n", wanted=True)
        assert caught.value.word == "bank_empty"


# --- once, and isolation --------------------------------------------------------------------------------------

def test_a_second_run_of_the_step_leaves_one_set_of_transactions(app, run_jobs):
    tenant, person = _tenant(app)
    doc_id = _upload(app, tenant, person, ofx_v2(ACCOUNT, "VND", date(2024, 10, 1), date(2024, 10, 31), OCTOBER,
                                                 D("1000")), "a.ofx")
    run_jobs()
    before = _stored(app, tenant, doc_id)
    with app.app_context(), for_tenant(tenant.id):
        record = db.session.scalar(select(IntakeRecord).where(IntakeRecord.document_id == doc_id))
        record.steps = {k: v for k, v in record.steps.items() if k not in ("bank", "classify", "index", "pair")}
        record.state = "waiting"
        db.session.commit()
        assert chain.run(str(doc_id), "1") == "done"
    after = _stored(app, tenant, doc_id)
    assert len(after) == 1 and [s.lines for s in after] == [s.lines for s in before]
    with app.app_context(), for_tenant(tenant.id):
        assert db.session.scalar(select(func.count()).select_from(BankTransaction)) == len(OCTOBER)


def test_another_tenant_reads_no_statement_and_no_mapping(app, run_jobs):
    from tests.api.util import bearer, issue_token

    tenant, person = _tenant(app)
    doc_id = _upload(app, tenant, person, ofx_v1(ACCOUNT, "VND", date(2024, 10, 1), date(2024, 10, 31), OCTOBER,
                                                 D("1000")), "a.ofx")
    csv_id = _upload(app, tenant, person, csv_statement(CSV_ROWS, D("0")), "a.csv")
    run_jobs()
    staff = make_staff(app, tenant)
    own = issue_token(app, staff, tenant, "write")
    base = f"/api/v1/tenants/{tenant.slug}"
    client = app.test_client()
    assert client.put(f"{base}/bank-csv-mappings", headers=bearer(own), json={
        "bank": "VCB", "header": CSV_HEADER, "date_format": "%d/%m/%Y", "decimal": ".", "currency": "VND",
        "columns": {"date": 0, "debit": 4, "credit": 5}}).status_code == 200
    # The tenant's own reader sees the statement; the read is in the access log.
    mine = issue_token(app, person, tenant, "read")
    got = client.get(f"{base}/documents/{doc_id}/bank-statements", headers=bearer(mine))
    assert got.status_code == 200
    [s] = got.json["statements"]
    assert (s["minor_units"], s["currency"], s["continuity"]) == (0, "VND", "first")
    assert [t["amount"] for t in s["transactions"]] == [int(t.amount) for t in OCTOBER]
    with app.app_context(), for_tenant(tenant.id):
        assert db.session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "intake.bank_statement_read")) == 1
    # The attacker: another tenant's staff and admin, with their own tenant's tokens and A's ids.
    other, intruder = _tenant(app)
    other_staff = make_staff(app, other)
    theirs = issue_token(app, intruder, other, "read")
    their_staff = issue_token(app, other_staff, other, "write")
    obase = f"/api/v1/tenants/{other.slug}"
    assert client.get(f"{obase}/documents/{doc_id}/bank-statements", headers=bearer(theirs)).status_code == 404
    assert client.get(f"{obase}/bank-csv-mappings", headers=bearer(their_staff)).json == {"mappings": []}
    assert client.get(f"{base}/bank-csv-mappings", headers=bearer(their_staff)).status_code in (403, 404)
    assert client.get(f"{base}/documents/{doc_id}/bank-statements", headers=bearer(theirs)).status_code in (403, 404)
    web = app.test_client()
    login(web, other_staff)
    url = f"/t/{other.slug}/documents"
    assert web.post(f"{url}/{csv_id}/intake/bank-mapping", data={**_mapping_form(),
                                                                 "csrf_token": csrf_token(web, url)}).status_code == 404
    with app.app_context(), for_tenant(other.id):
        for model in (BankStatement, BankTransaction, BankCsvMapping):
            assert db.session.scalar(select(func.count()).select_from(model)) == 0  # RLS: none of theirs
    # A client's member may not save mappings at all.
    assert client.get(f"{base}/bank-csv-mappings", headers=bearer(mine)).status_code == 403


# --- reading numbers and layouts ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "decimal", "expected"), [
    ("1,234,567.50", ".", D("1234567.50")), ("1.234.567,50", ",", D("1234567.50")), ("(1,200.00)", ".", D("-1200.00")),
    ("500-", ".", D("-500")), ("2 000 000 ₫", ",", D("2000000")), ("VND 10,000", ".", D("10000")), ("", ".", None),
    ("-0.5", ".", D("-0.5")),
])
def test_numbers_as_banks_write_them(text, decimal, expected):
    assert parse_csv.number(text, decimal) == expected


@pytest.mark.parametrize(("text", "decimal"), [("Thanh toán", "."), ("1.234,56", "."), ("1,234.56", ","),
                                               ("12,34,567", ".")])
def test_what_is_not_a_number_with_that_separator_is_refused(text, decimal):
    with pytest.raises(ValueError):
        parse_csv.number(text, decimal)


def test_amounts_are_exact_minor_units_and_never_rounded():
    assert (to_minor(D("10000000.00"), "VND"), to_minor(D("12.30"), "USD")) == (10_000_000, 1230)
    with pytest.raises(BankFileError) as caught:
        to_minor(D("100.5"), "VND")
    assert caught.value.reason == "bank_decimals"


def test_the_csv_layout_skips_the_preamble_and_finds_the_header():
    table = parse_csv.layout(csv_statement(CSV_ROWS, D("0")))
    assert (table.delimiter, table.skip, table.header) == (",", 2, CSV_HEADER)
    assert table.fingerprint == parse_csv.fingerprint([" NGÀY  giao dịch", *CSV_HEADER[1:]])  # case, spacing aside
    assert table.rows[0][0] == 5  # the row number as a spreadsheet shows it
