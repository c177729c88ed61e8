"""From an invoice intake read to a posted entry, and the same invoice never counted twice.

The e-invoice is generated from ground truth (``tests.data.einvoices``); the expected lines are worked out
from that truth with the law's rule (VAT per rate), never read back from the entry under test.
"""

from __future__ import annotations

from sqlalchemy import select

from portal.extensions import db
from portal.ledger import services
from portal.ledger.models import Entry
from tests.data.einvoices import TRUTH, groups, make_xml
from tests.factories import csrf_token, login
from tests.intake.test_intake import _upload
from tests.ledger.test_ledger import as_person


def _books_for(app, tenant, person, tax_code: str | None = None):  # noqa: ANN001, ANN202
    from types import SimpleNamespace

    from tenants.policy import Role
    from tests.factories import make_person
    from tests.intake.test_intake import make_staff

    staff = make_staff(app, tenant)
    with app.app_context():
        manager = make_person(Role.PROVIDER_ADMIN)
        world = SimpleNamespace(id=tenant.id, slug=tenant.slug)
        with as_person(world, manager) as (user, t):
            services.start_books(user, t, "vn_tt133", tax_code=tax_code)
    return staff


def _form(client, slug: str, doc_id) -> dict:
    """The new-entry form as the document's invoice prefilled it (what the page offers), as a dict to post."""
    import re

    page = client.get(f"/t/{slug}/books/entries/new?document={doc_id}").get_data(as_text=True)
    fields = dict(re.findall(r'name="([^"]+)"[^>]*?value="([^"]*)"', page))
    fields["csrf_token"] = csrf_token(client, f"/t/{slug}/books")
    return fields


def _lines(form: dict) -> list[tuple[str, int, int]]:
    out = []
    for i in range(1, int(form["line_count"]) + 1):
        if form.get(f"line-{i}-account"):
            out.append((form[f"line-{i}-account"], int(form.get(f"line-{i}-debit") or 0),
                        int(form.get(f"line-{i}-credit") or 0)))
    return out


def test_a_purchase_einvoice_becomes_an_entry_with_vat_per_rate_and_is_posted_only_once(app, run_jobs):
    tenant, _admin, doc_id = _upload(app, make_xml(), "hoa-don.xml")
    run_jobs()
    staff = _books_for(app, tenant, _admin, tax_code=TRUTH["buyer"][1])  # the client bought it
    client = app.test_client()
    login(client, staff)
    per_rate = groups(TRUTH)
    net = sum(base for base, _tax in per_rate.values())
    vat = {rate.rstrip("%"): int(tax) for rate, (_base, tax) in per_rate.items() if tax}
    form = _form(client, tenant.slug, doc_id)
    assert _lines(form) == [("6422", int(net), 0), *[("1331", tax, 0) for tax in vat.values()],
                            ("331", 0, int(net) + sum(vat.values()))]
    assert form["entry_date"] == TRUTH["date"]
    assert TRUTH["seller"][1] in form["line-4-counterparty"]  # the payable names the supplier
    posted = client.post(f"/t/{tenant.slug}/books/entries", data={**form, "then": "post"})
    assert posted.status_code == 303
    page = client.get(f"/t/{tenant.slug}/documents/{doc_id}").get_data(as_text=True)
    assert "Entry 1" in page  # the document shows its entry

    again = client.post(f"/t/{tenant.slug}/books/entries", data={**_form(client, tenant.slug, doc_id), "then": "post"})
    body = again.get_data(as_text=True)
    assert again.status_code == 422 and "already in the books (entry 1)" in body and 'name="override"' in body
    with app.app_context(), as_person(tenant, staff):
        assert db.session.scalar(select(Entry.state).where(Entry.number.is_(None))) == "draft"  # kept as a draft
        draft = db.session.scalar(select(Entry).where(Entry.number.is_(None)))
        draft_id = draft.id
    form = _form(client, tenant.slug, doc_id)
    forced = client.post(f"/t/{tenant.slug}/books/entries/{draft_id}/save",
                         data={**form, "then": "post", "override": "1"})
    assert forced.status_code == 303
    with app.app_context(), as_person(tenant, staff):
        assert db.session.scalar(select(Entry.number).where(Entry.id == draft_id)) == 2


def test_an_invoice_the_client_issued_becomes_a_sale(app, run_jobs):
    tenant, _admin, doc_id = _upload(app, make_xml(), "hoa-don-ban.xml")
    run_jobs()
    staff = _books_for(app, tenant, _admin, tax_code=TRUTH["seller"][1])  # the client sold it
    client = app.test_client()
    login(client, staff)
    per_rate = groups(TRUTH)
    net = int(sum(base for base, _tax in per_rate.values()))
    taxes = [int(tax) for _base, tax in per_rate.values() if tax]
    assert _lines(_form(client, tenant.slug, doc_id)) == [("131", net + sum(taxes), 0), ("5111", 0, net),
                                                          *[("33311", 0, tax) for tax in taxes]]


def test_another_tenants_document_cannot_prefill_an_entry(app, run_jobs):
    _tenant, _admin, doc_id = _upload(app, make_xml(), "hoa-don.xml")
    other, other_admin, other_doc = _upload(app, make_xml(), "khac.xml")
    run_jobs()
    staff = _books_for(app, other, other_admin)
    client = app.test_client()
    login(client, staff)
    assert client.get(f"/t/{other.slug}/books/entries/new?document={doc_id}").status_code == 404
    form = {**_form(client, other.slug, other_doc), "document_id": str(doc_id), "then": "save"}
    assert client.post(f"/t/{other.slug}/books/entries", data=form).status_code == 404  # nor be linked to one
