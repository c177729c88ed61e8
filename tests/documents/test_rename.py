"""Renaming and re-categorising a document: on its page and through the API, audited, shown at once;
a refusal says what is wrong next to the field and keeps what was typed."""

from __future__ import annotations

import io
import re
import uuid

import pytest
from sqlalchemy import select

from portal.documents.models import Document
from portal.extensions import db
from tenants.audit import AuditEvent
from tests.api.util import bearer, in_tenant, issue_token, problem
from tests.documents import samples
from tests.factories import csrf_token, login


def _upload(client, slug: str, body: bytes, name: str, category: str = "other") -> str:
    token = csrf_token(client, f"/t/{slug}/documents")
    r = client.post(f"/t/{slug}/documents/upload", headers={"Accept": "application/json"},
                    content_type="multipart/form-data",
                    data={"csrf_token": token, "category": category, "file": [(io.BytesIO(body), name)]})
    assert r.status_code == 200, r.data
    return r.json["results"][0]["url"].rsplit("/", 1)[1]


def _refile(client, slug: str, doc_id: str, **fields):
    url = f"/t/{slug}/documents/{doc_id}"
    data = {"csrf_token": csrf_token(client, url), "title": "", "category": "other", "period": "", "tags": "",
            **fields}
    return client.post(url + "/refile", data=data)


def _document(app, tenant, doc_id: str) -> tuple[str, str]:
    with in_tenant(app, tenant):
        doc = db.session.get(Document, uuid.UUID(doc_id))
        return doc.title, doc.category


def _refiled(app, tenant, doc_id: str) -> list[dict]:
    with in_tenant(app, tenant):
        return [row.details for row in db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "document.refiled", AuditEvent.object_id == doc_id)
            .order_by(AuditEvent.seq))]


@pytest.fixture
def admin(app, world):
    client = app.test_client()
    login(client, world["a_client_admin"])
    return client


def test_a_document_is_renamed_and_recategorised_on_its_page(app, world, admin):
    slug = world.a.slug
    doc_id = _upload(admin, slug, samples.pdf(7401), "scan_0042.pdf")
    r = _refile(admin, slug, doc_id, title="  Vietcombank statement March 2026  ", category="bank_statement",
                period="2026-03", tags="vcb")
    assert r.status_code == 302
    page = admin.get(r.headers["Location"]).get_data(as_text=True)
    assert "“scan_0042.pdf” is now called “Vietcombank statement March 2026”, filed as Bank statement." in page
    assert '<h1 data-testid="doc-title">Vietcombank statement March 2026</h1>' in page
    listing = admin.get(f"/t/{slug}/documents?category=bank_statement").get_data(as_text=True)
    assert "Vietcombank statement March 2026" in listing and "scan_0042.pdf" not in listing
    assert "Vietcombank statement March 2026" in admin.get(f"/t/{slug}/documents?q=vietcombank").get_data(
        as_text=True)
    assert _document(app, world.a, doc_id) == ("Vietcombank statement March 2026", "bank_statement")
    [event] = _refiled(app, world.a, doc_id)
    assert event["before"] == {"title": "scan_0042.pdf", "category": "other", "period": None}
    assert event["after"] == {"title": "Vietcombank statement March 2026", "category": "bank_statement",
                              "period": "2026-03-01"}
    log = admin.get(f"/t/{slug}/access-log").get_data(as_text=True)
    assert "re-filed a document" in log and "Vietcombank statement March 2026" in log

    # Only the category: the message says where it is filed, the name stays.
    r = _refile(admin, slug, doc_id, title="Vietcombank statement March 2026", category="other")
    page = admin.get(r.headers["Location"]).get_data(as_text=True)
    assert "“Vietcombank statement March 2026” is now filed as Other." in page


@pytest.mark.parametrize(("title", "message"), [
    ("   ", "Give the document a title: spaces alone are not a title."),
    ("x" * 201, "A document&#39;s title can be at most 200 characters."),
])
def test_a_bad_title_is_refused_next_to_the_field_and_the_form_keeps_its_input(app, world, admin, title, message):
    slug = world.a.slug
    doc_id = _upload(admin, slug, samples.pdf(7411), "receipt.pdf")
    r = _refile(admin, slug, doc_id, title=title, category="receipt", tags="taxi, hanoi", period="2026-02")
    assert r.status_code == 422
    page = r.get_data(as_text=True)
    assert re.search(rf'<small class="error" id="title-error-1">{re.escape(message)}</small>', page), page
    assert 'value="taxi, hanoi"' in page and 'value="2026-02"' in page  # what was typed is still there
    assert re.search(r'<option selected value="receipt">|<option value="receipt" selected', page)
    assert _document(app, world.a, doc_id) == ("receipt.pdf", "other")
    assert _refiled(app, world.a, doc_id) == []


def test_a_client_member_cannot_rename_and_another_tenants_document_is_not_found(app, world, admin):
    member = app.test_client()
    login(member, world["a_client_member"])
    doc_id = _upload(member, world.a.slug, samples.pdf(7421), "mine.pdf")
    assert _refile(member, world.a.slug, doc_id, title="renamed").status_code == 403
    b_admin = app.test_client()
    login(b_admin, world["b_client_admin"])
    b_doc = _upload(b_admin, world.b.slug, samples.pdf(7422), "beta.pdf")
    r = admin.post(f"/t/{world.a.slug}/documents/{b_doc}/refile",
                   data={"csrf_token": csrf_token(admin, f"/t/{world.a.slug}/documents"), "title": "stolen",
                         "category": "other"})
    assert r.status_code == 404
    assert _document(app, world.b, b_doc) == ("beta.pdf", "other")
    assert _document(app, world.a, doc_id) == ("mine.pdf", "other")


def test_rename_through_the_api(app, client, world):
    raw = issue_token(app, world["a_client_admin"], world.a, "write")
    admin = app.test_client()
    login(admin, world["a_client_admin"])
    doc_id = _upload(admin, world.a.slug, samples.pdf(7431), "IMG_2231.pdf")
    url = f"/api/v1/tenants/{world.a.slug}/documents/{doc_id}"
    r = client.patch(url, headers=bearer(raw), json={"title": "Taxi receipt, Hanoi", "category": "receipt"})
    assert r.status_code == 200 and (r.json["title"], r.json["category"]) == ("Taxi receipt, Hanoi", "receipt")
    assert client.get(url, headers=bearer(raw)).json["title"] == "Taxi receipt, Hanoi"
    for bad in ("   ", "", "x" * 201):
        problem(client.patch(url, headers=bearer(raw), json={"title": bad}), 422)
    assert _document(app, world.a, doc_id) == ("Taxi receipt, Hanoi", "receipt")
    [event] = _refiled(app, world.a, doc_id)
    assert (event["before"]["title"], event["after"]["title"]) == ("IMG_2231.pdf", "Taxi receipt, Hanoi")
