"""Statements as people meet them: the page, the PDF in the vault, the VietQR, approve, dispute, payments."""

from __future__ import annotations

import html
import re
import subprocess
from datetime import date

import pytest
from sqlalchemy import func, select

from portal.billing import meters, statements, vietqr
from portal.billing.models import Statement
from portal.documents.models import Document
from portal.extensions import db
from portal.work.models import Task
from tenants.audit import AuditEvent
from tenants.context import Scope, bound, for_tenant
from tenants.models import Tenant, User
from tenants.policy import Role
from tests.factories import PROVIDER_BANK, csrf_token, login, make_person, make_tenant, put_on_plan


@pytest.fixture
def issued(app, provider_bank, run_jobs):
    """A tenant billed 2,000,000 đồng + 10 % for last month, its PDF rendered and stored by the job."""
    with app.app_context():
        tenant = make_tenant(locale="vi")
        admin = make_person(Role.CLIENT_ADMIN, tenant)
        member = make_person(Role.CLIENT_MEMBER, tenant, mfa=False)
        manager = make_person(Role.PROVIDER_ADMIN)
        put_on_plan(tenant, prices=(("documents_received", 10, 5_000),))
        month = statements.last_month(tenant)
        outcome = statements.run_for_tenant(tenant.id, month)
        slug, tenant_id = tenant.slug, tenant.id
    run_jobs()
    return {"slug": slug, "tenant_id": tenant_id, "admin": admin, "member": member, "provider": manager,
            "statement_id": outcome.statement_id, "month": month}


def _client(app, person):
    client = app.test_client()
    login(client, person)
    return client


def test_the_client_reads_the_statement_with_its_qr_and_downloads_the_pdf(app, issued, tmp_path):
    admin = _client(app, issued["admin"])
    url = f"/t/{issued['slug']}/statements/{issued['statement_id']}"
    listing = admin.get(f"/t/{issued['slug']}/statements").get_data(as_text=True)
    assert url in listing
    page = admin.get(url)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "2.200.000" in html  # 2,000,000 + 10 % tax, Vietnamese grouping
    assert "Hai triệu hai trăm nghìn đồng" in html  # the total in words, in the statement's language
    with app.app_context(), for_tenant(issued["tenant_id"]):
        reference = db.session.get(Statement, issued["statement_id"]).reference
    assert 'data-testid="vietqr"' in html and reference in html
    pdf = admin.get(url + "/pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    (tmp_path / "s.pdf").write_bytes(pdf.data)
    text = subprocess.run(["pdftotext", "-layout", str(tmp_path / "s.pdf"), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert "2.200.000" in text and "Hai triệu hai trăm nghìn đồng" in text and reference in text
    assert "Bảng kê" in text or "Bảng sao kê" in text or "Tổng" in text  # Vietnamese, diacritics intact


def test_the_qr_carries_the_account_amount_and_reference(app, issued):
    with app.app_context(), for_tenant(issued["tenant_id"]):
        statement = db.session.get(Statement, issued["statement_id"])
        bank = PROVIDER_BANK
        payload = vietqr.payload(bank_bin=bank["PROVIDER_BANK_BIN"], account=bank["PROVIDER_BANK_ACCOUNT"],
                                 amount=statement.due, reference=statement.reference)
        decoded = vietqr.decode(payload)
    assert (decoded.account, decoded.amount, decoded.reference) == ("0071000123456", 2_200_000, statement.reference)


def test_approval_binds_to_the_pdf_that_was_seen(app, issued):
    admin = _client(app, issued["admin"])
    url = f"/t/{issued['slug']}/statements/{issued['statement_id']}"
    html = admin.get(url).get_data(as_text=True)
    sha = re.search(r'name="sha256" value="([0-9a-f]{64})"', html).group(1)
    token = csrf_token(admin, url)
    stale = admin.post(url + "/approve", data={"csrf_token": token, "sha256": "0" * 64})
    assert stale.status_code == 409 and "changed since you opened it" in stale.get_data(as_text=True)
    assert admin.post(url + "/approve", data={"csrf_token": token, "sha256": sha}).status_code == 302
    again = admin.post(url + "/approve", data={"csrf_token": token, "sha256": sha})
    assert again.status_code == 409  # a double click says it was answered, no error page
    with app.app_context(), for_tenant(issued["tenant_id"]):
        assert db.session.get(Statement, issued["statement_id"]).approval == "approved"
        assert db.session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "statement.approved")) == 1


def test_a_dispute_needs_a_reason_and_opens_a_task(app, issued):
    admin = _client(app, issued["admin"])
    url = f"/t/{issued['slug']}/statements/{issued['statement_id']}"
    sha = re.search(r'name="sha256" value="([0-9a-f]{64})"', admin.get(url).get_data(as_text=True)).group(1)
    token = csrf_token(admin, url)
    empty = admin.post(url + "/dispute", data={"csrf_token": token, "sha256": sha, "reason": "   "})
    assert empty.status_code == 422 and "Say what is wrong" in empty.get_data(as_text=True)
    r = admin.post(url + "/dispute", data={"csrf_token": token, "sha256": sha,
                                           "reason": "We sent 8 documents, not 12."})
    assert r.status_code == 302
    with app.app_context(), for_tenant(issued["tenant_id"]):
        assert db.session.get(Statement, issued["statement_id"]).approval == "disputed"
        [task] = [t for t in db.session.scalars(select(Task)) if "disputed" in t.title]  # titles are sealed
        assert task.description == "We sent 8 documents, not 12." and task.state == "open"


def test_a_partial_payment_leaves_what_is_still_due(app, issued):
    provider = _client(app, issued["provider"])
    url = f"/t/{issued['slug']}/statements/{issued['statement_id']}"
    token = csrf_token(provider, url)
    bad = provider.post(url + "/payments", data={"csrf_token": token, "amount": "abc", "paid_on": "2999-01-01",
                                                 "reference": ""})
    body = html.unescape(bad.get_data(as_text=True))
    assert bad.status_code == 422
    assert "Give the amount as a number" in body and "in the future" in body and "bank's reference" in body
    ok = provider.post(url + "/payments", data={"csrf_token": token, "amount": "1.000.000",
                                                "paid_on": date.today().isoformat(), "reference": "FT2611001"})
    assert ok.status_code == 302
    with app.app_context(), for_tenant(issued["tenant_id"]):
        statement = db.session.get(Statement, issued["statement_id"])
        assert (statement.paid, statement.due, statement.payment_state) == (1_000_000, 1_200_000, "partly_paid")
    too_much = provider.post(url + "/payments", data={"csrf_token": token, "amount": "1.200.001",
                                                      "paid_on": date.today().isoformat(), "reference": "FT2611002"})
    assert too_much.status_code == 422 and "more than is due" in too_much.get_data(as_text=True)
    provider.post(url + "/payments", data={"csrf_token": token, "amount": "1.200.000",
                                           "paid_on": date.today().isoformat(), "reference": "FT2611002"})
    with app.app_context(), for_tenant(issued["tenant_id"]):
        statement = db.session.get(Statement, issued["statement_id"])
        assert (statement.due, statement.payment_state) == (0, "paid")


def test_members_see_no_money_and_another_tenant_sees_nothing(app, issued, world):
    member = _client(app, issued["member"])
    assert member.get(f"/t/{issued['slug']}/statements").status_code == 403
    outsider = _client(app, world["a_client_admin"])
    assert outsider.get(f"/t/{world.a.slug}/statements/{issued['statement_id']}").status_code == 404
    assert outsider.get(f"/t/{world.a.slug}/statements/{issued['statement_id']}/pdf").status_code == 404


def test_the_statement_pdf_is_not_counted_as_a_document_received(app, issued):
    with app.app_context(), for_tenant(issued["tenant_id"]):
        statement = db.session.get(Statement, issued["statement_id"])
        assert statement.document_id is not None
        assert db.session.get(Document, statement.document_id).category == "other"
        tenant = db.session.get(Tenant, issued["tenant_id"])
        usage = meters.count(tenant, issued["month"].next())
    assert usage["documents_received"] == 0


def test_a_correction_needs_the_new_pdf_before_an_answer(app, issued, run_jobs):
    with app.app_context():
        provider_user = db.session.get(User, issued["provider"].id)
        with bound(Scope(user_id=provider_user.id, tenant_ids=frozenset({issued["tenant_id"]}),
                         role=Role.PROVIDER_ADMIN)):
            new = statements.reissue(provider_user, db.session.get(Tenant, issued["tenant_id"]), issued["month"],
                                     reason="Discount agreed on the phone")
            new_id = new.id
    admin = _client(app, issued["admin"])
    old = admin.get(f"/t/{issued['slug']}/statements/{issued['statement_id']}").get_data(as_text=True)
    assert "replaced by a corrected one" in old and 'data-testid="approve"' not in old
    fresh = admin.get(f"/t/{issued['slug']}/statements/{new_id}").get_data(as_text=True)
    assert 'data-testid="pdf-pending"' in fresh and "Discount agreed on the phone" in fresh
    run_jobs()
    fresh = admin.get(f"/t/{issued['slug']}/statements/{new_id}").get_data(as_text=True)
    assert 'data-testid="approve"' in fresh


def test_the_provider_sees_the_month_and_retries_what_failed(app, issued):
    provider = _client(app, issued["provider"])
    month = issued["month"].key
    page = provider.get(f"/provider/statements?month={month}")
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and f'data-tenant="{issued["slug"]}"' in body
    assert "2,200,000" in body  # in the reader's language (English here)
    assert provider.get("/provider/statements?month=May").status_code == 400
    url = f"/t/{issued['slug']}/statements/run"
    r = provider.post(url, data={"csrf_token": csrf_token(provider, f"/provider/statements?month={month}"),
                                 "month": month})
    assert r.status_code == 302
    assert "issued already" in html.unescape(provider.get(r.headers["Location"]).get_data(as_text=True))
    with app.app_context():
        staff = _client(app, make_person(Role.STAFF))
    assert staff.get("/provider/statements").status_code == 403


def test_the_client_is_told_by_e_mail_with_a_link_and_no_amounts(app, issued, smtp):
    [mail] = smtp.to(issued["admin"].email)[-1:]
    body = mail.get_content()
    assert f"/t/{issued['slug']}/statements" in body
    assert "2.200.000" not in body and "2,200,000" not in body and "2200000" not in body
    assert smtp.to(issued["member"].email) == []  # members see no money, and are not told


def test_the_statement_pdf_is_read_by_intake_but_never_posted_as_an_invoice(app, issued, monkeypatch):
    """The portal's own statement goes through intake like any stored document (it becomes searchable),
    and even when its text reads as an invoice no rule puts it in the bookkeeping task."""
    from portal.intake import chain, steps
    from portal.intake.models import IntakeRecord
    from portal.work.models import TaskDocument

    monkeypatch.setattr(steps, "classify", lambda _text: "invoice")  # as if it read as one
    with app.app_context(), for_tenant(issued["tenant_id"]):
        document_id = db.session.get(Statement, issued["statement_id"]).document_id
        record = db.session.scalar(select(IntakeRecord).where(IntakeRecord.document_id == document_id))
        assert record.state == "done" and "2.200.000" in record.text  # read from its own text layer
        record.steps = {k: v for k, v in record.steps.items() if k in ("preview", "text")}  # read it again
        record.state, record.classified, record.queued_at = "waiting", None, None
        db.session.commit()
        assert chain.run(str(document_id), "1") == "done"
        record = db.session.scalar(select(IntakeRecord).where(IntakeRecord.document_id == document_id))
        assert record.classified == "invoice" and record.steps["route"]["state"] == "done"
        assert db.session.scalar(select(func.count()).select_from(TaskDocument)
                                 .where(TaskDocument.document_id == document_id)) == 0
