"""Invoice and receipt fields read from PDFs and scans, shown over the page, corrected by staff, and the same
invoice found twice.

The documents are generated from ground truth (``tests.data.invoices``: six layouts, Vietnamese and
English); every expected value comes from that truth, never from the records under test. Reading goes
through the real sandboxed reader (pdftotext, Tesseract); the pages and corrections through the real
app, PostgreSQL and an rq worker (``run_jobs``).
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from portal.documents import services as documents
from portal.extensions import db
from portal.intake import fields, readers
from tenants.audit import AuditEvent
from tenants.context import Scope, bound, for_tenant
from tenants.models import Tenant, User
from tenants.policy import Role
from tests.data.invoices import FIELDS, LAYOUTS, samples
from tests.factories import csrf_token, login, make_tenant
from tests.intake.test_intake import _record, _upload, make_staff

SAMPLES = samples(len(LAYOUTS))  # one of each layout


def _read(data: bytes, kind: str) -> dict[str, fields.Field]:
    pages = readers.read_text([data], kind, max_input=64 * 2**20, timeout=120, max_pages=5)
    return fields.read_fields([page.words for page in pages])


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.layout for s in SAMPLES])
def test_every_field_of_a_pdf_with_text_is_read_exactly_with_its_box(sample):
    found = _read(sample.pdf(), "pdf")
    assert {name: found[name].value if name in found else None for name in FIELDS} == sample.truth
    for name in FIELDS:
        if sample.truth[name] is not None:
            x0, y0, x1, y1 = found[name].box
            assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1, name  # a box on the page, to outline
            assert found[name].page == 1


def test_scans_and_photos_of_every_layout_are_read_to_at_least_nine_fields_in_ten():
    right = total = 0
    for sample in SAMPLES:
        data, kind = sample.scan()
        found = _read(data, kind)
        right += sum((found[n].value if n in found else None) == sample.truth[n] for n in FIELDS)
        total += len(FIELDS)
    assert right / total >= 0.9, f"{right} of {total}"


def test_a_value_that_does_not_check_out_is_marked_for_a_second_look():
    def line(number: int, label: str, value: str) -> list[list]:
        y = number / 10
        return [[label, .1, y, .3, y + .02, 100, number], [value, .6, y, .7, y + .02, 100, number]]

    words = [*line(1, "Mã số thuế:", "0101234568"),  # a wrong check digit (0101234567 is right)
             *line(2, "Cộng tiền hàng:", "1.000.000"), *line(3, "Tiền thuế GTGT:", "100.000"),
             *line(4, "Tổng cộng:", "1.200.000")]
    found = fields.read_fields([words])
    assert found["supplier_tax_code"].value == "0101234568" and fields.needs_check(found["supplier_tax_code"])
    assert all(fields.needs_check(found[n]) for n in ("net", "vat_amount", "total"))  # 1,000,000 + 100,000 ≠ 1,200,000
    assert found["currency"].value == "VND" and fields.needs_check(found["currency"])  # not written: assumed


def _staff_page(app, tenant, doc_id):
    staff = make_staff(app, tenant)
    client = app.test_client()
    login(client, staff)
    return client, client.get(f"/t/{tenant.slug}/documents/{doc_id}").get_data(as_text=True)


def test_staff_see_the_fields_over_the_page_and_correct_them_with_every_error_at_once(app, run_jobs):
    sample = SAMPLES[0]  # the Vietnamese VAT invoice
    tenant, client_admin, doc_id = _upload(app, sample.pdf(), "hoa-don.pdf")
    run_jobs()
    staff, page = _staff_page(app, tenant, doc_id)
    assert 'data-testid="fields"' in page
    for name in ("invoice_number", "supplier_tax_code", "total"):
        assert f'<rect data-field="{name}" class="sure"' in page  # outlined on the page
        assert f'value="{sample.truth[name]}"' in page
    png = staff.get(f"/t/{tenant.slug}/documents/{doc_id}/intake/page-1.png")
    assert png.status_code == 200 and png.data.startswith(b"\x89PNG") and "no-store" in png.headers["Cache-Control"]
    assert staff.get(f"/t/{tenant.slug}/documents/{doc_id}/intake/page-9.png").status_code == 404

    url = f"/t/{tenant.slug}/documents/{doc_id}/intake/fields"
    token = csrf_token(staff, f"/t/{tenant.slug}/documents/{doc_id}")
    typed = {"csrf_token": token, "supplier_tax_code": "0101234568", "issue_date": "31/02/2026",
             "invoice_number": "0009999"}
    refused = staff.post(url, data=typed)
    body = refused.get_data(as_text=True)
    assert refused.status_code == 422
    assert "its last digit" in body and "day first" in body  # both errors at once
    assert 'value="0009999"' in body and 'value="31/02/2026"' in body  # what was typed stays
    with app.app_context(), for_tenant(tenant.id):
        assert _record(app, tenant.id, doc_id).corrections is None  # nothing saved

    saved = staff.post(url, data={"csrf_token": token, "invoice_number": "0009999", "total": "1.234.000"})
    assert saved.status_code == 303
    page = staff.get(f"/t/{tenant.slug}/documents/{doc_id}").get_data(as_text=True)
    assert 'value="0009999"' in page and 'value="1234000"' in page
    assert f'<span class="read-value">{sample.truth["invoice_number"]}</span>' in page  # the reading stays shown
    assert 'data-testid="corrected-invoice_number"' in page
    with app.app_context(), for_tenant(tenant.id):
        corrections = json.loads(_record(app, tenant.id, doc_id).corrections)
        assert {k: v["value"] for k, v in corrections.items()} == {"invoice_number": "0009999", "total": "1234000"}
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "intake.fields_corrected"))
        assert event.details["fields"] == ["invoice_number", "total"]
        assert "0009999" not in json.dumps(event.details)  # the log says what changed, not the figures

    client = app.test_client()  # the client sees the fields, and may not correct them
    login(client, client_admin)
    assert 'data-testid="fields"' in client.get(f"/t/{tenant.slug}/documents/{doc_id}").get_data(as_text=True)
    token = csrf_token(client, f"/t/{tenant.slug}/documents/{doc_id}")
    assert client.post(url, data={"csrf_token": token, "total": "1"}).status_code == 403


def test_another_tenants_staff_cannot_see_the_page_or_correct_the_fields(app, run_jobs):
    tenant, _admin, doc_id = _upload(app, SAMPLES[1].pdf(), "invoice.pdf")
    run_jobs()
    with app.app_context():
        other = make_tenant()
        other_slug = other.slug
    intruder_client, _page = _staff_page(app, type("T", (), {"id": other.id, "slug": other_slug}), doc_id)
    assert intruder_client.get(f"/t/{other_slug}/documents/{doc_id}/intake/page-1.png").status_code == 404
    token = csrf_token(intruder_client, f"/t/{other_slug}/documents")
    answer = intruder_client.post(f"/t/{other_slug}/documents/{doc_id}/intake/fields",
                                  data={"csrf_token": token, "total": "1"})
    assert answer.status_code == 404
    with app.app_context(), for_tenant(tenant.id):
        assert _record(app, tenant.id, doc_id).corrections is None


def test_the_same_invoice_as_a_pdf_and_as_a_scan_is_flagged_but_not_its_own_einvoice(app, run_jobs):
    sample = next(s for s in samples(12) if s.layout == "vn_vat" and s.number > 0)
    tenant, person, first = _upload(app, sample.pdf(), "hoa-don.pdf")

    def upload(body: bytes, name: str):
        with app.app_context():
            user = db.session.get(User, person.id)
            with bound(Scope(user_id=user.id, tenant_ids=frozenset({tenant.id}), role=Role.CLIENT_ADMIN)):
                result = documents.upload(user, db.session.get(Tenant, tenant.id), [body], filename=name,
                                          target=documents.upload_target(user, category="invoice"))
                assert result.ok, result.message
                return result.document.id

    xml = upload(sample.xml(), "hoa-don.xml")  # its own e-invoice: a pair, not a duplicate
    run_jobs()
    scan, _kind = sample.scan(as_pdf=True)
    second = upload(scan, "hoa-don-scan.pdf")  # the same invoice, scanned: a duplicate
    run_jobs()
    with app.app_context(), for_tenant(tenant.id):
        assert _record(app, tenant.id, xml).paired_with == first
        assert _record(app, tenant.id, xml).duplicate_of is None and _record(app, tenant.id, first).duplicate_of is None
        assert _record(app, tenant.id, second).duplicate_of == first
    _client, page = _staff_page(app, tenant, second)
    assert 'data-testid="intake-duplicate"' in page


def test_a_photo_of_a_receipt_reaches_the_staff_page_with_its_fields_outlined(app, run_jobs):
    sample = next(s for s in SAMPLES if s.layout == "receipt")
    photo, kind = sample.scan(as_pdf=False)
    assert kind == "image"
    tenant, _admin, doc_id = _upload(app, photo, "bien-lai.jpg", category="receipt")
    run_jobs()
    _client, page = _staff_page(app, tenant, doc_id)
    assert 'data-testid="fields"' in page
    outlined = [name for name in FIELDS if f'<rect data-field="{name}"' in page]
    right = [name for name in FIELDS if sample.truth[name] and f'value="{sample.truth[name]}"' in page]
    assert len(right) >= 7, right  # read from a photo: the total, the tax code, the date...
    assert set(right) <= set(outlined)  # every value read is outlined where it was found
