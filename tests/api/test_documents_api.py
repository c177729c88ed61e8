"""The vault through the API: multipart upload, list, read, re-file, download, requests."""

from __future__ import annotations

import io
import uuid

from sqlalchemy import func, select

from portal.documents.models import Document, DocumentRequest, DocumentVersion, StoredObject
from portal.extensions import db
from tests.api.util import bearer, in_tenant, issue_token, problem
from tests.documents import samples


def _upload(client, world, token: str, files, **fields):
    data = {**fields, "file": [(io.BytesIO(body), name) for body, name in files]}
    return client.post(f"/api/v1/tenants/{world.a.slug}/documents", data=data, headers=bearer(token),
                       content_type="multipart/form-data")


def _vault(app, tenant) -> tuple[int, int, int]:
    """What the tenant's vault holds: documents, versions, stored objects (read from the database)."""
    with in_tenant(app, tenant):
        return tuple(db.session.scalar(select(func.count()).select_from(model))
                     for model in (Document, DocumentVersion, StoredObject))


def test_upload_list_read_download_and_refile_by_token(app, client, world):
    token = issue_token(app, world["a_client_admin"], world.a, "write")
    body = samples.pdf(8100)
    r = _upload(client, world, token, [(body, "api invoice.pdf"), (samples.windows_exe(), "x.pdf")],
                category="invoice", period="2026-02", tags="api")
    assert r.status_code == 201, r.data
    stored, refused = r.json["results"]
    assert stored["status"] == "stored" and stored["document"]["period"] == "2026-02"
    assert refused["status"] == "refused" and refused["code"] == "type_not_allowed"
    doc_id = stored["document"]["id"]
    assert _vault(app, world.a) == (1, 1, 1)  # the refused file left nothing behind

    listing = client.get(f"/api/v1/tenants/{world.a.slug}/documents?tag=api", headers=bearer(token)).json
    assert [d["id"] for d in listing["items"]] == [doc_id]
    one = client.get(f"/api/v1/tenants/{world.a.slug}/documents/{doc_id}", headers=bearer(token)).json
    assert one["versions"][0]["sha256"] and one["versions"][0]["mime"] == "application/pdf"
    content = client.get(f"/api/v1/tenants/{world.a.slug}/documents/{doc_id}/content", headers=bearer(token))
    assert content.data == body and content.headers["Content-Disposition"].startswith("attachment")

    patched = client.patch(f"/api/v1/tenants/{world.a.slug}/documents/{doc_id}", headers=bearer(token),
                           json={"category": "receipt", "period": "2026-01", "tags": ["x"],
                                 "tenant_id": str(world.b.id)})
    assert patched.status_code == 200 and patched.json["category"] == "receipt"
    # The tenant_id in the body moved nothing: the document is still A's, and B holds nothing.
    assert _vault(app, world.b) == (0, 0, 0)
    with in_tenant(app, world.a):
        document = db.session.get(Document, uuid.UUID(doc_id))
        assert (document.tenant_id, document.category) == (world.a.id, "receipt")


def test_every_file_refused_answers_422_with_the_reason(app, client, world):
    token = issue_token(app, world["a_client_member"], world.a, "write")
    body = problem(_upload(client, world, token, [(b"", "empty.pdf")]), 422)
    assert "empty" in body["detail"].lower()
    assert _vault(app, world.a) == (0, 0, 0)


def test_a_read_only_token_cannot_upload(app, client, world):
    token = issue_token(app, world["a_client_member"], world.a, "read")
    problem(_upload(client, world, token, [(samples.pdf(8200), "a.pdf")]), 403)
    assert _vault(app, world.a) == (0, 0, 0)


def test_a_body_that_is_not_multipart_is_refused_clearly(app, client, world):
    token = issue_token(app, world["a_client_member"], world.a, "write")
    body = problem(client.post(f"/api/v1/tenants/{world.a.slug}/documents", json={"file": "x"},
                               headers=bearer(token)), 422)
    assert "multipart/form-data" in body["detail"]
    assert _vault(app, world.a) == (0, 0, 0)


def test_requests_through_the_api(app, client, world):
    staff = issue_token(app, world["staff"], world.a, "write")
    r = client.post(f"/api/v1/tenants/{world.a.slug}/document-requests", headers=bearer(staff),
                    json={"title": "Q1 close", "items": [{"description": "Bank statement March",
                                                          "category": "bank_statement", "due_date": "2031-04-05"}]})
    assert r.status_code == 201, r.data
    request_id = r.json["id"]
    member = issue_token(app, world["a_client_member"], world.a, "write")
    listed = client.get(f"/api/v1/tenants/{world.a.slug}/document-requests", headers=bearer(member)).json
    assert request_id in [x["id"] for x in listed["items"]]
    item_id = r.json["items"][0]["id"]
    up = _upload(client, world, member, [(samples.pdf(8300), "bank.pdf")], item=item_id)
    assert up.status_code == 201
    one = client.get(f"/api/v1/tenants/{world.a.slug}/document-requests/{request_id}", headers=bearer(member)).json
    assert one["items"][0]["fulfilled_at"] is not None
    problem(client.post(f"/api/v1/tenants/{world.a.slug}/document-requests", headers=bearer(member),
                        json={"title": "x", "items": [{"description": "y"}]}), 403)
    with in_tenant(app, world.a):
        assert [str(i) for i in db.session.scalars(select(DocumentRequest.id))] == [request_id]


def test_the_openapi_document_describes_the_vault(client):
    spec = client.get("/api/v1/openapi.json").json
    upload = spec["paths"]["/api/v1/tenants/{tenant_slug}/documents"]["post"]
    assert "multipart/form-data" in upload["requestBody"]["content"]
    assert "/api/v1/tenants/{tenant_slug}/documents/{document_id}/content" in spec["paths"]
    assert "/api/v1/tenants/{tenant_slug}/document-requests" in spec["paths"]
