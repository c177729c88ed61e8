"""Bank reconciliation through the pages, the API and the services, on real PostgreSQL, Redis and intake.

The month worked out by hand (VND, November 2026, Vietcombank •••• 3456 kept on 1121):

  books                                                   the bank statement (opening 100,000,000)
  31/10 opening balance      Dr 1121 100,000,000
  02/11 sale 101 (Hoa Sen)   Dr 131 11,000,000
  05/11 sale 102 (Hoa Sen)   Dr 131  5,500,000
  10/11 sale 103 (Hoa Sen)   Dr 131  3,300,000
  03/11 purchase 555 (Sao Mai)   Cr 331 22,000,000
  12/11 cash withdrawn, by hand  Cr 1121 5,000,000       12/11  -5,000,000  cash withdrawn
                                                          15/11 -10,000,000  Sao Mai, 1st part of 555
                                                          20/11 +19,800,000  Hoa Sen: 101 + 102 + 103
                                                          25/11  +3,000,000  Nguyen Van A: no match
                                                          28/11 -12,000,000  Sao Mai, 2nd part of 555
  29/11 cheque, by hand      Cr 1121 1,500,000            (not on the statement yet)
                                                          30/11     -22,000  bank fee (a rule)

Statement on 30/11: 100,000,000 - 4,222,000 = 95,778,000. Books on 30/11, all but the 3,000,000 booked:
100,000,000 - 5,000,000 - 1,500,000 - 10,000,000 + 19,800,000 - 12,000,000 - 22,000 = 91,278,000.
Difference = 95,778,000 - 91,278,000 - 3,000,000 (not in the books) + (-1,500,000) (not on the statement) = 0.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal as D
from types import SimpleNamespace

from sqlalchemy import func, select

from portal.documents import services as documents
from portal.extensions import db
from portal.ledger import open_items, reconcile, services
from portal.ledger.models import BankMatch, Entry, Line
from portal.ledger.services import LineInput
from tenants.audit import AuditEvent
from tenants.context import Scope, bound
from tenants.models import Tenant, User
from tenants.policy import Role
from tests.factories import csrf_token, login
from tests.intake.bank_samples import Tx, ofx_v1
from tests.ledger.test_ledger import as_person, books

ACCOUNT = "0011004123456"
HOA_SEN, SAO_MAI = "Công ty TNHH Hoa Sen (0101234567)", "Công ty CP Phần mềm Sao Mai (0309876543)"
NOVEMBER = [Tx(date(2026, 11, 12), D("-5000000"), "NGUYEN THI THU QUY", None, "Rut tien mat quy", "B1"),
            Tx(date(2026, 11, 15), D("-10000000"), "CTY CP PHAN MEM SAO MAI", "0441000555", "Thanh toan dot 1 HD 555",
               "B2"),
            Tx(date(2026, 11, 20), D("19800000"), "CONG TY TNHH HOA SEN", "0071000101", "TT HD 101 102 103", "B3"),
            Tx(date(2026, 11, 25), D("3000000"), "NGUYEN VAN A", None, "chuyen tien", "B4"),
            Tx(date(2026, 11, 28), D("-12000000"), "CTY CP PHAN MEM SAO MAI", "0441000555", "Thanh toan dot 2 HD 555",
               "B5"),
            Tx(date(2026, 11, 30), D("-22000"), None, None, "Phí dịch vụ SMS Banking T11", "B6")]
OPENING = 100_000_000
CLOSING = OPENING - 4_222_000  # the lines add up to -4,222,000
END = date(2026, 11, 30)


def _post(world, day: date, lines: list[LineInput], memo: str, due: date | None = None) -> Entry:  # noqa: ANN001
    with as_person(world, world.staff) as (user, tenant):
        entry = services.save_draft(user, tenant, day, lines, memo=memo, due_date=due, post_it=True)
        return SimpleNamespace(id=entry.id, number=entry.number,
                               item=next((ln.id for ln in entry.lines if ln.account.code in ("131", "331")), None))


def _statement(app, world, run_jobs, txs: list[Tx], opening: int = OPENING):  # noqa: ANN001, ANN202
    """The client's admin uploads the month's OFX statement; intake reads it."""
    closing = D(opening) + sum((t.amount for t in txs), D(0))
    body = ofx_v1(ACCOUNT, "VND", date(2026, 11, 1), END, txs, closing)
    with app.app_context():
        user = db.session.get(User, world.client.id)
        with bound(Scope(user_id=user.id, tenant_ids=frozenset({world.id}), role=Role.CLIENT_ADMIN)):
            result = documents.upload(user, db.session.get(Tenant, world.id), [body], filename="vcb-2026-11.ofx",
                                      target=documents.upload_target(user, category="bank_statement"))
            assert result.ok, result.message
    run_jobs()


def _month(app, run_jobs) -> SimpleNamespace:
    """The books and the statement of the module's docstring, before anything is reconciled."""
    world = books(app)
    with app.app_context():
        world.opening = _post(world, date(2026, 10, 31), [LineInput("1121", OPENING, 0), LineInput("4111", 0, OPENING)],
                              "Số dư đầu kỳ")
        world.sales = [_post(world, day, [LineInput("131", total, 0, counterparty=HOA_SEN),
                                          LineInput("5111", 0, total - vat), LineInput("33311", 0, vat)],
                             f"Bán hàng: 1C26THS {number:07d} · Hoa Sen", due)
                       for day, number, total, vat, due in ((date(2026, 11, 2), 101, 11_000_000, 1_000_000,
                                                             date(2026, 11, 30)),
                                                            (date(2026, 11, 5), 102, 5_500_000, 500_000,
                                                             date(2026, 12, 5)),
                                                            (date(2026, 11, 10), 103, 3_300_000, 300_000,
                                                             date(2026, 12, 10)))]
        world.purchase = _post(world, date(2026, 11, 3), [LineInput("6422", 20_000_000, 0),
                                                          LineInput("1331", 2_000_000, 0),
                                                          LineInput("331", 0, 22_000_000, counterparty=SAO_MAI)],
                               "Mua hàng: 1K26TSM 0000555 · Sao Mai", date(2026, 11, 30))
        world.cash = _post(world, date(2026, 11, 12), [LineInput("1111", 5_000_000, 0),
                                                       LineInput("1121", 0, 5_000_000)], "Rút tiền mặt về quỹ")
        world.cheque = _post(world, date(2026, 11, 29), [LineInput("6422", 1_500_000, 0),
                                                         LineInput("1121", 0, 1_500_000)], "Séc trả tiền sửa chữa")
    _statement(app, world, run_jobs, NOVEMBER)
    return world


def _browser(app, person):  # noqa: ANN001, ANN202
    client = app.test_client()
    login(client, person)
    return client


def _txns(app, world) -> dict[date, str]:  # noqa: ANN001
    """The statement's transactions by booking day (one a day here)."""
    with app.app_context(), as_person(world, world.staff):
        [link] = reconcile.links()
        rows = reconcile.unmatched(link) + [t for _m, t in reconcile.recent_matches(link)]
        return {t.booked_on: str(t.id) for t in rows}


def _flash(html: str) -> str:
    return " ".join(re.findall(r'class="flash[^"]*"[^>]*>(.*?)</', html, re.S))


def test_a_month_is_reconciled_to_a_difference_of_zero(app, run_jobs):
    world = _month(app, run_jobs)
    staff = _browser(app, world.staff)
    slug = world.slug

    # The bank account read from the statement is linked once to 1121.
    page = staff.get(f"/t/{slug}/books/bank").get_data(as_text=True)
    assert "Vietcombank" in page and "•••• 3456" in page and "not linked" in page
    with app.app_context(), as_person(world, world.staff):
        [seen] = reconcile.seen_accounts()
    token = csrf_token(staff, f"/t/{slug}/books/bank")
    refused = staff.post(f"/t/{slug}/books/bank/link", data={"csrf_token": token, "bank_account": seen.ref,
                                                             "account": "112"})  # a heading, not a leaf
    assert refused.status_code == 422 and "Choose a ledger account under the bank account" in refused.text
    r = staff.post(f"/t/{slug}/books/bank/link",
                   data={"csrf_token": token, "bank_account": seen.ref, "account": "1121"})
    assert r.status_code == 303
    workspace = r.headers["Location"]
    assert "0 of 6 transactions reconciled" in staff.get(workspace).text
    days = _txns(app, world)

    # What the engine offers before anything is accepted (the cash withdrawn is an entry already in the books).
    with app.app_context(), as_person(world, world.staff) as (_user, tenant):
        [link] = reconcile.links()
        offered = {s.txn.booked_on: s for s in reconcile.suggestions(tenant, link, reconcile.unmatched(link))}
    assert offered[date(2026, 11, 12)].best.key == f"entry:{world.cash.id}"
    assert offered[date(2026, 11, 15)].best.allocations == ((world.purchase.item, 10_000_000),)
    assert sorted(offered[date(2026, 11, 20)].best.allocations) == sorted(
        (s.item, v) for s, v in zip(world.sales, (11_000_000, 5_500_000, 3_300_000), strict=True))
    assert offered[date(2026, 11, 25)].candidates == []
    # The second part of 555 is what is left of it once the first part is taken: 12,000,000 exactly.
    assert offered[date(2026, 11, 28)].best.allocations == ((world.purchase.item, 12_000_000),)
    assert [r.code for r in offered[date(2026, 11, 28)].best.reasons] == ["amount", "reference", "name", "date"]
    assert offered[date(2026, 11, 30)].candidates == []  # no rule yet

    def accept(day: date, key: str, back: str = "workspace"):  # noqa: ANN202
        return staff.post(f"/t/{slug}/books/bank/transactions/{days[day]}/accept",
                          data={"csrf_token": token, "suggestion": key, "back": back})

    # The cash withdrawn: only the match is recorded.
    assert accept(date(2026, 11, 12), offered[date(2026, 11, 12)].best.key).status_code == 303
    # Hoa Sen's one payment for three invoices, clicked twice: one entry.
    set_key = offered[date(2026, 11, 20)].best.key
    assert accept(date(2026, 11, 20), set_key).status_code == 303
    again = accept(date(2026, 11, 20), set_key)
    assert again.status_code == 303
    assert "reconciled already" in _flash(staff.get(again.headers["Location"]).text)

    # Sao Mai's first part, by hand: a wrong amount is refused and kept as typed, then corrected.
    field = f"item-{world.purchase.item}"
    wrong = staff.post(f"/t/{slug}/books/bank/transactions/{days[date(2026, 11, 15)]}/match",
                       data={"csrf_token": token, "how": "items", field: "9,000,000"})
    assert wrong.status_code == 422
    assert "add up to ₫9,000,000; the transaction is ₫10,000,000" in wrong.text and 'value="9,000,000"' in wrong.text
    right = staff.post(f"/t/{slug}/books/bank/transactions/{days[date(2026, 11, 15)]}/match",
                       data={"csrf_token": token, "how": "items", field: "10,000,000"})
    assert right.status_code == 303
    # The second part: the best suggestion now (the rest of the invoice).
    with app.app_context(), as_person(world, world.staff) as (_user, tenant):
        [link] = reconcile.links()
        now = {s.txn.booked_on: s for s in reconcile.suggestions(tenant, link, reconcile.unmatched(link))}
    assert accept(date(2026, 11, 28), now[date(2026, 11, 28)].best.key).status_code == 303

    # The bank fee by a rule: refused with every error at once, then saved, previewed, applied.
    bad = staff.post(f"/t/{slug}/books/bank/rules", data={"csrf_token": token, "account": "112", "description": "x"})
    assert bad.status_code == 422
    for message in ("Give what the counterparty contains, what the reference contains, or both.",
                    "Choose money in or money out.", "Choose an active account that takes postings",
                    "Say what it is (2 to 200 characters)"):
        assert message in bad.text
    assert staff.post(f"/t/{slug}/books/bank/rules", data={
        "csrf_token": token, "reference": "phi dich vu", "direction": "out", "account": "6422",
        "description": "Phí ngân hàng"}).status_code == 303
    preview = staff.get(f"/t/{slug}/books/bank/rules/preview").text
    assert preview.count('name="transaction"') == 1 and days[END] in preview and "Dr 6422 / Cr 1121" in preview
    applied = staff.post(f"/t/{slug}/books/bank/rules/apply", data={"csrf_token": token, "transaction": days[END]})
    assert "1 entry posted by a rule" in _flash(staff.get(applied.headers["Location"]).text)
    assert "5 of 6 transactions reconciled" in staff.get(workspace).text

    with app.app_context(), as_person(world, world.staff) as (_user, tenant):
        [link] = reconcile.links()
        # One payment entry for the three invoices, each line with its invoice's counterparty; none open now.
        [payment] = db.session.scalars(select(Entry).join(BankMatch, BankMatch.entry_id == Entry.id)
                                       .where(BankMatch.transaction_id == reconcile.get_transaction(
                                           days[date(2026, 11, 20)])[0].id)).all()
        assert [(ln.account.code, ln.debit, ln.credit, ln.counterparty) for ln in payment.lines] == [
            ("1121", 19_800_000, 0, None),
            ("131", 0, 11_000_000, HOA_SEN), ("131", 0, 5_500_000, HOA_SEN), ("131", 0, 3_300_000, HOA_SEN)]
        assert payment.entry_date == date(2026, 11, 20) and payment.source == "bank" and payment.document_id
        assert open_items.items(tenant, "receivable", END) == []
        assert open_items.items(tenant, "payable", END) == []  # 555 paid by two transactions
        bank_entries = db.session.scalar(select(func.count()).select_from(Entry).where(Entry.source == "bank"))
        assert bank_entries == 4  # Hoa Sen, two Sao Mai parts, the fee: the cash withdrawn was in the books already
        fee_lines = db.session.execute(select(Line.debit, Line.credit).join(Entry, Entry.id == Line.entry_id)
                                       .where(Entry.entry_date == END, Entry.source == "bank")
                                       .order_by(Line.line_no)).all()
        assert fee_lines == [(22_000, 0), (0, 22_000)]

        report = reconcile.report(link, END)
        assert report.statement_balance == CLOSING == 95_778_000
        assert report.book_balance == 91_278_000
        assert [(x.day, x.amount) for x in report.unbooked] == [(date(2026, 11, 25), 3_000_000)]
        assert [(x.day, x.amount, x.number) for x in report.unpresented] == [
            (date(2026, 11, 29), -1_500_000, world.cheque.number)]
        assert report.difference == 0
        assert (report.start, report.bank_opening, report.book_opening) == (date(2026, 11, 1), OPENING, OPENING)
        link_id = link.id
        mid = reconcile.report(link, date(2026, 11, 20))  # everything up to then is matched
        assert (mid.statement_balance, mid.book_balance, mid.unbooked, mid.unpresented, mid.difference) == (
            104_800_000, 104_800_000, [], [], 0)
        actions = set(db.session.scalars(select(AuditEvent.action).where(AuditEvent.action.like("ledger.%"))))
        assert {"ledger.bank_account_linked", "ledger.reconciled", "ledger.settled", "ledger.rule_saved",
                "ledger.rule_applied"} <= actions

    # The client reads the report: the difference said prominently.
    client = _browser(app, world.client)
    shown = client.get(f"/t/{slug}/books/bank/{link_id}/report?on=2026-11-30").text
    assert re.search(r'data-testid="difference">₫0<', shown)
    assert "NGUYEN VAN A" in shown and "Séc trả tiền sửa chữa" in shown
    assert client.get(workspace).status_code == 403  # reconciling is the provider's

    # Undo Hoa Sen's match: the payment is reversed, the invoices open again, the difference stays explained.
    with app.app_context(), as_person(world, world.staff):
        match = reconcile.match_of(reconcile.get_transaction(days[date(2026, 11, 20)])[0])
        match_id = match.id
    undone = staff.post(f"/t/{slug}/books/bank/matches/{match_id}/undo", data={"csrf_token": token})
    assert "is reversed by entry" in _flash(staff.get(undone.headers["Location"]).text)
    assert "4 of 6 transactions reconciled" in staff.get(workspace).text
    with app.app_context(), as_person(world, world.staff) as (_user, tenant):
        [link] = reconcile.links()
        assert sum(i.open for i in open_items.items(tenant, "receivable", END)) == 19_800_000
        report = reconcile.report(link, END)
        assert [x.amount for x in report.unbooked] == [19_800_000, 3_000_000]
        assert [x.amount for x in report.unpresented] == [-1_500_000]  # the payment and its reversal cancel out
        assert report.difference == 0
    again = accept(date(2026, 11, 20), set_key)  # and accepted again: settled again
    assert "Reconciled: entry" in _flash(staff.get(again.headers["Location"]).text)
    with app.app_context(), as_person(world, world.staff) as (_user, tenant):
        assert open_items.items(tenant, "receivable", END) == []
        assert db.session.scalar(select(func.count()).select_from(AuditEvent)
                                 .where(AuditEvent.action == "ledger.match_undone")) == 1


def test_the_api_lists_suggestions_accepts_once_and_reports(app, run_jobs):
    from portal.api.tokens import create_token

    world = books(app)
    with app.app_context():
        world.opening = _post(world, date(2026, 10, 31), [LineInput("1121", OPENING, 0), LineInput("4111", 0, OPENING)],
                              "Số dư đầu kỳ")
        sale = _post(world, date(2026, 11, 2), [LineInput("131", 7_700_000, 0, counterparty=HOA_SEN),
                                                LineInput("5111", 0, 7_000_000), LineInput("33311", 0, 700_000)],
                     "Bán hàng: 1C26THS 0000201 · Hoa Sen", date(2026, 11, 30))
    _statement(app, world, run_jobs, [Tx(date(2026, 11, 9), D("7700000"), "CONG TY TNHH HOA SEN", None, "HD 201")])
    with app.app_context(), as_person(world, world.staff) as (user, tenant):
        [seen] = reconcile.seen_accounts()
        link = reconcile.link_account(user, tenant, seen.ref, "1121")
        link_id = link.id
        api_token = create_token(user, tenant, "reconcile", "write")
    api = app.test_client()
    headers = {"Authorization": f"Bearer {api_token}"}
    base = f"/api/v1/tenants/{world.slug}/books"
    listed = api.get(f"{base}/bank-accounts/{link_id}/unmatched", headers=headers).json
    assert (listed["reconciled"], listed["total"]) == (0, 1)
    [row] = listed["items"]
    assert row["amount"] == 7_700_000 and row["best"] == f"items:{sale.item}=7700000"
    assert [r["code"] for r in row["suggestions"][0]["reasons"]] == ["amount", "reference", "name", "date"]
    first = api.post(f"{base}/bank-transactions/{row['id']}/accept", json={"suggestion": row["best"]}, headers=headers)
    second = api.post(f"{base}/bank-transactions/{row['id']}/accept", json={"suggestion": row["best"]},
                      headers=headers)
    assert (first.status_code, first.json["created"]) == (201, True)
    assert (second.status_code, second.json["created"], second.json["entry"]) == (200, False, first.json["entry"])
    report = api.get(f"{base}/bank-accounts/{link_id}/report?on=2026-11-30", headers=headers).json
    assert (report["statement_balance"], report["book_balance"], report["difference"]) == (
        OPENING + 7_700_000, OPENING + 7_700_000, 0)
    assert api.get(f"{base}/bank-accounts", headers=headers).json["items"][0]["reconciled"] == 1
    undone = api.post(f"{base}/bank-matches/{first.json['id']}/undo", headers=headers)
    assert (undone.status_code, undone.json["state"]) == (200, "undone") and undone.json["reversal"]
    twice = api.post(f"{base}/bank-matches/{first.json['id']}/undo", headers=headers)
    assert twice.status_code == 422 and "undone already" in twice.json["detail"]
    garbled = api.post(f"{base}/bank-transactions/{row['id']}/accept", json={"suggestion": "nonsense"},
                       headers=headers)
    assert garbled.status_code == 422 and "cannot be read" in garbled.json["detail"]


def test_another_tenants_transactions_links_and_matches_are_not_found(app, run_jobs):
    mine, theirs = books(app), books(app)
    for world in (mine, theirs):
        _statement(app, world, run_jobs, NOVEMBER[:2])
        with app.app_context(), as_person(world, world.staff) as (user, tenant):
            [seen] = reconcile.seen_accounts()
            world.link = reconcile.link_account(user, tenant, seen.ref, "1121").id
            world.txn, world.other = (str(t.id) for t in reconcile.unmatched(reconcile.get_link(world.link)))
            world.cash = services.save_draft(user, tenant, date(2026, 11, 12), [
                LineInput("1111", 5_000_000, 0), LineInput("1121", 0, 5_000_000)], memo="Rút tiền", post_it=True).id
            world.match = reconcile.reconcile_entry(user, tenant, world.txn, world.cash).match.id
    # Theirs is matched; with my slug, their ids are not found, the same as ids that do not exist.
    staff = _browser(app, mine.staff)
    token = csrf_token(staff, f"/t/{mine.slug}/books/bank")
    base = f"/t/{mine.slug}/books/bank"
    assert staff.get(f"{base}/transactions/{theirs.txn}").status_code == 404
    assert staff.post(f"{base}/transactions/{theirs.txn}/accept",
                      data={"csrf_token": token, "suggestion": f"entry:{mine.cash}"}).status_code == 404
    assert staff.post(f"{base}/transactions/{theirs.txn}/match",
                      data={"csrf_token": token, "how": "account", "account": "6422",
                            "description": "Phí"}).status_code == 404
    assert staff.post(f"{base}/matches/{theirs.match}/undo", data={"csrf_token": token}).status_code == 404
    assert staff.get(f"{base}/{theirs.link}").status_code == 404
    assert staff.get(f"{base}/{theirs.link}/report").status_code == 404
    # Their entry as the match of my transaction: not found either, and nothing is recorded.
    mine_txn = staff.post(f"{base}/transactions/{mine.other}/accept", data={"csrf_token": token,
                                                                             "suggestion": f"entry:{theirs.cash}"})
    assert mine_txn.status_code == 404
    with app.app_context(), as_person(theirs, theirs.staff):
        assert reconcile.get_match(theirs.match).state == "active"
    with app.app_context(), as_person(mine, mine.staff):
        assert db.session.scalar(select(func.count()).select_from(BankMatch)) == 1  # mine only
