"""Statements through the API: the list (paginated, newest month first), one with its lines, the PDF, answers.

Statements are made the way production makes them (a plan, the tenant on it, ``statements.run_for_tenant``,
the rq job that renders the PDF into the vault), as ``tests/billing/test_statement_pages.py`` does.

The figures, worked out by hand: tenant A is on "Trọn gói" (VND, no minor unit): a monthly fee of 2,000,000 đồng
and documents received priced at 5,000 đồng each above 2 included. Three documents arrive this month, so this
month's statement has the fee (2,000,000) and one document above the included two (5,000): subtotal 2,005,000,
tax 10 % = 200,500, total 2,205,500. Earlier months received nothing: 2,000,000 + 200,000 = 2,200,000.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from datetime import date

import pytest
from sqlalchemy import func, select

from portal.billing import statements
from portal.billing.models import Statement
from portal.extensions import db
from portal.work.models import Task
from tenants.audit import AuditEvent
from tenants.context import Scope, bound
from tenants.models import Tenant, User
from tenants.policy import Role
from tests.api.util import bearer, in_tenant, issue_token, problem
from tests.documents import samples
from tests.factories import TenantRef, login, make_person, make_tenant, put_on_plan


def _receive(provider: User, tenant: Tenant, count: int) -> None:
    from portal.documents import services

    with bound(Scope(user_id=provider.id, tenant_ids=frozenset({tenant.id}), role=Role.PROVIDER_ADMIN)):
        for i in range(count):
            target = services.upload_target(provider, category="invoice")
            result = services.upload(provider, tenant, [samples.pdf(40_000 + i)], filename=f"invoice {i}.pdf",
                                     target=target)
            assert result.ok, result.message


def _reissue(provider_id: uuid.UUID, tenant_id: uuid.UUID, month: statements.Month, reason: str) -> uuid.UUID:
    provider = db.session.get(User, provider_id)
    with bound(Scope(user_id=provider.id, tenant_ids=frozenset({tenant_id}), role=Role.PROVIDER_ADMIN)):
        return statements.reissue(provider, db.session.get(Tenant, tenant_id), month, reason=reason).id


@pytest.fixture
def billed(app, provider_bank, run_jobs):
    """Tenant A with four statements (this month, last month corrected once, the month before), tenant B with
    one, every PDF rendered by the job; the people of both."""
    with app.app_context():
        a = make_tenant(locale="vi")
        b = make_tenant(locale="vi")
        people = {"admin": make_person(Role.CLIENT_ADMIN, a), "approver": make_person(Role.CLIENT_APPROVER, a),
                  "member": make_person(Role.CLIENT_MEMBER, a, mfa=False), "provider": make_person(Role.PROVIDER_ADMIN),
                  "b_admin": make_person(Role.CLIENT_ADMIN, b)}
        db.session.get(User, people["approver"].id).locale = "vi"  # reads the lines in Vietnamese
        db.session.commit()
        for tenant in (a, b):
            put_on_plan(tenant, prices=(("documents_received", 2, 5_000),))
        _receive(db.session.get(User, people["provider"].id), a, 3)
        last = statements.last_month(a)
        this, before = last.next(), last.previous()
        ids = {}
        for key, month in (("before", before), ("last", last), ("this", this)):
            outcome = statements.run_for_tenant(a.id, month)
            assert outcome.state == "issued", outcome
            ids[key] = outcome.statement_id
        ids["b"] = statements.run_for_tenant(b.id, last).statement_id
        ids["last_v2"] = _reissue(people["provider"].id, a.id, last, "Discount agreed on the phone")
        refs = TenantRef.of(a), TenantRef.of(b)
    run_jobs()
    return {"a": refs[0], "b": refs[1], "ids": ids, "months": {"this": this, "last": last, "before": before},
            **people}


def _url(tenant: TenantRef, statement_id: uuid.UUID | None = None, tail: str = "") -> str:
    base = f"/api/v1/tenants/{tenant.slug}/statements"
    return base + (f"/{statement_id}" if statement_id else "") + tail


def _row(app, tenant: TenantRef, statement_id: uuid.UUID) -> tuple[str, str]:
    with in_tenant(app, tenant):
        s = db.session.get(Statement, statement_id)
        return s.approval, s.payment_state


def test_a_client_admin_reads_the_statement_worked_out_by_hand(app, client, billed):
    token = issue_token(app, billed["admin"], billed["a"])
    r = client.get(_url(billed["a"], billed["ids"]["this"]), headers=bearer(token))
    assert r.status_code == 200, r.data[:500]
    s = r.json
    assert (s["month"], s["version"], s["currency"], s["tax_rate_bp"]) == (billed["months"]["this"].key, 1, "VND",
                                                                         1000)
    assert s["totals"] == {"minor_units": 0, "subtotal": 2_005_000, "discount": 0, "tax": 200_500,
                           "total": 2_205_500, "paid": 0, "due": 2_205_500}
    assert (s["payment_state"], s["approval"], s["superseded"], s["reason"]) == ("unpaid", "pending", False, None)
    assert re.fullmatch(r"PT\d{4}[A-Z2-9]{6}", s["reference"])
    assert re.fullmatch(r"[0-9a-f]{64}", s["pdf_sha256"])
    assert s["lines"] == [
        {"kind": "fee", "meter": None, "label": "Monthly fee, Trọn gói", "quantity": "1.00", "included": "0.00",
         "unit_price": 2_000_000, "amount": 2_000_000},
        {"kind": "usage", "meter": "documents_received", "label": "Documents received", "quantity": "3.00",
         "included": "2.00", "unit_price": 5_000, "amount": 5_000},
    ]
    assert s["payments"] == []
    assert r.headers["Cache-Control"] == "no-store"


def test_line_labels_follow_the_token_owners_language_else_the_tenants(app, client, billed):
    url = _url(billed["a"], billed["ids"]["this"])
    approver = client.get(url, headers=bearer(issue_token(app, billed["approver"], billed["a"]))).json
    assert [line["label"] for line in approver["lines"]][1] == "Chứng từ đã nhận"
    with app.app_context():
        db.session.get(User, billed["admin"].id).locale = "de"  # a language the portal does not speak
        db.session.commit()
    admin = client.get(url, headers=bearer(issue_token(app, billed["admin"], billed["a"]))).json
    assert [line["label"] for line in admin["lines"]][1] == "Chứng từ đã nhận"  # the tenant's: Vietnamese


def test_the_list_is_paginated_newest_month_first_with_each_version(app, client, billed):
    token = issue_token(app, billed["admin"], billed["a"])
    ids, months = billed["ids"], billed["months"]
    seen, url, pages = [], _url(billed["a"]) + "?limit=3", 0
    while url:
        r = client.get(url, headers=bearer(token))
        assert r.status_code == 200, r.data[:300]
        seen += [(item["id"], item["month"], item["version"], item["superseded"]) for item in r.json["items"]]
        pages += 1
        cursor = r.json["next_cursor"]
        url = _url(billed["a"]) + f"?limit=3&cursor={cursor}" if cursor else None
    assert pages == 2
    assert seen == [(str(ids["this"]), months["this"].key, 1, False),
                    (str(ids["last_v2"]), months["last"].key, 2, False),
                    (str(ids["last"]), months["last"].key, 1, True),
                    (str(ids["before"]), months["before"].key, 1, False)]  # never B's statement
    first = client.get(_url(billed["a"]), headers=bearer(token)).json["items"][0]
    assert "lines" not in first and first["totals"]["total"] == 2_205_500

    one_month = client.get(_url(billed["a"]) + f"?month={months['last'].key}", headers=bearer(token)).json
    assert [(i["version"], i["reason"]) for i in one_month["items"]] == [(2, "Discount agreed on the phone"),
                                                                         (1, None)]
    assert one_month["next_cursor"] is None
    assert "YYYY-MM" in problem(client.get(_url(billed["a"]) + "?month=May", headers=bearer(token)), 422)["detail"]
    problem(client.get(_url(billed["a"]) + "?cursor=bm90LW91cnM", headers=bearer(token)), 400)


def test_members_and_staff_see_no_statements(app, client, billed):
    token = issue_token(app, billed["member"], billed["a"])
    for url in (_url(billed["a"]), _url(billed["a"], billed["ids"]["this"]),
                _url(billed["a"], billed["ids"]["this"], "/pdf")):
        problem(client.get(url, headers=bearer(token)), 403)
    write = issue_token(app, billed["member"], billed["a"], "write")
    problem(client.post(_url(billed["a"], billed["ids"]["this"], "/approve"), json={}, headers=bearer(write)), 403)


def test_another_tenants_statement_is_not_found_from_either_side(app, client, billed):
    a, b, ids = billed["a"], billed["b"], billed["ids"]
    b_read, b_write = (issue_token(app, billed["b_admin"], b, scope) for scope in ("read", "write"))
    with in_tenant(app, a):
        reference = db.session.scalar(select(Statement.reference).where(Statement.id == ids["this"]))
    # B's token on A's slug (with A's id): the gate answers 404, as for a tenant that does not exist.
    for tail in ("", "/pdf"):
        body = problem(client.get(_url(a, ids["this"], tail), headers=bearer(b_read)), 404)
        assert reference not in json.dumps(body)
    problem(client.get(_url(a), headers=bearer(b_read)), 404)
    # A's id on B's own slug: not found either, nothing of A in the answer.
    for tail in ("", "/pdf"):
        r = client.get(_url(b, ids["this"], tail), headers=bearer(b_read))
        problem(r, 404)
        assert reference not in r.get_data(as_text=True)
    for tail, body in (("/approve", {"sha256": "0" * 64}), ("/dispute", {"reason": "", "sha256": None}),
                       ("/dispute", {"reason": "Not ours", "sha256": "0" * 64})):
        problem(client.post(_url(b, ids["this"], tail), json=body, headers=bearer(b_write)), 404)
    listing = client.get(_url(b), headers=bearer(b_read)).json
    assert [i["id"] for i in listing["items"]] == [str(ids["b"])]
    assert _row(app, a, ids["this"]) == ("pending", "unpaid")


def test_a_read_only_token_cannot_approve(app, client, billed):
    token = issue_token(app, billed["admin"], billed["a"], "read")
    sha = client.get(_url(billed["a"], billed["ids"]["this"]), headers=bearer(token)).json["pdf_sha256"]
    r = client.post(_url(billed["a"], billed["ids"]["this"], "/approve"), json={"sha256": sha},
                    headers=bearer(token))
    assert "read-only" in problem(r, 403)["detail"]
    assert _row(app, billed["a"], billed["ids"]["this"]) == ("pending", "unpaid")


def test_approval_binds_to_the_pdf_the_token_read(app, client, billed):
    token = issue_token(app, billed["approver"], billed["a"], "write")
    url = _url(billed["a"], billed["ids"]["this"])
    sha = client.get(url, headers=bearer(token)).json["pdf_sha256"]
    stale = problem(client.post(url + "/approve", json={"sha256": "0" * 64}, headers=bearer(token)), 409)
    assert "changed since you opened it" in stale["detail"]
    problem(client.post(url + "/approve", json={}, headers=bearer(token)), 409)  # no sha256: never "any PDF"
    r = client.post(url + "/approve", json={"sha256": sha, "tenant_id": str(billed["b"].id)}, headers=bearer(token))
    assert r.status_code == 200 and r.json["approval"] == "approved" and r.json["pdf_sha256"] == sha
    assert "answered already" in problem(client.post(url + "/approve", json={"sha256": sha},
                                                     headers=bearer(token)), 409)["detail"]
    with in_tenant(app, billed["a"]):
        [event] = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "statement.approved"))
        assert (event.object_id, event.details["sha256"]) == (str(billed["ids"]["this"]), sha)
    # The version a correction replaced cannot be answered, whatever it says.
    old = _url(billed["a"], billed["ids"]["last"])
    old_sha = client.get(old, headers=bearer(token)).json["pdf_sha256"]
    assert "replaced by a corrected version" in problem(
        client.post(old + "/approve", json={"sha256": old_sha}, headers=bearer(token)), 409)["detail"]


def test_a_dispute_needs_a_reason_and_opens_a_task(app, client, billed):
    token = issue_token(app, billed["admin"], billed["a"], "write")
    url = _url(billed["a"], billed["ids"]["this"])
    sha = client.get(url, headers=bearer(token)).json["pdf_sha256"]
    empty = problem(client.post(url + "/dispute", json={"sha256": sha, "reason": "  "}, headers=bearer(token)), 422)
    assert "Say what is wrong" in empty["detail"] and "Say what is wrong" in empty["errors"]["json"]["reason"][0]
    assert _row(app, billed["a"], billed["ids"]["this"]) == ("pending", "unpaid")
    r = client.post(url + "/dispute", json={"sha256": sha, "reason": "We sent 2 documents, not 3."},
                    headers=bearer(token))
    assert r.status_code == 200 and (r.json["approval"], r.json["payment_state"]) == ("disputed", "disputed")
    with in_tenant(app, billed["a"]):
        [task] = [t for t in db.session.scalars(select(Task)) if "disputed" in t.title]
        assert (task.description, task.state) == ("We sent 2 documents, not 3.", "open")


def test_the_pdf_is_the_pages_download_and_is_in_the_access_log(app, client, billed):
    token = issue_token(app, billed["admin"], billed["a"])
    url = _url(billed["a"], billed["ids"]["this"])
    sha = client.get(url, headers=bearer(token)).json["pdf_sha256"]

    def downloads() -> int:
        with in_tenant(app, billed["a"]):
            return db.session.scalar(select(func.count()).select_from(AuditEvent)
                                     .where(AuditEvent.action == "document.downloaded"))

    before = downloads()
    r = client.get(url + "/pdf", headers=bearer(token))
    assert r.status_code == 200 and r.data.startswith(b"%PDF")
    assert r.headers["Content-Disposition"].startswith("attachment")
    assert hashlib.sha256(r.data).hexdigest() == sha
    assert downloads() == before + 1
    browser = app.test_client()
    login(browser, billed["admin"])
    page = browser.get(f"/t/{billed['a'].slug}/statements/{billed['ids']['this']}/pdf")
    assert page.status_code == 200 and page.data == r.data


def test_the_pdf_and_answers_wait_while_it_is_prepared(app, client, billed):
    with app.app_context():
        new_id = _reissue(billed["provider"].id, billed["a"].id, billed["months"]["this"], "A document was counted "
                                                                                          "twice")
    token = issue_token(app, billed["admin"], billed["a"], "write")
    url = _url(billed["a"], new_id)
    assert client.get(url, headers=bearer(token)).json["pdf_sha256"] is None
    assert "still being prepared" in problem(client.get(url + "/pdf", headers=bearer(token)), 409)["detail"]
    assert "still being prepared" in problem(client.post(url + "/approve", json={"sha256": None},
                                                         headers=bearer(token)), 409)["detail"]


def test_a_provider_admins_token_reads_payments(app, client, billed):
    from portal.billing import answers

    with app.app_context():
        provider = db.session.get(User, billed["provider"].id)
        with bound(Scope(user_id=provider.id, tenant_ids=frozenset({billed["a"].id}), role=Role.PROVIDER_ADMIN)):
            answers.record_payment(provider, db.session.get(Tenant, billed["a"].id), str(billed["ids"]["this"]),
                                   amount="1.000.000", paid_on=date.today().isoformat(), reference="FT2611001")
    token = issue_token(app, billed["provider"], billed["a"])
    s = client.get(_url(billed["a"], billed["ids"]["this"]), headers=bearer(token)).json
    assert (s["totals"]["paid"], s["totals"]["due"], s["payment_state"]) == (1_000_000, 1_205_500, "partly_paid")
    assert [(p["amount"], p["method"], p["reference"]) for p in s["payments"]] == [(1_000_000, "transfer",
                                                                                    "FT2611001")]
