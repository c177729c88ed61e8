"""Uploading through the pages: stored encrypted, refused with a reason, duplicates, versions, downloads."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from sqlalchemy import func, select

from portal.documents.models import Document, StoredObject
from portal.extensions import db
from tenants.audit import AuditEvent
from tenants.context import Scope, bound
from tests.documents import samples
from tests.factories import csrf_token, login


def _docs_url(world) -> str:
    return f"/t/{world.a.slug}/documents"


def _upload(client, world, files: list[tuple[bytes, str]], *, json: bool = True, token: str | None = None,
            **fields) -> object:
    token = token if token is not None else csrf_token(client, _docs_url(world))
    data = {"csrf_token": token, "category": fields.pop("category", "invoice"), **fields,
            "file": [(io.BytesIO(body), name) for body, name in files]}
    headers = {"Accept": "application/json"} if json else {}
    return client.post(f"{_docs_url(world)}/upload", data=data, headers=headers, content_type="multipart/form-data")


def _objects(app, world) -> int:
    with app.app_context(), bound(Scope(tenant_ids=frozenset({world.a.id}))):
        return db.session.scalar(select(func.count()).select_from(StoredObject))


def _stored_files(app) -> list[Path]:
    root = Path(app.config["STORAGE_DIR"])
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


@pytest.fixture
def member(app, world):
    client = app.test_client()
    login(client, world["a_client_member"])
    return client


def test_a_pdf_is_stored_encrypted_and_comes_back_identical(app, world, member):
    body = samples.pdf(seed := int.from_bytes(os.urandom(2), "big"))
    r = _upload(member, world, [(body, "March invoice.pdf")], period="2026-03", tags="vietcombank, Q1")
    assert r.status_code == 200, r.data
    result = r.json["results"][0]
    assert result["status"] == "stored" and result["url"], result
    assert "encrypted" in result["message"]

    # Only ciphertext on disk: the PDF's bytes appear in no stored file.
    assert all(body[:64] not in p.read_bytes() and b"%PDF" not in p.read_bytes()[:8] for p in _stored_files(app))

    page = member.get(result["url"])
    assert page.status_code == 200 and b"March invoice.pdf" in page.data
    listing = member.get(_docs_url(world) + "?tag=vietcombank").get_data(as_text=True)
    assert "March invoice.pdf" in listing and "2026-03" in listing

    download = member.get(result["url"] + "/download")
    assert download.status_code == 200
    assert download.data == body
    assert download.headers["Content-Disposition"].startswith("attachment")
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    # Never rendered by the browser as a page of ours, never kept in a shared cache.
    assert download.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert "no-store" in download.headers["Cache-Control"]
    assert download.headers["Content-Type"] == "application/pdf"
    assert int(download.headers["Content-Length"]) == len(body)
    assert seed is not None


def test_views_and_downloads_appear_in_the_clients_access_log(app, world, member):
    r = _upload(member, world, [(samples.pdf(101), "bank.pdf")], category="bank_statement")
    url = r.json["results"][0]["url"]
    staff = app.test_client()
    login(staff, world["staff"])  # assigned to tenant A
    assert staff.get(url).status_code == 200
    assert staff.get(url + "/download").status_code == 200
    admin = app.test_client()
    login(admin, world["a_client_admin"])
    log = admin.get(f"/t/{world.a.slug}/access-log?side=provider").get_data(as_text=True)
    assert world["staff"].email in log or world["staff"].name in log
    assert "bank.pdf" in log
    with app.app_context(), bound(Scope(tenant_ids=frozenset({world.a.id}))):
        actions = set(db.session.scalars(select(AuditEvent.action).where(AuditEvent.actor_id == world["staff"].id)))
    assert {"document.viewed", "document.downloaded"} <= actions


@pytest.mark.parametrize(("body", "name", "code"), [
    (samples.windows_exe(), "invoice.pdf", "type_not_allowed"),
    (b"", "empty.pdf", "empty"),
    (b"<html><script>alert(1)</script></html>", "invoice.pdf", "type_not_allowed"),
])
def test_a_file_that_is_not_what_it_claims_is_refused_and_nothing_is_kept(app, world, member, body, name, code):
    before_objects, before_files = _objects(app, world), len(_stored_files(app))
    r = _upload(member, world, [(body, name)])
    assert r.status_code == 422
    result = r.json["results"][0]
    assert result["status"] == "refused" and result["code"] == code
    assert result["message"] and "Traceback" not in result["message"]
    assert _objects(app, world) == before_objects
    assert len(_stored_files(app)) == before_files


def test_a_zip_bomb_is_refused_and_its_object_deleted(app, world, member):
    before_files = len(_stored_files(app))
    r = _upload(member, world, [(samples.zip_bomb(2048), "statements.zip")], category="bank_statement")
    assert r.status_code == 422
    assert r.json["results"][0]["code"] == "zip_bomb"
    assert len(_stored_files(app)) == before_files


def test_a_workbook_is_recognised_inside_its_zip_container(app, world, member):
    r = _upload(member, world, [(samples.xlsx(), "payroll.bin")], category="payroll_input")
    result = r.json["results"][0]
    assert result["status"] == "stored", result
    assert result["url"]
    download = member.get(result["url"] + "/download")
    assert download.headers["Content-Type"].startswith("application/vnd.openxmlformats")
    assert "payroll.xlsx" in download.headers["Content-Disposition"]


def test_a_file_over_the_limit_is_refused_while_streaming(app, world, member):
    app.config["UPLOAD_MAX_BYTES"], saved = 50_000, app.config["UPLOAD_MAX_BYTES"]
    try:
        before = len(_stored_files(app))
        big = samples.pdf(7) + os.urandom(200_000)
        r = _upload(member, world, [(big, "big.pdf")])
        assert r.status_code in (413, 422)
        message = r.json.get("error") or r.json["results"][0]["message"]
        assert "KB" in message or "MB" in message
        assert len(_stored_files(app)) == before
    finally:
        app.config["UPLOAD_MAX_BYTES"] = saved


def test_a_file_just_over_the_limit_never_reads_as_the_limit_itself(app):
    from portal.documents.services import refuse_early
    from tenants.models import Tenant

    limit = app.config["UPLOAD_MAX_BYTES"]
    with app.app_context():
        message = refuse_early(Tenant(), limit + 1)
    assert f"This file is {limit // 2**20}.1 MB; files may be at most {limit // 2**20} MB" in message


def test_names_with_paths_and_control_characters_are_neutralised(app, world, member):
    r = _upload(member, world, [(samples.pdf(55), "../../etc/\x1b[31mpasswd\u202egpj.pdf")])
    result = r.json["results"][0]
    assert result["status"] == "stored"
    assert "/" not in result["name"] and "\x1b" not in result["name"] and "\u202e" not in result["name"]
    assert all("passwd" not in str(p) for p in _stored_files(app))  # names are never storage keys


def test_the_same_file_twice_is_linked_not_stored_twice(app, world, member):
    body = samples.pdf(303)
    first = _upload(member, world, [(body, "receipt.pdf")]).json["results"][0]
    objects = _objects(app, world)
    second = _upload(member, world, [(body, "receipt copy.pdf")]).json["results"][0]
    assert second["status"] == "duplicate"
    assert second["url"] == first["url"]
    assert _objects(app, world) == objects


def test_a_new_version_keeps_the_old_one(app, world, member):
    v1, v2 = samples.pdf(401), samples.pdf(402)
    url = _upload(member, world, [(v1, "contract.pdf")], category="contract").json["results"][0]["url"]
    doc_id = url.rsplit("/", 1)[1]
    r = _upload(member, world, [(v2, "contract signed.pdf")], document=doc_id)
    assert r.json["results"][0]["status"] == "version"
    assert member.get(url + "/download").data == v2
    assert member.get(url + "/download?version=1").data == v1
    page = member.get(url).get_data(as_text=True)
    assert "contract signed.pdf" in page and "contract.pdf" in page


def test_several_files_in_one_request_each_get_their_own_answer(app, world, member):
    r = _upload(member, world, [(samples.png(9), "a.png"), (samples.windows_exe(), "b.pdf"),
                                (samples.csv_bytes(), "c.csv")], category="other")
    statuses = [x["status"] for x in r.json["results"]]
    assert statuses == ["stored", "refused", "stored"]


def test_without_javascript_the_form_answers_with_a_results_page(app, world, member):
    r = _upload(member, world, [(samples.pdf(808), "plain.pdf")], json=False)
    assert r.status_code == 200 and b"plain.pdf" in r.data and b"upload-results" in r.data


def test_an_upload_without_its_csrf_token_is_refused_and_nothing_is_kept(app, world, member):
    before = len(_stored_files(app))
    r = _upload(member, world, [(samples.pdf(909), "x.pdf")], token="")
    assert r.status_code == 400
    assert len(_stored_files(app)) == before


def test_members_see_only_their_own_uploads(app, world, member):
    admin = app.test_client()
    login(admin, world["a_client_admin"])
    admin_doc = _upload(admin, world, [(samples.pdf(1201), "board minutes.pdf")]).json["results"][0]["url"]
    member_doc = _upload(member, world, [(samples.pdf(1202), "my receipt.pdf")]).json["results"][0]["url"]
    assert member.get(admin_doc).status_code == 404
    assert member.get(admin_doc + "/download").status_code == 404
    assert "board minutes.pdf" not in member.get(_docs_url(world)).get_data(as_text=True)
    assert admin.get(member_doc).status_code == 200


def test_a_thumbnail_is_rendered_by_the_worker_and_served_as_png(app, world, member, run_jobs):
    url = _upload(member, world, [(samples.jpeg(77), "receipt.jpg")], category="receipt").json["results"][0]["url"]
    assert member.get(url + "/preview.png").status_code == 404  # not rendered yet
    run_jobs()
    r = member.get(url + "/preview.png")
    assert r.status_code == 200 and r.data.startswith(b"\x89PNG")
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    with app.app_context(), bound(Scope(tenant_ids=frozenset({world.a.id}))):
        thumbs = db.session.scalars(select(StoredObject).where(StoredObject.purpose == "thumbnail")).all()
        assert thumbs and all(t.mime == "image/png" for t in thumbs)
    assert b"preview" in member.get(url).data


def test_the_documents_page_says_what_to_do_when_empty(app, world):
    client = app.test_client()
    login(client, world["a_client_approver"])
    page = client.get(_docs_url(world)).get_data(as_text=True)
    assert "documents-empty" in page or "doc-grid" in page
    assert 'data-upload' in page and 'capture="environment"' in page


def test_documents_of_another_tenant_do_not_exist_here(app, world, member):
    """Tenant B's admin uploads; tenant A's people reach it by no URL, even under their own slug."""
    b_admin = app.test_client()
    login(b_admin, world["b_client_admin"])
    token = csrf_token(b_admin, f"/t/{world.b.slug}/documents")
    r = b_admin.post(f"/t/{world.b.slug}/documents/upload", headers={"Accept": "application/json"},
                     data={"csrf_token": token, "category": "invoice",
                           "file": [(io.BytesIO(samples.pdf(4242)), "beta secret.pdf")]})
    b_url = r.json["results"][0]["url"]
    b_id = b_url.rsplit("/", 1)[1]
    a_admin = app.test_client()
    login(a_admin, world["a_client_admin"])
    for path in ("", "/download", "/preview.png"):
        assert a_admin.get(f"/t/{world.a.slug}/documents/{b_id}{path}").status_code == 404
    # …and a version upload aimed at B's document from A's workspace finds nothing to attach to.
    r = _upload(a_admin, world, [(samples.pdf(4243), "hijack.pdf")], document=b_id)
    assert r.status_code == 404
    with app.app_context(), bound(Scope(tenant_ids=frozenset({world.b.id}))):
        doc = db.session.get(Document, b_id)
        assert doc.current_version == 1


def test_a_tampered_stored_object_is_refused_clearly_and_nothing_is_sent(app, world, member):
    from tenants.sealed import CHUNK_SIZE

    body = samples.pdf(9999) + os.urandom(2 * CHUNK_SIZE)  # several chunks
    url = _upload(member, world, [(body, "tamper.pdf")]).json["results"][0]["url"]
    doc_id = url.rsplit("/", 1)[1]
    with app.app_context(), bound(Scope(tenant_ids=frozenset({world.a.id}))):
        key = db.session.get(Document, doc_id).latest.object.storage_key
    path = Path(app.config["STORAGE_DIR"]) / key
    sealed = bytearray(path.read_bytes())
    sealed[len(sealed) // 2] ^= 0x01  # one bit, in the middle of a chunk
    path.write_bytes(bytes(sealed))
    r = member.get(url + "/download")
    # A few MiB are verified whole before the answer starts: refused before any byte (the streaming
    # case, over DOWNLOAD_VERIFY_MAX_MB, is tests/documents/test_download_integrity.py's).
    assert r.status_code == 502 and "integrity check" in r.get_data(as_text=True)
    sealed[60] ^= 0x01  # now the header too: refused before anything is sent
    path.write_bytes(bytes(sealed))
    r = member.get(url + "/download")
    assert r.status_code == 502
    assert "integrity check" in r.get_data(as_text=True)
    with app.app_context(), bound(Scope(tenant_ids=frozenset({world.a.id}))):
        assert db.session.scalars(select(AuditEvent).where(AuditEvent.action == "document.unreadable")).first()


# The categories that take a CSV, as the product's filing rules name them (docs/architecture.md):
# bank statements, payroll input, and "other".
TAKE_CSV = ["bank_statement", "payroll_input", "other"]


def test_a_csv_among_receipts_is_refused_alone_and_offered_the_categories_that_take_it(app, world, member):
    r = _upload(member, world, [(samples.jpeg(501), "taxi.jpg"), (samples.csv_bytes(4), "bank.csv"),
                                (samples.pdf(502), "lunch.pdf")], category="receipt")
    assert r.status_code == 200, r.data
    taxi, bank, lunch = r.json["results"]
    assert taxi["status"] == lunch["status"] == "stored"  # the batch went on
    assert bank["status"] == "refused" and bank["code"] == "type_not_allowed"
    assert [c["value"] for c in bank["categories"]] == TAKE_CSV
    assert bank["categories"][0]["label"] == "Bank statement"
    # Sent again alone with a category that takes it: stored, filed as chosen.
    r = _upload(member, world, [(samples.csv_bytes(4), "bank.csv")], category="bank_statement")
    assert r.json["results"][0]["status"] == "stored"
    with app.app_context(), bound(Scope(tenant_ids=frozenset({world.a.id}))):
        filed = dict(db.session.execute(select(Document.title, Document.category)).all())
    assert filed == {"taxi.jpg": "receipt", "lunch.pdf": "receipt", "bank.csv": "bank_statement"}


def test_a_refused_program_is_offered_no_category(app, world, member):
    r = _upload(member, world, [(samples.windows_exe(), "invoice.pdf.exe")], category="receipt")
    refused = r.json["results"][0]
    assert refused["status"] == "refused" and refused["categories"] == []


def test_the_page_without_javascript_names_the_categories_that_take_the_file(app, world, member):
    r = _upload(member, world, [(samples.csv_bytes(3), "salaries.csv")], category="contract", json=False)
    assert r.status_code == 422
    assert "Categories that take this file: Bank statement, Payroll input, Other." in r.get_data(as_text=True)


def _request_item(app, world, category: str) -> str:
    from portal.documents.models import DocumentRequest, RequestItem

    with app.app_context(), bound(Scope(tenant_ids=frozenset({world.a.id}))):
        request = DocumentRequest(tenant_id=world.a.id, title="April papers", created_by_id=world["staff"].id)
        item = RequestItem(tenant_id=world.a.id, request=request, position=0, description="April statement",
                           category=category)
        db.session.add(item)
        db.session.commit()
        return str(item.id)


def _item(app, world, item_id: str):
    from portal.documents.models import RequestItem

    with app.app_context(), bound(Scope(tenant_ids=frozenset({world.a.id}))):
        item = db.session.get(RequestItem, item_id)
        db.session.expunge(item)
        return item


def test_a_file_filed_as_something_else_does_not_answer_a_request_item(app, world, member):
    body = samples.pdf(503)
    _upload(member, world, [(body, "taxi receipt.pdf")], category="receipt")
    item_id = _request_item(app, world, "bank_statement")
    r = _upload(member, world, [(body, "statement.pdf")], item=item_id)
    result = r.json["results"][0]
    assert result["status"] == "refused" and result["code"] == "filed_elsewhere"
    assert "filed as Receipt" in result["message"] and "asks for Bank statement" in result["message"]
    item = _item(app, world, item_id)
    assert item.fulfilled_at is None and item.document_id is None


def test_a_file_filed_as_other_answers_the_item_and_takes_its_category(app, world, member):
    body = samples.pdf(504)
    _upload(member, world, [(body, "scan.pdf")], category="other")
    item_id = _request_item(app, world, "bank_statement")
    r = _upload(member, world, [(body, "statement.pdf")], item=item_id)
    result = r.json["results"][0]
    assert result["status"] == "duplicate" and "now filed as Bank statement" in result["message"]
    item = _item(app, world, item_id)
    assert item.fulfilled_at is not None
    with app.app_context(), bound(Scope(tenant_ids=frozenset({world.a.id}))):
        doc = db.session.get(Document, item.document_id)
        assert (doc.title, doc.category) == ("scan.pdf", "bank_statement")
        assert db.session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "document.refiled", AuditEvent.object_id == str(doc.id))) == 1
