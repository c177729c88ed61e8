"""A month of a sample company's books, from upload to a closed month the client approved.

About thirty documents reach the vault as a client sends them: supplier invoices as PDFs in five layouts and as
XML e-invoices, the client's own sales invoices (PDF and XML), November's bank statement and the payroll summary.
Intake reads them (real worker), staff turn each invoice into an entry from what the page prefills (checking it
against the invoice and correcting what intake misread, as they would), book the payroll from its summary,
reconcile the bank statement, and close the month with a second person's review and the client's approval.

Every expected figure is worked out here from the invoices' ground truth (``tests.data``) and the payroll
summary's own numbers, never read back from the books under test.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import func, select

from portal.documents import services as documents
from portal.extensions import db
from portal.ledger import closing, open_items, reconcile, reports, services
from portal.ledger.models import Entry
from portal.work import services as work
from tenants.context import Scope, bound
from tenants.models import Tenant, User
from tenants.policy import Role
from tests.data import einvoices, invoices
from tests.factories import csrf_token, login, make_person, make_tenant
from tests.intake.bank_samples import Tx, ofx_v2
from tests.intake.test_intake import make_staff
from tests.ledger.test_closing import _report_sha, _reviewer
from tests.ledger.test_ledger import as_person

CLIENT = invoices.BUYERS[0]  # (name, tax code): the company whose books these are
CUSTOMERS = [invoices.BUYERS[1], ("Công ty TNHH Bình An", invoices._mst(random.Random(7)))]
NOVEMBER, END = date(2026, 11, 1), date(2026, 11, 30)
CAPITAL = 500_000_000
# The payroll summary of November (what the payroll team sends): gross, the employees' insurance (8 + 1.5 + 1 %),
# PIT withheld, the employer's insurance (17.5 + 3 + 1 %) and union fee (2 %).
GROSS, PIT = 60_000_000, 1_200_000
EMPLOYEE = {"3383": GROSS * 8 // 100, "3384": GROSS * 15 // 1000, "3385": GROSS // 100}
EMPLOYER = {"3383": GROSS * 175 // 1000, "3384": GROSS * 3 // 100, "3385": GROSS // 100, "3382": GROSS * 2 // 100}
NET_PAY = GROSS - sum(EMPLOYEE.values()) - PIT
BANK_FEE, STRANGER = 22_000, 1_000_000  # a fee a rule books; money in nobody can explain yet


@dataclass
class Invoice:
    """One invoice as sent: its file, and the entry it should become (from its truth)."""

    name: str
    body: bytes
    sale: bool
    net: int
    vat: dict[str, int]  # rate -> VAT (rates bearing VAT only)
    party: str  # the other party as staff write it: "Name (tax code)"
    due: date | None
    doc_id: object = None

    @property
    def total(self) -> int:
        return self.net + sum(self.vat.values())

    def lines(self) -> list[tuple[str, int, int]]:
        """The entry as the chart's rules make it: purchase Dr 6422 / Dr 1331 / Cr 331, sale Dr 131 / Cr 5111 /
        Cr 33311, one VAT line per rate."""
        if self.sale:
            return sorted([("131", self.total, 0), ("5111", 0, self.net),
                           *(("33311", 0, tax) for tax in self.vat.values())])
        return sorted([("6422", self.net, 0), *(("1331", tax, 0) for tax in self.vat.values()),
                       ("331", 0, self.total)])


def _pdf_invoices() -> list[Invoice]:
    """Fourteen purchase invoices in five layouts and six sales invoices, all in VND, all dated in November."""
    rng = random.Random(2026_11)
    chosen = [s for s in invoices.samples(60) if s.truth["currency"] == "VND" and s.layout != "en_table"]
    purchases = chosen[:14]
    sales = [s for s in chosen[14:] if s.layout == "vn_vat"][:6]
    out = []
    for sample in purchases + sales:
        sale = sample in sales
        issued = NOVEMBER + timedelta(days=rng.randrange(0, 25))
        sample.truth["issue_date"] = issued.isoformat()
        if sample.truth["due_date"]:
            sample.truth["due_date"] = (issued + timedelta(days=14)).isoformat()
        customer = CUSTOMERS[len(out) % 2]
        if sale:
            sample.truth["supplier_name"], sample.truth["supplier_tax_code"] = CLIENT
            sample.buyer = customer
        else:
            sample.buyer = CLIENT
        t = sample.truth
        vat = int(Decimal(t["vat_amount"]))
        party = f"{customer[0]} ({customer[1]})" if sale else f"{t['supplier_name']} ({t['supplier_tax_code']})"
        out.append(Invoice(f"{'ban' if sale else 'mua'}-{sample.number}.pdf", sample.pdf(), sale,
                           int(Decimal(t["net"])), {t["vat_rate"]: vat} if vat else {}, party,
                           date.fromisoformat(t["due_date"]) if t["due_date"] else None))
    return out


def _xml_invoices() -> list[Invoice]:
    """Two supplier e-invoices and two of the client's own, with two VAT rates and a line bearing none."""
    out = []
    for n, sale in enumerate((False, False, True, True)):
        seller = CLIENT if sale else (f"Công ty TNHH Điện tử Số {n}", invoices._mst(random.Random(n)))
        buyer = CUSTOMERS[n % 2] if sale else CLIENT
        truth = {**einvoices.TRUTH, "number": str(500 + n), "date": f"2026-11-{10 + n}", "seller": seller,
                 "buyer": buyer, "series": "C26TAA" if sale else "C26TBB"}
        groups = einvoices.groups(truth)
        vat = {rate: int(tax) for rate, (_base, tax) in groups.items() if tax}
        other = buyer if sale else seller
        out.append(Invoice(f"hoa-don-{n}.xml", einvoices.make_xml(truth), sale,
                           int(sum(base for base, _tax in groups.values())), vat, f"{other[0]} ({other[1]})", None))
    return out


def _statement(sent: list[Invoice]) -> tuple[bytes, dict[str, object]]:
    """November's statement of the client's account: the capital paid in, one customer paying three invoices at
    once, the other paying one invoice in two parts, two suppliers paid, the net pay, a fee and a stranger."""
    sales = [i for i in sent if i.sale]
    first = [i for i in sales if CUSTOMERS[0][1] in i.party][:3]
    split = next(i for i in sales if CUSTOMERS[1][1] in i.party)
    paid = [i for i in sent if not i.sale][:2]
    half = split.total // 2
    txs = [Tx(date(2026, 11, 1), Decimal(CAPITAL), "Chu so huu", None, "Gop von", "T1"),
           Tx(date(2026, 11, 26), Decimal(sum(i.total for i in first)), CUSTOMERS[0][0], None,
              "TT hoa don thang 11", "T2"),
           Tx(date(2026, 11, 27), Decimal(half), CUSTOMERS[1][0], None, "TT dot 1", "T3"),
           Tx(date(2026, 11, 28), Decimal(split.total - half), CUSTOMERS[1][0], None, "TT dot 2", "T4"),
           *(Tx(date(2026, 11, 28), -Decimal(i.total), i.party.split(" (")[0], None, "Thanh toan", f"T5{n}")
             for n, i in enumerate(paid)),
           Tx(date(2026, 11, 30), -Decimal(NET_PAY), "Luong T11", None, "Chi luong thang 11", "T6"),
           Tx(date(2026, 11, 30), -Decimal(BANK_FEE), None, None, "Phi dich vu SMS Banking", "T7"),
           Tx(date(2026, 11, 30), Decimal(STRANGER), "NGUYEN VAN A", None, "chuyen tien", "T8")]
    closing_balance = sum((t.amount for t in txs), Decimal(0))
    body = ofx_v2("0071000123456", "VND", NOVEMBER, END, txs, closing_balance)
    return body, {"first": first, "split": split, "half": half, "paid": paid, "closing": int(closing_balance)}


def _form(client, slug: str, doc_id) -> dict:  # noqa: ANN001
    page = client.get(f"/t/{slug}/books/entries/new?document={doc_id}").get_data(as_text=True)
    fields = dict(re.findall(r'name="([^"]+)"[^>]*?value="([^"]*)"', page))
    fields["csrf_token"] = csrf_token(client, f"/t/{slug}/books")
    return fields


def _lines(form: dict) -> list[tuple[str, int, int]]:
    return sorted((form[f"line-{i}-account"], int(form.get(f"line-{i}-debit") or 0),
                   int(form.get(f"line-{i}-credit") or 0))
                  for i in range(1, int(form["line_count"]) + 1) if form.get(f"line-{i}-account"))


def _with_lines(form: dict, lines: list[tuple[str, int, int, str]]) -> dict:
    """The form with its lines replaced by ``lines`` (account, debit, credit, counterparty)."""
    kept = {k: v for k, v in form.items() if not k.startswith("line-")}
    kept["line_count"] = str(len(lines))
    for i, (account, debit, credit, party) in enumerate(lines, start=1):
        kept.update({f"line-{i}-account": account, f"line-{i}-debit": str(debit or ""),
                     f"line-{i}-credit": str(credit or ""), f"line-{i}-counterparty": party})
    return kept


def test_a_month_from_thirty_documents_to_a_closed_month_the_client_approved(app, run_jobs):
    with app.app_context():
        tenant = make_tenant()
        owner = make_person(Role.CLIENT_ADMIN, tenant)
        world = type("World", (), {"id": tenant.id, "slug": tenant.slug, "client": owner})()
    staff = make_staff(app, world)
    world.staff = staff
    reviewer = _reviewer(app, type("W", (), {"id": world.id, "admin": make_admin(app)})())
    with app.app_context(), as_person(world, reviewer) as (user, t):
        services.start_books(user, t, "vn_tt133", tax_code=CLIENT[1])

    # The client sends the month: invoices, the payroll summary.
    sent = _pdf_invoices() + _xml_invoices()
    statement, bank = _statement(sent)
    payroll_csv = ("nhan_vien,luong_gop,bhxh,bhyt,bhtn,thue_tncn,thuc_linh\n"
                   f"Tổng (12 người),{GROSS},{EMPLOYEE['3383']},{EMPLOYEE['3384']},{EMPLOYEE['3385']},{PIT},"
                   f"{NET_PAY}\n").encode()
    with app.app_context():
        user = db.session.get(User, owner.id)
        with bound(Scope(user_id=user.id, tenant_ids=frozenset({world.id}), role=Role.CLIENT_ADMIN)):
            t = db.session.get(Tenant, world.id)
            for invoice in sent:
                result = documents.upload(user, t, [invoice.body], filename=invoice.name,
                                          target=documents.upload_target(user, category="invoice",
                                                                         period="2026-11"))
                assert result.ok, result.message
                invoice.doc_id = result.document.id
            result = documents.upload(user, t, [payroll_csv], filename="bang-luong-2026-11.csv",
                                      target=documents.upload_target(user, category="payroll_input",
                                                                     period="2026-11"))
            payroll_doc = result.document.id
            result = documents.upload(user, t, [statement], filename="sao-ke-2026-11.ofx",
                                      target=documents.upload_target(user, category="bank_statement",
                                                                     period="2026-11"))
            assert result.ok, result.message
    run_jobs()  # intake reads every file

    browser = app.test_client()
    login(browser, staff)
    corrected = 0
    for invoice in sent:
        form = _form(browser, world.slug, invoice.doc_id)
        offered = _lines(form) if form.get("line_count") else []
        if offered != invoice.lines():  # staff check the prefilled lines against the invoice and correct them
            corrected += 1
        lines = [(a, d, c, invoice.party if a in ("131", "331") else "") for a, d, c in invoice.lines()]
        form = _with_lines(form, lines)
        form.update({"then": "post", "document_id": str(invoice.doc_id),
                     "due_date": invoice.due.isoformat() if invoice.due else ""})
        if not form.get("entry_date"):
            form["entry_date"] = "2026-11-15"
        assert browser.post(f"/t/{world.slug}/books/entries", data=form).status_code == 303, invoice.name
    # Intake reads text PDFs and e-invoices nearly always right: at most two of 24 invoices needed a correction.
    assert corrected <= 2, f"{corrected} prefilled entries needed correcting"

    def manual(day: str, memo: str, lines: list[tuple[str, int, int]], document=None) -> None:  # noqa: ANN001
        form = _with_lines({"csrf_token": csrf_token(browser, f"/t/{world.slug}/books")},
                           [(a, d, c, "") for a, d, c in lines])
        form.update({"entry_date": day, "memo": memo, "then": "post",
                     **({"document_id": str(document)} if document else {})})
        answer = browser.post(f"/t/{world.slug}/books/entries", data=form)
        said = re.findall(r'class="(?:field-)?error"[^>]*>([^<]+)', answer.get_data(as_text=True))
        assert answer.status_code == 303, said

    manual("2026-11-01", "Góp vốn", [("1121", CAPITAL, 0), ("4111", 0, CAPITAL)])
    manual("2026-11-30", "Lương tháng 11", [("6422", GROSS, 0), ("334", 0, GROSS)], payroll_doc)
    manual("2026-11-30", "Khấu trừ lương", [("334", sum(EMPLOYEE.values()) + PIT, 0), ("3335", 0, PIT),
                                            *((code, 0, amount) for code, amount in EMPLOYEE.items())], payroll_doc)
    manual("2026-11-30", "Bảo hiểm, KPCĐ doanh nghiệp đóng",
           [("6422", sum(EMPLOYER.values()), 0), *((code, 0, amount) for code, amount in EMPLOYER.items())],
           payroll_doc)

    # Reconcile the statement: the link to 1121 once; the capital is an entry already in the books, one payment
    # settles three invoices (a suggestion accepted in one click), one invoice is paid in two parts, suppliers
    # are paid, the net pay goes to 334, a rule books the fee; the stranger's money stays unexplained.
    with app.app_context(), as_person(world, staff) as (user, t):
        [seen] = reconcile.seen_accounts()
        link = reconcile.link_account(user, t, seen.ref, "1121")
        by_day = {}
        for txn in reconcile.unmatched(link, limit=None):
            by_day.setdefault((txn.booked_on, txn.amount), txn.id)
        offered = {(s.txn.booked_on, s.txn.amount): s
                   for s in reconcile.suggestions(t, link, reconcile.unmatched(link, limit=None))}
        items = {i.document_id: i for i in open_items.items(t, "receivable", END)}
        items |= {i.document_id: i for i in open_items.items(t, "payable", END)}
        capital = offered[(date(2026, 11, 1), CAPITAL)]
        assert capital.best.key.startswith("entry:")
        reconcile.accept(user, t, capital.txn.id, capital.best.key)
        three = offered[(date(2026, 11, 26), sum(i.total for i in bank["first"]))]
        assert sorted(three.best.allocations) == sorted((items[i.doc_id].line_id, i.total) for i in bank["first"])
        reconcile.accept(user, t, three.txn.id, three.best.key)
        split = items[bank["split"].doc_id].line_id
        reconcile.reconcile_items(user, t, by_day[(date(2026, 11, 27), bank["half"])], {split: bank["half"]})
        rest = bank["split"].total - bank["half"]
        reconcile.reconcile_items(user, t, by_day[(date(2026, 11, 28), rest)], {split: rest})
        for invoice in bank["paid"]:
            reconcile.reconcile_items(user, t, by_day[(date(2026, 11, 28), -invoice.total)],
                                      {items[invoice.doc_id].line_id: invoice.total})
        reconcile.reconcile_to_account(user, t, by_day[(END, -NET_PAY)], "334", "Chi lương tháng 11")
        reconcile.save_rule(user, t, reconcile.RuleInput(reference="phi dich vu", direction="out", account="6422",
                                                         description="Phí ngân hàng"))
        applied = reconcile.apply_rules(user, t, [str(h.txn.id) for h in reconcile.rule_hits()])
        assert len(applied.posted) == 1 and not applied.refused
        report = reconcile.report(link, END)
        assert report.statement_balance == bank["closing"]
        assert [x.amount for x in report.unbooked] == [STRANGER] and report.unpresented == []
        assert report.difference == 0

    # Close the month: the staff member submits it, a second person reviews, the client approves the report.
    with app.app_context(), as_person(world, staff) as (user, t):
        task_id = str(closing.start(user, t, NOVEMBER, str(reviewer.id)).task_id)
        work.move(user, t, task_id, "submit")
    run_jobs()
    with app.app_context(), as_person(world, reviewer) as (user, t):
        work.move(user, t, task_id, "approve")
    with app.app_context(), as_person(world, owner) as (user, t):
        work.move(user, t, task_id, "client_approve", seen_sha256=_report_sha(services.period_of(NOVEMBER)))
    run_jobs()

    sales = [i for i in sent if i.sale]
    purchases = [i for i in sent if not i.sale]
    revenue = sum(i.net for i in sales)
    expenses = sum(i.net for i in purchases) + GROSS + sum(EMPLOYER.values()) + BANK_FEE
    output_vat = sum(sum(i.vat.values()) for i in sales)
    input_vat = sum(sum(i.vat.values()) for i in purchases)
    with app.app_context(), as_person(world, owner) as (user, t):
        assert services.period_of(NOVEMBER).state == "closed"
        # An entry per invoice, four by hand, and from the bank: two for the split invoice, one per supplier paid,
        # the three invoices' payment, the net pay and the fee (the capital was in the books already).
        assert db.session.scalar(select(func.count()).select_from(Entry).where(Entry.state == "posted")) == \
            len(sent) + 4 + 2 + len(bank["paid"]) + 3
        pl = reports.profit_and_loss(END, since=NOVEMBER)
        assert (pl.total("revenue"), pl.total("expense")) == (revenue, expenses)
        rows = reports.trial_balance(END)
        assert sum(r.debit for r in rows) == sum(r.credit for r in rows)
        sheet, unclosed = reports.balance_sheet(END)
        assert unclosed == revenue - expenses
        assert sheet.total("asset") == sheet.total("liability") + sheet.total("equity") + unclosed
        balances = {r.code: r.balance for r in rows}
        received = sum(i.total for i in bank["first"]) + bank["split"].total
        paid_out = sum(i.total for i in bank["paid"])
        assert balances["131"] == sum(i.total for i in sales) - received
        assert balances["331"] == sum(i.total for i in purchases) - paid_out
        assert balances["1331"] == input_vat and balances["33311"] == output_vat
        assert balances.get("334", 0) == 0  # accrued and paid
        assert balances["1121"] == CAPITAL + received - paid_out - NET_PAY - BANK_FEE == bank["closing"] - STRANGER
        vat = reports.vat_summary(END, since=NOVEMBER, output_code="33311", input_codes=("1331", "1332"))
        assert sum(r.due for r in vat) == output_vat - input_vat
        # What customers owe, by customer, is the sales invoices' totals.
        owed, total = open_items.ageing(t, "receivable", END)
        assert total.total == balances["131"]
        by_customer = {r.counterparty: r.total for r in owed}
        settled = {id(i) for i in bank["first"]} | {id(bank["split"])}
        for name, code in CUSTOMERS:
            assert by_customer[f"{name} ({code})"] == sum(i.total for i in sales
                                                          if code in i.party and id(i) not in settled)


def make_admin(app):  # noqa: ANN001, ANN201
    with app.app_context():
        return make_person(Role.PROVIDER_ADMIN)
