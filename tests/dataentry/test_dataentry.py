"""Data entry through the services, the pages and the API, against real PostgreSQL: templates, keying a queue
of documents, idempotent saving, the export, who may do what, and another tenant's ids refused.

Expected values are worked out here from what was keyed, never read back from the tables under test.
"""

from __future__ import annotations

import csv
import html
import io
import re
import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from portal.dataentry import services
from portal.dataentry.fields import FieldInput
from portal.dataentry.models import Record
from portal.extensions import db
from tenants.audit import AuditEvent
from tenants.context import Scope, bound
from tenants.models import User, utcnow
from tenants.policy import Role
from tests.dataentry.test_fields import mst, wrong_digit
from tests.documents import samples
from tests.factories import as_person, csrf_token, login, make_world

TRAP = '=HYPERLINK("https://evil.example/x", "Invoice")'
SELLER = mst("010023348")
ROWS = [FieldInput(key="invoice_no", label="Invoice number", type="text", required=True, max_length="20"),
        FieldInput(key="total", label="Total", type="amount", required=True, min="1"),
        FieldInput(key="issued", label="Issued on", type="date", earliest="01/01/2026"),
        FieldInput(key="seller", label="Seller's tax code", type="tax_code"),
        FieldInput(key="kind", label="Kind", type="choice", options="Invoice\nReceipt")]


def _upload(tenant_id: uuid.UUID, person, seed: int, name: str) -> uuid.UUID:  # noqa: ANN001
    from portal.documents import services as vault

    with as_person(tenant_id, person) as (user, tenant):
        result = vault.upload(user, tenant, [samples.pdf(seed)], filename=name,
                              target=vault.upload_target(user, category="invoice"))
        assert result.ok, result.message
        return result.document.id


def _template(tenant_id: uuid.UUID, person, name: str = "Purchase invoices") -> uuid.UUID:  # noqa: ANN001
    with as_person(tenant_id, person) as (user, tenant):
        return services.save_template(user, tenant, name=name, description="From the suppliers' invoices",
                                      rows=ROWS, locale="en").id


@pytest.fixture
def de(app) -> SimpleNamespace:
    """Tenant A with three documents (oldest first) and a template; tenant B with a document and a template."""
    with app.app_context():
        world = make_world()
        seed = int(uuid.uuid4().int % 10**6) * 10
        admin = world["provider_admin"]
        docs = [_upload(world.a.id, admin, seed + n, f"invoice-{n}.pdf") for n in (1, 2, 3)]
        b_doc = _upload(world.b.id, admin, seed + 9, "beta-invoice.pdf")
        template = _template(world.a.id, world["manager"])
        b_template = _template(world.b.id, admin, "Beta purchases")
        return SimpleNamespace(world=world, a=world.a, b=world.b, docs=docs, b_doc=b_doc, template=template,
                               b_template=b_template)


def _client(app, person):  # noqa: ANN001, ANN202
    client = app.test_client()
    login(client, person)
    return client


def _key_url(de: SimpleNamespace, document: object | None = None) -> str:
    return f"/t/{de.a.slug}/data-entry/{de.template}/key" + (f"?document={document}" if document else "")


def _form(client, url: str, **values: str) -> dict:  # noqa: ANN001
    """What the keying page's form posts: its hidden fields as rendered, and ``values`` typed (v-<key>)."""
    page = client.get(url)
    assert page.status_code == 200, page.data[:300]
    body = page.get_data(as_text=True)
    hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', body))
    return {**hidden, **{f"v-{k}": v for k, v in values.items()}}


GOOD = {"invoice_no": "HD-0001", "total": "2,200,000", "issued": "05/11/2026", "seller": SELLER, "kind": "Invoice"}


def _records(app, de: SimpleNamespace) -> list[tuple[int, uuid.UUID | None, dict]]:
    with app.app_context(), bound(Scope(tenant_ids=frozenset({de.a.id}))):
        rows = db.session.scalars(select(Record).where(Record.template_id == de.template).order_by(Record.number))
        out = [(r.number, r.document_id, services.values_of(r)) for r in rows]
        db.session.rollback()
        return out


# --- keying ---------------------------------------------------------------------------------------------

def test_keying_goes_through_the_queue_oldest_first_and_says_what_was_saved(app, de):
    staff = _client(app, de.world["staff"])
    page = staff.get(_key_url(de)).get_data(as_text=True)
    assert "3 of 3 documents left" in page and "invoice-1.pdf" in page  # the oldest first
    assert re.search(r'name="v-invoice_no"[^>]*autofocus', page)  # the first field takes the focus
    r = staff.post(_key_url(de), data=_form(staff, _key_url(de), **GOOD))
    assert r.status_code == 303
    assert r.headers["Location"].endswith(f"?document={de.docs[1]}")  # the next one opens, the form empty
    following = staff.get(r.headers["Location"]).get_data(as_text=True)
    assert "Record 1 saved for invoice-1.pdf" in html.unescape(following)
    assert "2 of 3 documents left" in following and 'value="HD-0001"' not in following
    assert _records(app, de) == [(1, de.docs[0], {"invoice_no": "HD-0001", "total": 2_200_000,
                                                   "issued": "2026-11-05", "seller": SELLER, "kind": "Invoice"})]
    # Skipping the second (Escape's link) opens the third; keying it wraps back to the one skipped.
    skip = re.search(r'href="([^"]+)" data-skip', following).group(1)
    assert html.unescape(skip).endswith(f"?document={de.docs[2]}")
    r = staff.post(_key_url(de), data=_form(staff, html.unescape(skip), invoice_no="HD-3", total="1"))
    assert r.headers["Location"].endswith(f"?document={de.docs[1]}")
    r = staff.post(_key_url(de), data=_form(staff, _key_url(de, de.docs[1]), invoice_no="HD-2", total="5"))
    done = staff.get(r.headers["Location"]).get_data(as_text=True)
    assert "0 of 3 documents left" in done and 'data-testid="queue-empty"' in done
    assert [(n, d) for n, d, _v in _records(app, de)] == [(1, de.docs[0]), (2, de.docs[2]), (3, de.docs[1])]
    # A document keyed already opens its record instead of a second form.
    again = staff.get(_key_url(de, de.docs[0]))
    assert again.status_code == 303 and "/records/" in again.headers["Location"]


def test_a_refused_record_shows_every_error_at_once_and_keeps_what_was_typed(app, de):
    staff = _client(app, de.world["staff"])
    url = _key_url(de, de.docs[0])
    typed = {"invoice_no": "X" * 21, "total": "12.5", "issued": "31/12/2025", "seller": wrong_digit(SELLER),
             "kind": "Other"}
    r = staff.post(_key_url(de), data=_form(staff, url, **typed))
    assert r.status_code == 422
    page = html.unescape(r.get_data(as_text=True))
    for key in typed:
        assert f'data-testid="error-{key}"' in page, key
    assert "5 fields need correcting; nothing was saved." in page
    assert "last digit does not check" in page and "On or after 01/01/2026." in page
    for key in ("invoice_no", "total", "issued", "seller"):
        assert f'value="{typed[key]}"' in page, key  # what was typed stays
    assert re.search(r'name="v-invoice_no"[^>]*aria-invalid="true"', page)
    assert re.search(r'name="v-invoice_no"[^>]*autofocus', page)  # the first error takes the focus
    assert "invoice-1.pdf" in page and _records(app, de) == []  # the same document, nothing saved
    missing = staff.post(_key_url(de), data=_form(staff, url, invoice_no="", total=""))
    assert missing.status_code == 422 and missing.get_data(as_text=True).count("Fill this in: it is required.") == 2


@pytest.mark.parametrize("odd", ["²", "١٢٣", "9" * 40, "1e5", "NaN", "-", "--5", "1,2,3", "x" * 5000, "0x10",
                                 "29/02/2025", "0000-01-01", " ", "\u202e12"])
def test_odd_input_is_refused_in_a_sentence_never_a_crash(app, de, odd):
    staff = _client(app, de.world["staff"])
    form = _form(staff, _key_url(de, de.docs[0]), invoice_no="HD-1", total=odd, issued=odd, seller=odd, kind=odd)
    r = staff.post(_key_url(de), data=form)
    assert r.status_code == 422, r.status_code
    manager = _client(app, de.world["manager"])
    r = manager.post(f"/t/{de.a.slug}/data-entry", data={
        "csrf_token": csrf_token(manager, f"/t/{de.a.slug}/data-entry/new"), "name": "Odd", "field_count": odd,
        "field-1-label": "A", "field-1-type": "number", "field-1-min": odd, "field-1-max_length": odd,
        "field-2-label": "B", "field-2-type": "text", "field-2-max_length": odd, "field-3-label": "C",
        "field-3-type": "date", "field-3-earliest": odd})
    assert r.status_code in (303, 422), r.status_code


def test_a_double_submit_makes_one_record(app, de):
    staff = _client(app, de.world["staff"])
    form = _form(staff, _key_url(de, de.docs[0]), **GOOD)
    first, second = staff.post(_key_url(de), data=form), staff.post(_key_url(de), data=form)
    assert first.status_code == second.status_code == 303
    assert first.headers["Location"] == second.headers["Location"]  # the same answer: record 1, next document
    assert len(_records(app, de)) == 1
    # Someone else's form for the same document (another token) is refused: it opens the record there is.
    other = _client(app, de.world["manager"])
    late = {**form, "submission": str(uuid.uuid4()), "csrf_token": csrf_token(other, _key_url(de, de.docs[1]))}
    r = other.post(_key_url(de), data=late)
    assert r.status_code == 303 and "/records/" in r.headers["Location"]
    assert "already" in html.unescape(other.get(r.headers["Location"]).get_data(as_text=True))
    assert len(_records(app, de)) == 1
    # And under the service: the same submission, twice, is one record.
    with app.app_context(), as_person(de.a.id, de.world["staff"]) as (user, tenant):
        token = uuid.uuid4()
        a = services.save_record(user, tenant, de.template, GOOD, locale="en", submission=token)
        b = services.save_record(user, tenant, de.template, GOOD, locale="en", submission=token)
        assert a.created and b.repeated and a.record.id == b.record.id
    assert len(_records(app, de)) == 2


# --- templates ------------------------------------------------------------------------------------------

def test_a_template_with_records_gains_fields_but_never_loses_or_retypes_one(app, de):
    with app.app_context(), as_person(de.a.id, de.world["manager"]) as (user, tenant):
        services.save_record(user, tenant, de.template, GOOD, locale="en", document_id=de.docs[0])
        more = [*ROWS, FieldInput(key="note", label="Note", type="text")]
        saved = services.save_template(user, tenant, name="Purchase invoices", description=None, rows=more,
                                       locale="en", template_id=de.template)
        assert [f["key"] for f in saved.fields][-1] == "note"
        with pytest.raises(services.DataEntryError) as removed:
            services.save_template(user, tenant, name="Purchase invoices", description=None, rows=more[1:],
                                   locale="en", template_id=de.template)
        assert "“Invoice number” cannot be removed: this template has 1 records" in removed.value.errors["fields"]
        retyped = [*more[:4], FieldInput(key="kind", label="Kind", type="text"), more[5]]
        with pytest.raises(services.DataEntryError) as changed:
            services.save_template(user, tenant, name="Purchase invoices", description=None, rows=retyped,
                                   locale="en", template_id=de.template)
        assert "cannot change its type" in changed.value.errors["field-5-type"]
        with pytest.raises(services.DataEntryError) as taken:
            services.save_template(user, tenant, name="purchase INVOICES", description=None, rows=ROWS, locale="en")
        assert "already" in taken.value.errors["name"]


def test_the_template_form_keeps_what_was_typed_and_marks_each_error(app, de):
    manager = _client(app, de.world["manager"])
    data = {"csrf_token": csrf_token(manager, f"/t/{de.a.slug}/data-entry/new"), "name": "", "field_count": "3",
            "field-1-label": "Amount", "field-1-type": "amount", "field-1-min": "9", "field-1-max": "1",
            "field-2-label": "Amount", "field-2-type": "number", "field-3-label": "Kind", "field-3-type": "choice"}
    r = manager.post(f"/t/{de.a.slug}/data-entry", data=data)
    assert r.status_code == 422
    page = html.unescape(r.get_data(as_text=True))
    for where in ("t-name-error", "field-1-max-error", "field-2-key-error", "field-3-options-error"):
        assert f'id="{where}"' in page, where
    assert 'value="Amount"' in page and 'value="9"' in page
    grown = manager.post(f"/t/{de.a.slug}/data-entry", data={**data, "then": "add_field"})
    assert grown.status_code == 200 and 'data-testid="field-row-4"' in grown.get_data(as_text=True)
    data.update({"name": "Receipts", "field-1-min": "1", "field-1-max": "9", "field-2-label": "Quantity",
                 "field-3-options": "Cash\nCard"})
    assert manager.post(f"/t/{de.a.slug}/data-entry", data=data).status_code == 303
    assert "Receipts" in manager.get(f"/t/{de.a.slug}/data-entry").get_data(as_text=True)


def test_an_archived_template_keys_nothing_new_and_keeps_its_records(app, de):
    with app.app_context(), as_person(de.a.id, de.world["manager"]) as (user, tenant):
        services.save_record(user, tenant, de.template, GOOD, locale="en", document_id=de.docs[0])
        services.set_archived(user, tenant, de.template, True)
        with pytest.raises(services.DataEntryError, match="archived"):
            services.save_record(user, tenant, de.template, GOOD, locale="en", document_id=de.docs[1])
    staff = _client(app, de.world["staff"])
    assert staff.get(_key_url(de)).status_code == 303
    assert "HD-0001" in staff.get(f"/t/{de.a.slug}/data-entry/{de.template}/records").get_data(as_text=True)


# --- records: list, edit, delete, export ------------------------------------------------------------------

def test_records_filter_by_the_day_they_were_keyed_and_edits_and_deletes_are_audited(app, de):
    with app.app_context(), as_person(de.a.id, de.world["staff"]) as (user, tenant):
        old = services.save_record(user, tenant, de.template, {**GOOD, "invoice_no": "OLD-1"}, locale="en",
                                   document_id=de.docs[0]).record
        old.keyed_at = utcnow() - timedelta(days=10)
        db.session.commit()
        services.save_record(user, tenant, de.template, {**GOOD, "invoice_no": "NEW-2"}, locale="en",
                             document_id=de.docs[1])
        old_id = old.id
    staff = _client(app, de.world["staff"])
    today = datetime.now().date()
    listed = staff.get(f"/t/{de.a.slug}/data-entry/{de.template}/records?since={today - timedelta(days=1)}")
    assert "NEW-2" in listed.get_data(as_text=True) and "OLD-1" not in listed.get_data(as_text=True)
    swapped = staff.get(f"/t/{de.a.slug}/data-entry/{de.template}/records?since={today}&until={today - timedelta(1)}")
    assert swapped.status_code == 422 and "swap them" in swapped.get_data(as_text=True)

    url = f"/t/{de.a.slug}/data-entry/{de.template}/records/{old_id}"
    form = {"csrf_token": csrf_token(staff, url), **{f"v-{k}": v for k, v in GOOD.items()}, "v-total": "3,000,000"}
    assert staff.post(url, data=form).status_code == 303
    refused = staff.post(url, data={**form, "v-total": "0"})
    assert refused.status_code == 422 and 'value="0"' in refused.get_data(as_text=True)
    assert staff.post(f"{url}/delete", data={"csrf_token": form["csrf_token"]}).status_code == 303
    assert [v["invoice_no"] for _n, _d, v in _records(app, de)] == ["NEW-2"]
    with app.app_context(), bound(Scope(tenant_ids=frozenset({de.a.id}))):
        events = {e.action: e.details for e in db.session.scalars(
            select(AuditEvent).where(AuditEvent.action.like("dataentry.%"), AuditEvent.object_id == str(old_id)))}
        db.session.rollback()
    assert events["dataentry.record_deleted"]["fields"] == sorted(GOOD)
    assert "3000000" not in str(events) and "OLD-1" not in str(events) and SELLER not in str(events)  # names only
    log = _client(app, de.world["a_client_admin"]).get(f"/t/{de.a.slug}/access-log?kind=dataentry")
    text = html.unescape(log.get_data(as_text=True))
    assert "deleted a data-entry record" in text and "keyed a data-entry record" in text
    assert "invoice-1.pdf" in text


def _export(client, de: SimpleNamespace, fmt: str) -> bytes:  # noqa: ANN001
    r = client.get(f"/t/{de.a.slug}/data-entry/{de.template}/records.{fmt}")
    assert r.status_code == 200 and "attachment" in r.headers["Content-Disposition"]
    return r.data


def test_the_export_neutralises_formulas_and_the_xlsx_reads_back_as_the_records(app, de):
    with app.app_context(), as_person(de.a.id, de.world["manager"]) as (user, tenant):  # a label can be a trap too
        rows = [FieldInput(key="invoice_no", label=TRAP, type="text", required=True, max_length="20"),
                FieldInput(key="total", label="Total", type="amount", required=True), *ROWS[2:]]
        services.save_template(user, tenant, name="Purchase invoices", description=None, rows=rows, locale="en",
                               template_id=de.template)
    keyed = [{**GOOD, "invoice_no": TRAP[:20]}, {"invoice_no": "HD-2", "total": "-150,000", "kind": "Receipt"}]
    with app.app_context(), as_person(de.a.id, de.world["staff"]) as (user, tenant):
        for values, doc in zip(keyed, de.docs, strict=False):
            services.save_record(user, tenant, de.template, values, locale="en", document_id=doc)
        name = db.session.get(User, de.world["staff"].id).name
    client = _client(app, de.world["a_client_admin"])  # the client reads and downloads its records
    table = list(csv.reader(io.StringIO(_export(client, de, "csv").decode("utf-8-sig"))))
    assert table[0] == ["'" + TRAP, "Total", "Issued on", "Seller's tax code", "Kind", "Document", "Keyed at",
                        "Keyed by"]
    assert table[1][:5] == ["'" + TRAP[:20], "2200000", "2026-11-05", SELLER, "Invoice"]
    assert table[2][:5] == ["HD-2", "-150000", "", "", "Receipt"]  # a negative amount is a number, not a formula
    assert [row[5] for row in table[1:]] == ["invoice-1.pdf", "invoice-2.pdf"] and table[1][7] == name

    sheet = load_workbook(io.BytesIO(_export(client, de, "xlsx"))).active
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    assert values[0][0] == "'" + TRAP and all(c.data_type != "f" for row in sheet.iter_rows() for c in row)
    assert values[1][:5] == ["'" + TRAP[:20], 2_200_000, datetime(2026, 11, 5), SELLER, "Invoice"]
    assert values[2][:5] == ["HD-2", -150_000, None, None, "Receipt"]
    assert [v[5] for v in values[1:]] == ["invoice-1.pdf", "invoice-2.pdf"]
    assert all(isinstance(v[6], datetime) for v in values[1:]) and values[2][7] == name
    with app.app_context(), bound(Scope(tenant_ids=frozenset({de.a.id}))):
        exported = [e.details for e in db.session.scalars(select(AuditEvent).where(
            AuditEvent.action == "dataentry.exported").order_by(AuditEvent.seq))]  # the chain's order
        db.session.rollback()
    assert [e["format"] for e in exported] == ["csv", "xlsx"] and exported[0]["fields"][0] == "invoice_no"
    assert "HD-2" not in str(exported)


def test_amounts_in_a_currency_with_cents_export_in_the_major_unit(app):
    from tests.factories import make_person, make_tenant

    with app.app_context():
        tenant = make_tenant(currency="USD")
        manager = make_person(Role.PROVIDER_ADMIN)
        with as_person(tenant.id, manager) as (user, t):
            template = services.save_template(user, t, name="Receipts", description=None, locale="en",
                                              rows=[FieldInput(key="paid", label="Paid", type="amount")])
            services.save_record(user, t, template.id, {"paid": "199.50"}, locale="en")
            out = services.export(user, t, template, "csv")
            assert services.values_of(db.session.scalars(select(Record)).one()) == {"paid": 19_950}
    assert out.content.decode("utf-8-sig").splitlines()[1].split(",")[0] == "199.50"
    assert Decimal("199.50") * 100 == 19_950


# --- who may, and other tenants --------------------------------------------------------------------------

def test_a_client_reads_the_records_but_cannot_key_or_define(app, de):
    for key in ("a_client_admin", "a_client_approver"):
        client = _client(app, de.world[key])
        assert client.get(f"/t/{de.a.slug}/data-entry").status_code == 200
        assert client.get(f"/t/{de.a.slug}/data-entry/{de.template}/records").status_code == 200
        assert client.get(_key_url(de)).status_code == 403
        token = csrf_token(client, f"/t/{de.a.slug}/data-entry")
        assert client.post(_key_url(de), data={"csrf_token": token, "v-invoice_no": "X"}).status_code == 403
        assert client.get(f"/t/{de.a.slug}/data-entry/new").status_code == 403
    member = _client(app, de.world["a_client_member"])
    assert member.get(f"/t/{de.a.slug}/data-entry").status_code == 403
    staff = _client(app, de.world["staff"])
    assert staff.get(f"/t/{de.a.slug}/data-entry/new").status_code == 403  # staff key, managers define
    assert _records(app, de) == []


def test_another_tenants_template_record_and_document_are_not_found(app, de):
    with app.app_context(), as_person(de.b.id, de.world["provider_admin"]) as (user, tenant):
        b_record = services.save_record(user, tenant, de.b_template, GOOD, locale="en", document_id=de.b_doc).record.id
    staff = _client(app, de.world["staff"])
    slug = de.a.slug
    for url in (f"/t/{slug}/data-entry/{de.b_template}/key", f"/t/{slug}/data-entry/{de.b_template}/records",
                f"/t/{slug}/data-entry/{de.b_template}/records.csv",
                f"/t/{slug}/data-entry/{de.template}/records/{b_record}", _key_url(de, de.b_doc)):
        r = staff.get(url)
        assert r.status_code == 404, url
        assert "beta" not in r.get_data(as_text=True).lower(), url
    assert _client(app, de.world["manager"]).get(f"/t/{slug}/data-entry/{de.b_template}/edit").status_code == 404
    token = csrf_token(staff, _key_url(de))
    form = {"csrf_token": token, "document_id": str(de.b_doc), **{f"v-{k}": v for k, v in GOOD.items()}}
    assert staff.post(_key_url(de), data=form).status_code == 404  # B's document in A's form
    assert staff.post(f"/t/{slug}/data-entry/{de.b_template}/key", data={"csrf_token": token}).status_code == 404
    assert staff.post(f"/t/{slug}/data-entry/{de.template}/records/{b_record}/delete",
                      data={"csrf_token": token}).status_code == 404
    assert _records(app, de) == []
    with app.app_context(), as_person(de.a.id, de.world["staff"]) as (user, tenant):
        from werkzeug.exceptions import NotFound

        with pytest.raises(NotFound):
            services.save_record(user, tenant, de.b_template, GOOD, locale="en")
        with pytest.raises(NotFound):
            services.save_record(user, tenant, de.template, GOOD, locale="en", document_id=de.b_doc)


# --- the document's page ----------------------------------------------------------------------------------

def test_the_documents_page_shows_its_records_and_what_it_can_still_be_keyed_with(app, de):
    with app.app_context(), as_person(de.a.id, de.world["staff"]) as (user, tenant):
        services.save_record(user, tenant, de.template, GOOD, locale="en", document_id=de.docs[0])
    with app.app_context(), as_person(de.a.id, de.world["manager"]) as (user, tenant):
        services.save_template(user, tenant, name="Receipts", description=None, locale="en",
                               rows=[FieldInput(label="Paid", type="amount")])
    page = html.unescape(_client(app, de.world["staff"]).get(f"/t/{de.a.slug}/documents/{de.docs[0]}")
                         .get_data(as_text=True))
    assert 'data-testid="document-dataentry"' in page and "Purchase invoices: record 1" in page
    assert re.search(r'data-testid="key-with">Receipts<', page)
    client = html.unescape(_client(app, de.world["a_client_approver"]).get(f"/t/{de.a.slug}/documents/{de.docs[0]}")
                           .get_data(as_text=True))
    assert "Purchase invoices: record 1" in client and 'data-testid="key-with"' not in client


# --- the API ----------------------------------------------------------------------------------------------

def _token(app, tenant_id: uuid.UUID, person, scope: str = "write") -> dict:  # noqa: ANN001
    from portal.api.tokens import create_token

    with app.app_context(), as_person(tenant_id, person) as (user, tenant):
        raw = create_token(user, tenant, "data entry", scope)
    return {"Authorization": f"Bearer {raw}"}


def test_the_api_lists_templates_keys_records_once_and_reads_them(app, de):
    api, staff = app.test_client(), _token(app, de.a.id, de.world["staff"])
    base = f"/api/v1/tenants/{de.a.slug}/data-entry"
    listed = api.get(f"{base}/templates", headers=staff).json["items"]
    assert [t["name"] for t in listed] == ["Purchase invoices"]
    assert [f["key"] for f in listed[0]["fields"]] == ["invoice_no", "total", "issued", "seller", "kind"]
    assert listed[0]["fields"][1] == {"key": "total", "label": "Total", "type": "amount", "required": True, "min": 1}

    values = {"invoice_no": "API-1", "total": 2_200_000, "issued": "2026-11-05", "seller": SELLER, "kind": "Invoice"}
    once = {**staff, "Idempotency-Key": "order-77"}
    made = api.post(f"{base}/templates/{de.template}/records", json={"values": values, "document_id": str(de.docs[0])},
                    headers=once)
    assert made.status_code == 201, made.json
    again = api.post(f"{base}/templates/{de.template}/records", json={"values": values, "document_id": str(de.docs[0])},
                     headers=once)
    assert again.status_code == 200 and again.json["id"] == made.json["id"]
    assert made.json["values"] == values and made.json["document"] == "invoice-1.pdf" and made.json["number"] == 1
    twice = api.post(f"{base}/templates/{de.template}/records", json={"values": values, "document_id": str(de.docs[0])},
                     headers=staff)
    assert twice.status_code == 409 and twice.json["record"] == made.json["id"]
    bad = api.post(f"{base}/templates/{de.template}/records",
                   json={"values": {"total": 12.5, "seller": wrong_digit(SELLER), "colour": "red"}}, headers=staff)
    assert bad.status_code == 422 and set(bad.json["errors"]) == {"invoice_no", "total", "seller", "colour"}
    assert api.get(f"{base}/records/{made.json['id']}", headers=staff).json == made.json
    page = api.get(f"{base}/templates/{de.template}/records?limit=1", headers=staff).json
    assert [r["number"] for r in page["items"]] == [1] and page["next_cursor"] is None

    client = _token(app, de.a.id, de.world["a_client_admin"])
    assert api.get(f"{base}/records/{made.json['id']}", headers=client).status_code == 200
    assert api.post(f"{base}/templates/{de.template}/records", json={"values": values},
                    headers=client).status_code == 403  # a client cannot key
    # Another tenant's template, document and record: not found.
    assert api.get(f"{base}/templates/{de.b_template}/records", headers=staff).status_code == 404
    assert api.post(f"{base}/templates/{de.template}/records", json={"values": values, "document_id": str(de.b_doc)},
                    headers=staff).status_code == 404
    b_admin = _token(app, de.b.id, de.world["provider_admin"])
    assert api.get(f"/api/v1/tenants/{de.b.slug}/data-entry/records/{made.json['id']}",
                   headers=b_admin).status_code == 404
    assert len(_records(app, de)) == 1


def test_the_data_entry_page_says_how_many_documents_each_template_has_left(app, de):
    """Each template's queue, counted for all the templates at once: the live documents without a record of it.
    By hand: 3 documents; invoice-1 keyed with the first template, invoice-2 keyed with the second and then
    removed to the trash. First template: 2 live documents, 1 of them keyed: 1 of 2 left. Second: its only
    record is on a removed document: 2 of 2 left."""
    from portal.documents import trash

    with app.app_context():
        second = _template(de.a.id, de.world["manager"], "Sales receipts")
    with app.app_context(), as_person(de.a.id, de.world["staff"]) as (user, tenant):
        services.save_record(user, tenant, de.template, GOOD, locale="en", document_id=de.docs[0])
        services.save_record(user, tenant, second, GOOD, locale="en", document_id=de.docs[1])
        trash.trash(user, tenant, str(de.docs[1]), reason="Sent twice")
    page = _client(app, de.world["staff"]).get(f"/t/{de.a.slug}/data-entry").get_data(as_text=True)
    shown = re.findall(r'<h2>([^<]+)</h2>.*?data-testid="left">([^<]+)<', page, re.S)
    assert dict(shown) == {"Purchase invoices": "1 of 2 documents left", "Sales receipts": "2 of 2 documents left"}
