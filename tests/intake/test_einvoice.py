"""Vietnamese e-invoices read exactly, with the quirks of real files, checked and flagged, never fixed.

Each file is written here from a ground truth (the invoice as the seller meant it); the expected values are
that ground truth, never what the parser produced.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.intake import einvoice
from portal.intake.models import IntakeRecord
from tenants.context import for_tenant
from tests.data.einvoices import TRUTH, make_xml
from tests.data.einvoices import groups as _groups
from tests.intake.test_intake import _record, _upload


@pytest.mark.parametrize("quirks", [
    {}, {"wrap": True}, {"namespace": True}, {"wrap": True, "namespace": True}, {"currency": "đ"},
    {"float_amounts": True},
], ids=["bare", "TDiep wrapper", "default namespace", "both", "đ as currency", "84000.0 amounts"])
def test_every_field_is_read_exactly_whatever_the_wrapping(quirks):
    invoice = einvoice.parse(make_xml(**quirks))
    groups = _groups(TRUTH)
    assert (invoice.template, invoice.series, invoice.number, invoice.issued_on) == ("1", "C26TAA", "123",
                                                                                     "2026-11-20")
    assert invoice.currency == "VND"
    assert (invoice.seller.name, invoice.seller.tax_code, invoice.seller.tax_code_valid) == (*TRUTH["seller"], True)
    assert (invoice.buyer.name, invoice.buyer.tax_code, invoice.buyer.tax_code_valid) == (*TRUTH["buyer"], True)
    assert [(ln.kind, ln.name, ln.unit, ln.quantity, ln.price, ln.amount, ln.vat_rate) for ln in invoice.lines] == [
        ({"1": "goods", "2": "promotion"}[k], n, u, q, p, str(int(Decimal(q) * Decimal(p))), r)
        for k, n, u, q, p, r in TRUTH["lines"]]
    assert [(g.rate, g.base, g.tax, g.agrees) for g in invoice.vat_groups] == [
        (r, str(b), str(t), None if r == "KCT" else True) for r, (b, t) in groups.items()]
    before, vat = sum(b for b, _ in groups.values()), sum(t for _, t in groups.values())
    assert (invoice.total_before_vat, invoice.total_vat, invoice.total) == (str(before), str(vat), str(before + vat))
    assert invoice.total_in_words == TRUTH["words"]
    assert invoice.tax_authority_code and invoice.related is None
    assert invoice.flags == []
    assert invoice.key == "0318888884|1C26TAA|123"


def test_kct_is_not_zero_percent_and_keeps_its_name():
    invoice = einvoice.parse(make_xml())
    kct = next(g for g in invoice.vat_groups if g.rate == "KCT")
    assert (kct.expected_tax, kct.agrees) == (None, None)


def test_a_subtotal_that_disagrees_with_rate_times_base_is_flagged_not_fixed():
    # 8 % of 30,000,000 is 2,400,000; the file says 2,400,500 (and its totals carry it).
    invoice = einvoice.parse(make_xml(tax_override={"8%": 2_400_500}))
    group = next(g for g in invoice.vat_groups if g.rate == "8%")
    assert (group.tax, group.expected_tax, group.agrees) == ("2400500", "2400000", False)
    assert "vat_rate_times_base:8%" in invoice.flags
    assert invoice.total_vat == str(2_400_500 + 600_000)  # as written


def test_a_replacement_names_the_invoice_it_replaces():
    invoice = einvoice.parse(make_xml(related=("1", "1", "C26TAA", "99")))
    assert invoice.related == {"kind": "replaces", "template": "1", "series": "C26TAA", "number": "99",
                               "issued_on": None}
    assert einvoice.parse(make_xml(related=("2", "1", "C26TAA", "98"))).related["kind"] == "adjusts"


def test_a_wrong_check_digit_in_a_tax_code_is_flagged():
    truth = {**TRUTH, "seller": ("Công ty Sai Mã", "0318888885")}
    invoice = einvoice.parse(make_xml(truth))
    assert invoice.seller.tax_code_valid is False and "seller_tax_code" in invoice.flags


@pytest.mark.parametrize(("body", "reason"), [
    (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><HDon>&e;</HDon>', "unsafe"),
    (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">]><HDon>&lol;</HDon>', "unsafe"),
    (b"<HDon><DLHDon><TTChung>", "malformed"),
    (b'<?xml version="1.0"?><catalog><book>Not an invoice</book></catalog>', "not_einvoice"),
])
def test_unsafe_broken_and_other_xml_are_refused_with_a_reason(body, reason):
    with pytest.raises(einvoice.NotAnEInvoice) as refused:
        einvoice.parse(body)
    assert refused.value.reason == reason


# --- through intake ------------------------------------------------------------------------------------

def test_an_uploaded_einvoice_is_read_into_its_fields_and_a_second_copy_is_flagged(app, run_jobs):
    tenant, person, first = _upload(app, make_xml(wrap=True), "hoa-don-123.xml")
    run_jobs()
    record = _record(app, tenant.id, first)
    assert (record.state, record.text_source, record.classified) == ("done", "xml", "invoice"), record.error
    with app.app_context(), for_tenant(tenant.id):
        stored = db.session.scalar(select(IntakeRecord).where(IntakeRecord.document_id == first))
        fields = json.loads(stored.extracted)
    assert (fields["series"], fields["number"], fields["seller"]["tax_code"]) == ("C26TAA", "123", "0318888884")
    assert fields["total"] == str(sum(b + t for b, t in _groups(TRUTH).values()))
    assert "Máy tính xách tay" in record.text and record.duplicate_of is None
    # The same invoice again, as another file (unwrapped, amounts written with decimals): flagged.
    from portal.documents import services as documents
    from tenants.context import Scope, bound
    from tenants.models import Tenant, User
    from tenants.policy import Role

    with app.app_context():
        user = db.session.get(User, person.id)
        with bound(Scope(user_id=user.id, tenant_ids=frozenset({tenant.id}), role=Role.CLIENT_ADMIN)):
            second = documents.upload(user, db.session.get(Tenant, tenant.id), [make_xml(float_amounts=True)],
                                      filename="hoa-don-123-ban-sao.xml",
                                      target=documents.upload_target(user, category="invoice")).document.id
    run_jobs()
    assert _record(app, tenant.id, second).duplicate_of == first
    client = app.test_client()
    from tests.factories import login

    login(client, person)
    page = client.get(f"/t/{tenant.slug}/documents/{second}").get_data(as_text=True)
    assert "C26TAA" in page and "0318888884" in page and "is already here: post it only once." in page


def test_an_xml_that_is_not_an_einvoice_says_so(app, run_jobs):
    tenant, person, doc = _upload(app, b'<?xml version="1.0"?><catalog><book>x</book></catalog>', "list.xml")
    run_jobs()
    record = _record(app, tenant.id, doc)
    assert (record.state, record.step, record.error) == ("failed", "einvoice", "not_einvoice")


def _invoice_pdf(number: str = "00000123") -> bytes:
    from weasyprint import HTML

    return HTML(string=f"<h1>HÓA ĐƠN GIÁ TRỊ GIA TĂNG</h1><p>Ký hiệu: 1C26TAA</p><p>Số: {number}</p>"
                       "<p>Đơn vị bán hàng: Công ty TNHH Thiết bị Minh Anh</p><p>Mã số thuế: 0318888884</p>"
                       "<p>Tổng cộng tiền thanh toán: 39.000.000</p>").write_pdf()


@pytest.mark.parametrize("xml_first", [True, False], ids=["XML first", "PDF first"])
def test_the_pdf_copy_of_an_einvoice_is_paired_with_it_in_either_order(app, run_jobs, xml_first):
    from portal.documents import services as documents
    from tenants.context import Scope, bound
    from tenants.models import Tenant, User
    from tenants.policy import Role

    first_body, first_name = (make_xml(), "hd-123.xml") if xml_first else (_invoice_pdf(), "hd-123.pdf")
    tenant, person, first = _upload(app, first_body, first_name)
    run_jobs()
    second_body, second_name = (_invoice_pdf(), "hd-123.pdf") if xml_first else (make_xml(), "hd-123.xml")
    with app.app_context():
        user = db.session.get(User, person.id)
        with bound(Scope(user_id=user.id, tenant_ids=frozenset({tenant.id}), role=Role.CLIENT_ADMIN)):
            t = db.session.get(Tenant, tenant.id)
            second = documents.upload(user, t, [second_body], filename=second_name,
                                      target=documents.upload_target(user, category="invoice")).document.id
            # Another invoice's PDF (number 124) is not paired with it.
            other = documents.upload(user, t, [_invoice_pdf("00000124")], filename="hd-124.pdf",
                                     target=documents.upload_target(user, category="invoice")).document.id
    run_jobs()
    xml, pdf = (first, second) if xml_first else (second, first)
    assert _record(app, tenant.id, xml).paired_with == pdf
    assert _record(app, tenant.id, pdf).paired_with == xml
    assert _record(app, tenant.id, other).paired_with is None
