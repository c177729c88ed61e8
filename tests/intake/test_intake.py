"""Intake: the vault announces, intake reads (text layer, OCR), classifies and routes, once, and says why not.

Real PostgreSQL, Redis and an rq worker (``run_jobs``); real Tesseract and poppler in the sandboxed child.
Expected texts come from the documents made here, never from the records under test.
"""

from __future__ import annotations

import ast
import io
import uuid
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image, ImageDraw, ImageFont
from sqlalchemy import func, select
from sqlalchemy import text as sql_text
from weasyprint import HTML

from portal import events
from portal.documents import services as documents
from portal.documents.models import Document, StoredObject
from portal.extensions import db
from portal.intake import chain
from portal.intake.models import IntakeRecord
from portal.intake.steps import classify, plain
from portal.work.models import Task, TaskDocument
from tenants.audit import AuditEvent
from tenants.context import Scope, bound, for_tenant
from tenants.lifecycle import assign
from tenants.models import Tenant, User
from tenants.policy import Role
from tests.documents import samples
from tests.factories import csrf_token, login, make_person, make_tenant
from workers.models import OutboxJob

ROOT = Path(__file__).resolve().parents[2]
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
INVOICE_HTML = ("<h1>HÓA ĐƠN GIÁ TRỊ GIA TĂNG</h1><p>Ký hiệu: 1C26TAA Số: 0001234</p>"
                "<p>Đơn vị bán hàng: Công ty TNHH Hoa Sen</p><p>Tổng cộng tiền thanh toán: 1.944.000 đồng</p>")


def text_pdf() -> bytes:
    return HTML(string=INVOICE_HTML).write_pdf()


def scan(lines: list[str], *, angle: float = 0.0, fmt: str = "PNG") -> bytes:
    """A picture of printed lines, as a scanner or a phone would give it (turned by ``angle`` degrees)."""
    font = ImageFont.truetype(FONT, 44)
    image = Image.new("L", (1500, 120 + 90 * len(lines)), 255)
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((60, 60 + 90 * i), line, font=font, fill=0)
    if angle:
        image = image.rotate(angle, expand=True, fillcolor=255)
    out = io.BytesIO()
    image.convert("RGB").save(out, fmt, **({"resolution": 150} if fmt == "PDF" else {}))
    return out.getvalue()


def _upload(app, body: bytes, name: str, *, category: str = "invoice"):
    """A new client's admin uploads one file through the vault; (tenant, the admin, the document's id)."""
    with app.app_context():
        tenant = make_tenant()
        person = make_person(Role.CLIENT_ADMIN, tenant)
        user = db.session.get(User, person.id)
        with bound(Scope(user_id=user.id, tenant_ids=frozenset({tenant.id}), role=Role.CLIENT_ADMIN)):
            t = db.session.get(Tenant, tenant.id)
            result = documents.upload(user, t, [body], filename=name,
                                      target=documents.upload_target(user, category=category))
            assert result.ok, result.message
            return SimpleNamespace(id=t.id, slug=t.slug), person, result.document.id


def _record(app, tenant_id, document_id, version: int = 1) -> IntakeRecord | None:
    with app.app_context(), for_tenant(tenant_id):
        record = db.session.scalar(select(IntakeRecord).where(IntakeRecord.document_id == document_id,
                                                              IntakeRecord.version == version))
        if record is not None:
            _ = record.text  # read while the tenant is bound (sealed)
            db.session.expunge(record)
        return record


# --- the vault announces; the areas listen -----------------------------------------------------------

def test_nothing_under_the_vault_imports_the_areas_that_listen_to_it():
    """After intake, ``portal/documents/`` imports neither the work, nor intake, nor the workers."""
    banned = ("portal.work", "portal.intake", "workers")
    found = []
    for path in sorted((ROOT / "portal" / "documents").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            found += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] == "workers"
                      or any(n == b or n.startswith(b + ".") for b in banned)]
    assert found == []


def test_a_stored_document_is_announced_once_in_the_uploads_transaction(app):
    tenant, _person, doc_id = _upload(app, text_pdf(), "hoa-don.pdf")
    with app.app_context():
        rows = db.session.scalars(select(OutboxJob).where(OutboxJob.name == "events.deliver",
                                                          OutboxJob.scope_tenant == str(tenant.id))).all()
        assert [(r.args[0], r.args[1:]) for r in rows] == [("document.stored", [str(doc_id), "1"])]
        # Both listeners are subscribed by their areas' start-up, not by the vault.
        assert set(events.listeners("document.stored")) == {"intake"}
        assert set(events.listeners("document.version_added")) == {"intake", "work.approvals"}


def test_an_unknown_event_or_the_wrong_ids_fail_at_once(app):
    with app.app_context():
        with pytest.raises(KeyError):
            events.announce("document.stroed", uuid.uuid4(), "x", "1")
        with pytest.raises(TypeError):
            events.announce("document.stored", uuid.uuid4(), "x")
        db.session.rollback()


# --- what comes out ---------------------------------------------------------------------------------------

def test_a_pdf_with_text_is_read_from_its_own_text_layer_and_routed(app, run_jobs):
    tenant, _person, doc_id = _upload(app, text_pdf(), "hoa-don.pdf")
    run_jobs()
    record = _record(app, tenant.id, doc_id)
    assert record.state == "done", record.error
    assert record.text_source == "layer" and record.pages == 1
    assert "Tổng cộng tiền thanh toán: 1.944.000 đồng" in record.text  # exact, diacritics and all
    assert record.classified == "invoice"
    assert {k: v["state"] for k, v in record.steps.items()} == {
        "preview": "done", "text": "done", "searchable": "skipped", "einvoice": "skipped", "bank": "skipped",
        "classify": "done", "fields": "done", "index": "done", "pair": "done", "route": "done"}
    with app.app_context(), for_tenant(tenant.id):
        task = db.session.scalar(select(Task).join(TaskDocument).where(TaskDocument.document_id == doc_id))
        assert task is not None and task.recurrence_key.startswith("upload:bookkeeping:")
        assert db.session.get(StoredObject, db.session.get(Document, doc_id).latest.object_id).preview == "ready"


def test_a_photo_of_a_vietnamese_invoice_is_read_by_ocr_after_straightening(app, run_jobs):
    lines = ["HÓA ĐƠN GIÁ TRỊ GIA TĂNG", "Số hóa đơn: 0004821", "Tổng cộng: 2.530.000 đồng"]
    tenant, _person, doc_id = _upload(app, scan(lines, angle=2.5, fmt="JPEG"), "photo.jpg", category="other")
    run_jobs()
    record = _record(app, tenant.id, doc_id)
    assert record.state == "done", record.error
    assert record.text_source == "ocr"
    read = plain(record.text)
    for line in lines:
        assert plain(line) in read, (line, record.text)
    # Filed as "other" by the client: intake's reading decides the task (bookkeeping, as for an invoice).
    assert record.classified == "invoice"
    with app.app_context(), for_tenant(tenant.id):
        assert db.session.scalar(select(func.count()).select_from(TaskDocument)
                                 .where(TaskDocument.document_id == doc_id)) == 1


def test_a_scanned_pdf_page_is_ocrd_and_a_page_with_text_is_not(app, run_jobs):
    tenant, _person, doc_id = _upload(app, scan(["BIÊN LAI THU TIỀN", "Receipt 778899"], fmt="PDF"), "scan.pdf",
                                      category="receipt")
    run_jobs()
    record = _record(app, tenant.id, doc_id)
    assert record.state == "done", record.error
    assert (record.text_source, record.pages) == ("ocr", 1)
    assert "bien lai thu tien" in plain(record.text) and "778899" in record.text
    assert record.classified == "receipt"


@pytest.mark.parametrize(("body", "name"), [
    (b"%PDF-1.7\n" + b"\x00garbage" * 200, "damaged.pdf"),
    (samples.png(7, size=(1, 1)), "nothing.png"),
])
def test_a_file_that_cannot_be_read_says_why_and_staff_try_again(app, run_jobs, body, name):
    tenant, person, doc_id = _upload(app, body, name, category="other")
    run_jobs()
    record = _record(app, tenant.id, doc_id)
    if name == "nothing.png":  # an image of nothing: read, no words, nothing to classify
        assert record.state == "done" and not (record.text or "").strip()
        assert record.steps["classify"]["state"] == "skipped"
        return
    assert (record.state, record.step, record.error) == ("failed", "text", "unreadable")
    assert {k: v["state"] for k, v in record.steps.items()} == {
        "preview": "done", "text": "failed", "searchable": "skipped", "einvoice": "skipped", "bank": "skipped",
        "classify": "skipped", "fields": "skipped", "index": "skipped", "pair": "skipped", "route": "done"}
    with app.app_context():
        # No crash loop: the job finished; the record says what happened.
        runs = db.session.scalars(select(OutboxJob).where(OutboxJob.name == "intake.run",
                                                          OutboxJob.scope_tenant == str(tenant.id))).all()
        assert [(r.finished_at is not None, r.last_error) for r in runs] == [(True, None)]
    client = app.test_client()
    login(client, person)
    page = client.get(f"/t/{tenant.slug}/documents/{doc_id}").get_data(as_text=True)
    assert "Could not read this file: it may be damaged, or protected with a password." in page
    assert 'data-testid="intake-retry"' not in page  # the client cannot retry; staff can
    staff = make_staff(app, tenant)
    login(client := app.test_client(), staff)
    url = f"/t/{tenant.slug}/documents/{doc_id}"
    r = client.post(url + "/intake/retry", data={"csrf_token": csrf_token(client, url)})
    assert r.status_code == 303
    assert _record(app, tenant.id, doc_id).state == "waiting"
    run_jobs()
    record = _record(app, tenant.id, doc_id)
    assert (record.state, record.attempts) == ("failed", 2)
    with app.app_context(), for_tenant(tenant.id):
        assert db.session.scalar(select(func.count()).select_from(AuditEvent)
                                 .where(AuditEvent.action == "intake.retried")) == 1
        assert db.session.scalar(select(func.count()).select_from(AuditEvent)
                                 .where(AuditEvent.action == "intake.failed")) == 2
    again = client.post(url + "/intake/retry", data={"csrf_token": csrf_token(client, url)})
    assert again.status_code == 303  # a retry of a record already failing again: told, nothing breaks


def make_staff(app, tenant):
    """A staff member of the provider, assigned to the tenant."""
    with app.app_context():
        staff = make_person(Role.STAFF)
        admin = db.session.get(User, make_person(Role.PROVIDER_ADMIN).id)
        assign(admin, db.session.get(Tenant, tenant.id), db.session.get(User, staff.id))
        db.session.commit()
        return staff


# --- once, and after a crash --------------------------------------------------------------------------

def test_the_chain_twice_reads_once_and_a_run_whose_worker_died_goes_on(app, run_jobs):
    tenant, _person, doc_id = _upload(app, text_pdf(), "hoa-don.pdf")
    run_jobs()
    with app.app_context(), for_tenant(tenant.id):
        # Announced again (a delivery run twice): still one record, and the chain is not run again.
        chain.start(tenant.id, str(doc_id), "1")
        db.session.commit()
        assert chain.run(str(doc_id), "1") == "busy_or_finished"
        assert db.session.scalar(select(func.count()).select_from(TaskDocument)
                                 .where(TaskDocument.document_id == doc_id)) == 1
        # As if the worker had been killed during "text": the record running, its lease over.
        record = db.session.scalar(select(IntakeRecord).where(IntakeRecord.document_id == doc_id))
        steps = {k: v for k, v in record.steps.items() if k == "preview"}
        record.state, record.step, record.steps, record.text, record.classified = "running", "text", steps, None, None
        record.lease_until = record.updated_at.replace(year=2000)
        db.session.commit()
    with app.app_context(), for_tenant(tenant.id):
        assert chain.run(str(doc_id), "1") == "done"
    record = _record(app, tenant.id, doc_id)
    assert record.state == "done" and "1.944.000" in record.text
    assert record.steps["preview"] == steps["preview"]  # done before the crash: not done again
    with app.app_context(), for_tenant(tenant.id):
        assert db.session.scalar(select(func.count()).select_from(TaskDocument)
                                 .where(TaskDocument.document_id == doc_id)) == 1  # routed once


def test_a_run_holding_its_lease_is_not_taken_over(app, run_jobs):
    tenant, _person, doc_id = _upload(app, text_pdf(), "hoa-don.pdf")
    with app.app_context(), for_tenant(tenant.id):
        chain.start(tenant.id, str(doc_id), "1")
        db.session.commit()
        assert chain._claim(doc_id, 1) is not None  # noqa: SLF001 - a first run holds it
        assert chain.run(str(doc_id), "1") == "busy_or_finished"
        assert _record(app, tenant.id, doc_id).state == "running"


# --- pages, progress, isolation ---------------------------------------------------------------------------

def test_the_documents_page_counts_what_was_read_and_the_document_page_shows_the_text(app, run_jobs):
    tenant, person, doc_id = _upload(app, text_pdf(), "hoa-don.pdf")
    client = app.test_client()
    login(client, person)
    before = client.get(f"/t/{tenant.slug}/documents").get_data(as_text=True)
    assert "0 of 1 documents read." in before and 'data-refresh="3"' in before
    run_jobs()
    after = client.get(f"/t/{tenant.slug}/documents").get_data(as_text=True)
    assert "1 of 1 documents read." in after
    page = client.get(f"/t/{tenant.slug}/documents/{doc_id}").get_data(as_text=True)
    assert "1 page, with its own text." in page and "It reads as an invoice." in page
    assert "Công ty TNHH Hoa Sen" in page


def test_another_tenant_sees_nothing_of_what_was_read(app, run_jobs):
    tenant, _person, doc_id = _upload(app, text_pdf(), "hoa-don.pdf")
    run_jobs()
    with app.app_context():
        other = make_tenant()
        intruder = make_person(Role.CLIENT_ADMIN, other)
        other = SimpleNamespace(id=other.id, slug=other.slug)
    client = app.test_client()
    login(client, intruder)
    assert client.get(f"/t/{other.slug}/documents/{doc_id}").status_code == 404
    url = f"/t/{other.slug}/documents/{doc_id}/intake/retry"
    assert client.post(url, data={"csrf_token": csrf_token(client, f"/t/{other.slug}/documents")}).status_code == 403
    with app.app_context(), for_tenant(other.id):
        assert db.session.scalar(select(func.count()).select_from(IntakeRecord)) == 0  # RLS: none of theirs


@pytest.mark.parametrize(("text", "kind"), [
    ("HÓA ĐƠN GIÁ TRỊ GIA TĂNG\nSố: 0001", "invoice"),
    ("hoa don ban hang", "invoice"),
    ("SAO KÊ TÀI KHOẢN\nSố dư đầu kỳ", "bank_statement"),
    ("BẢNG CHẤM CÔNG tháng 11", "payroll_input"),
    ("HỢP ĐỒNG DỊCH VỤ KẾ TOÁN", "contract"),
    ("Phiếu thu số 12", "receipt"),
    ("Lorem ipsum dolor", "other"),
])
def test_classification_reads_vietnamese_with_or_without_diacritics(text, kind):
    assert classify(text) == kind


def test_the_sweep_reads_documents_stored_before_intake_and_runs_whose_worker_died(app, run_jobs):
    from workers.jobs.intake import resume

    tenant, _person, doc_id = _upload(app, text_pdf(), "hoa-don.pdf")
    run_jobs()
    with app.app_context(), for_tenant(tenant.id):
        # As a document stored before intake existed: no record. Its upload is older than a minute.
        db.session.execute(IntakeRecord.__table__.delete().where(IntakeRecord.document_id == doc_id))
        db.session.execute(Document.__table__.update().where(Document.id == doc_id)
                           .values(created_at=func.now() - timedelta(hours=1)))
        db.session.commit()
    with app.app_context():
        resume()
    run_jobs()
    record = _record(app, tenant.id, doc_id)
    assert record.state == "done" and "1.944.000" in record.text


def test_a_damaged_invoice_still_reaches_its_task(app, run_jobs):
    tenant, _person, doc_id = _upload(app, b"%PDF-1.7\n" + b"\x01broken" * 300, "hoa-don-hong.pdf")
    run_jobs()
    record = _record(app, tenant.id, doc_id)
    assert (record.state, record.error) == ("failed", "unreadable")
    with app.app_context(), for_tenant(tenant.id):
        task = db.session.scalar(select(Task).join(TaskDocument).where(TaskDocument.document_id == doc_id))
        assert task is not None and task.recurrence_key.startswith("upload:bookkeeping:")


def test_the_api_says_what_was_read_and_refuses_another_tenant_and_a_needless_retry(app, run_jobs):
    from tests.api.util import bearer, issue_token

    tenant, person, doc_id = _upload(app, text_pdf(), "hoa-don.pdf")
    run_jobs()
    client = app.test_client()
    raw = issue_token(app, person, tenant, "read")
    base = f"/api/v1/tenants/{tenant.slug}"
    one = client.get(f"{base}/documents/{doc_id}/intake?text=true", headers=bearer(raw))
    assert one.status_code == 200, one.json
    assert (one.json["state"], one.json["classified"], one.json["text_source"]) == ("done", "invoice", "layer")
    assert "1.944.000 đồng" in one.json["text"]
    assert client.get(f"{base}/documents/{doc_id}/intake", headers=bearer(raw)).json["text"] is None
    assert client.get(f"{base}/intake", headers=bearer(raw)).json == {"read": 1, "failed": 0, "waiting": 0,
                                                                       "total": 1}
    # Another tenant's document through this tenant's token: not found, like one that does not exist.
    other_tenant, _other, other_doc = _upload(app, text_pdf(), "khac.pdf")
    assert client.get(f"{base}/documents/{other_doc}/intake", headers=bearer(raw)).status_code == 404
    # A retry is staff's, and only of what failed.
    staff = make_staff(app, tenant)
    staff_token = issue_token(app, staff, tenant, "write")
    refused = client.post(f"{base}/documents/{doc_id}/intake/retry", headers=bearer(staff_token))
    assert refused.status_code == 409 and "nothing to try again" in refused.json["detail"]
    assert client.post(f"{base}/documents/{doc_id}/intake/retry", headers=bearer(raw)).status_code == 403
    found = client.get(f"{base}/search", query_string={"q": "hoa sen 1944000"}, headers=bearer(raw))
    assert found.status_code == 200
    # "hoa", "sen" and the total written without its dots: three words, each as typed.
    assert [(h["document_id"], h["title"], h["exact"]) for h in found.json["results"]] == [(str(doc_id),
                                                                                          "hoa-don.pdf", 3)]
    assert "Hoa Sen" in found.json["results"][0]["snippet"]
    assert client.get(f"{base}/search", headers=bearer(raw)).status_code == 422  # no words: told what is missing


# --- search ----------------------------------------------------------------------------------------------

def test_search_finds_a_word_inside_a_scan_with_or_without_diacritics_and_never_across_tenants(app, run_jobs):
    lines = ["HÓA ĐƠN GIÁ TRỊ GIA TĂNG", "Đơn vị bán: Công ty Hoa Sen", "Số hóa đơn: 0007788"]
    tenant, person, doc_id = _upload(app, scan(lines, fmt="PDF"), "scan-hoa-sen.pdf")
    other_tenant, other_person, other_doc = _upload(app, text_pdf(), "hoa-don-khac.pdf")  # also "hóa đơn"
    run_jobs()
    client = app.test_client()
    login(client, person)
    base = f"/t/{tenant.slug}/search"
    for query in ("hoa don", "Hóa Đơn", "HÓA ĐƠN", "0007788", "cong ty hoa sen"):
        page = client.get(base, query_string={"q": query}).get_data(as_text=True)
        assert "scan-hoa-sen.pdf" in page, query
        assert "hoa-don-khac.pdf" not in page, query  # another tenant's document, with the same words
    empty = client.get(base, query_string={"q": "hoa don 9999999"}).get_data(as_text=True)
    assert 'data-testid="search-empty"' in empty  # every word must be there
    # The words are never in the database: only keyed hashes, which another tenant's key does not make.
    with app.app_context(), for_tenant(tenant.id):
        record = db.session.scalar(select(IntakeRecord).where(IntakeRecord.document_id == doc_id))
        raw = b"".join(record.search_tokens)
        stored = db.session.execute(sql_text("select text from intake_records where id = :id"),
                                    {"id": record.id}).scalar()
        assert b"hoa" not in raw and b"0007788" not in raw and b"Hoa Sen" not in bytes(stored)  # sealed too
    from tenants.fields import blind_tokens

    with app.app_context():
        mine = blind_tokens(tenant.id, "intake.search", ["u:hoa"])[0]
        theirs = blind_tokens(other_tenant.id, "intake.search", ["u:hoa"])[0]
        assert mine != theirs and mine in record.search_tokens
    with app.app_context(), for_tenant(tenant.id):
        assert db.session.scalar(select(func.count()).select_from(AuditEvent)
                                 .where(AuditEvent.action == "documents.searched")) == 6


def test_a_member_finds_only_their_own_uploads(app, run_jobs):
    tenant, admin, doc_id = _upload(app, text_pdf(), "hoa-don-cua-admin.pdf")
    run_jobs()
    with app.app_context():
        member = make_person(Role.CLIENT_MEMBER, db.session.get(Tenant, tenant.id), mfa=False)
    client = app.test_client()
    login(client, member)
    page = client.get(f"/t/{tenant.slug}/search", query_string={"q": "hoa don"}).get_data(as_text=True)
    assert "hoa-don-cua-admin.pdf" not in page and 'data-testid="search-empty"' in page


def scanned_pages(n: int) -> bytes:
    """A PDF of ``n`` scanned pages (pictures of text, no text layer): OCR takes a few seconds."""
    pages = [Image.open(io.BytesIO(scan([f"TRANG {i} HÓA ĐƠN", f"Mã trang {7000 + i}"]))).convert("RGB")
             for i in range(1, n + 1)]
    out = io.BytesIO()
    pages[0].save(out, "PDF", resolution=150, save_all=True, append_images=pages[1:])
    return out.getvalue()


def test_a_worker_killed_during_ocr_leaves_a_run_that_is_taken_over_and_done_once(app, run_jobs):
    """The process running the chain gets SIGKILL in the middle of OCR; after its lease the sweep sends the
    chain again, which goes on from the interrupted step: every page read, each step once, one task link."""
    import multiprocessing
    import os
    import signal
    import time

    from tenants.context import Scope, bound
    from workers.jobs.intake import resume

    tenant, _person, doc_id = _upload(app, scanned_pages(4), "scan-4-trang.pdf")
    with app.app_context(), for_tenant(tenant.id):
        chain.start(tenant.id, str(doc_id), "1")
        db.session.commit()
    saved = app.config["INTAKE_LEASE_SECONDS"]
    app.config["INTAKE_LEASE_SECONDS"] = 2

    def work() -> None:  # a worker process, forked: its own connections
        with app.app_context():
            db.engine.dispose(close=False)
            with bound(Scope(tenant_ids=frozenset({tenant.id}))):
                chain.run(str(doc_id), "1")

    child = multiprocessing.get_context("fork").Process(target=work)
    try:
        child.start()
        deadline = time.monotonic() + 30
        while (_record(app, tenant.id, doc_id).step != "text") and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # inside OCR now (four pages take seconds)
        assert child.is_alive(), "the chain finished before it could be killed: give it more pages"
        os.kill(child.pid, signal.SIGKILL)
        child.join(10)
        killed = _record(app, tenant.id, doc_id)
        assert (killed.state, killed.step, killed.text) == ("running", "text", None)
        assert set(killed.steps) == {"preview"}
        with app.app_context():  # the lease still holds: the sweep leaves it
            resume()
        assert _record(app, tenant.id, doc_id).attempts == 1
        time.sleep(2.2)  # the lease runs out
        with app.app_context():
            resume()
        run_jobs()
    finally:
        app.config["INTAKE_LEASE_SECONDS"] = saved
        if child.is_alive():
            child.kill()
    record = _record(app, tenant.id, doc_id)
    assert (record.state, record.attempts, record.pages, record.text_source) == ("done", 2, 4, "ocr")
    for i in range(1, 5):
        assert f"{7000 + i}" in record.text
    assert record.steps["preview"] == killed.steps["preview"]  # not done again
    with app.app_context(), for_tenant(tenant.id):
        assert db.session.scalar(select(func.count()).select_from(TaskDocument)
                                 .where(TaskDocument.document_id == doc_id)) == 1


def test_a_job_killed_during_ocr_is_taken_over_by_its_own_retry_at_once_and_by_no_other_run(app):
    """A worker running the chain as an rq job gets SIGKILL in the middle of OCR. rq hands the job back once its
    heartbeat is over, and that same job's retry takes the record over at once, without waiting for the
    ten-minute lease; any other run (a second announcement, the sweep) still finds it held."""
    import multiprocessing
    import os
    import signal
    import time

    from rq import SimpleWorker
    from rq.scheduler import RQScheduler
    from rq.serializers import JSONSerializer

    from tests.jobs import drop_earlier_jobs, run_queued
    from workers import JOB_TIMEOUT, enqueue, queue, recover_abandoned, redis_connection, relay

    tenant, _person, doc_id = _upload(app, scanned_pages(4), "scan-giet.pdf")
    with app.app_context():
        before = db.session.scalar(select(func.max(OutboxJob.id)))
        drop_earlier_jobs(app, before)  # the upload's own announcement, and what earlier tests left queued
        with for_tenant(tenant.id):
            chain.start(tenant.id, str(doc_id), "1")
            db.session.commit()
        relay()
        assert queue("default").count == 1

    def work() -> None:  # a worker process, forked: its own connections
        with app.app_context():
            db.engine.dispose(close=False)
            SimpleWorker([queue("default")], connection=redis_connection(), serializer=JSONSerializer).work(
                burst=True)

    child = multiprocessing.get_context("fork").Process(target=work)
    try:
        child.start()
        deadline = time.monotonic() + 60
        while (getattr(_record(app, tenant.id, doc_id), "step", None) != "text") and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # inside OCR now
        assert child.is_alive(), "the chain finished before it could be killed: give it more pages"
        os.kill(child.pid, signal.SIGKILL)
        child.join(10)
    finally:
        if child.is_alive():
            child.kill()
    killed = _record(app, tenant.id, doc_id)
    assert (killed.state, killed.step, killed.attempts) == ("running", "text", 1)
    assert killed.lease_job is not None and killed.lease_until.timestamp() > time.time() + 60  # held for minutes

    with app.app_context():  # another job for the same document (an announcement heard twice): the lease holds
        with for_tenant(tenant.id):
            enqueue("intake.run", str(doc_id), "1", tenant_id=tenant.id)
            db.session.commit()
        run_queued(app)
    assert _record(app, tenant.id, doc_id).attempts == 1
    with app.app_context():
        recover_abandoned(["default"], at=time.time() + JOB_TIMEOUT + 61)  # the killed try's heartbeat is over
        started = time.monotonic()
        # rq retries it under the same id after its first interval (10 s): a worker's scheduler queues it.
        scheduler = RQScheduler([queue("default")], connection=redis_connection(), serializer=JSONSerializer)
        assert scheduler.acquire_locks() == {"default"}
        try:
            while killed.lease_job not in queue("default").get_job_ids() and time.monotonic() - started < 30:
                scheduler.enqueue_scheduled_jobs()
                time.sleep(0.5)
        finally:
            scheduler.release_locks()
        drop_earlier_jobs(app, before)  # retries of earlier tests' jobs the scheduler queued with it
        assert queue("default").get_job_ids() == [killed.lease_job]
        run_queued(app)
    record = _record(app, tenant.id, doc_id)
    assert (record.state, record.attempts, record.pages, record.text_source) == ("done", 2, 4, "ocr")
    assert time.monotonic() - started < app.config["INTAKE_LEASE_SECONDS"] / 4  # not after the lease
    assert record.steps["preview"] == killed.steps["preview"]  # done before the kill: not done again
    with app.app_context(), for_tenant(tenant.id):
        assert db.session.scalar(select(func.count()).select_from(TaskDocument)
                                 .where(TaskDocument.document_id == doc_id)) == 1


def test_a_large_scan_is_read_in_the_heavy_queue_behind_everything_else(app, run_jobs):
    tenant, _person, doc_id = _upload(app, scanned_pages(2), "scan-lon.pdf")
    saved = app.config["INTAKE_HEAVY_BYTES"]
    app.config["INTAKE_HEAVY_BYTES"] = 1024  # this scan counts as large
    try:
        run_jobs()
    finally:
        app.config["INTAKE_HEAVY_BYTES"] = saved
    record = _record(app, tenant.id, doc_id)
    assert record.state == "done" and "7001" in record.text and "7002" in record.text
    assert record.steps["preview"]["state"] == "done"  # made before the hand-over, in the default queue
    with app.app_context():
        runs = db.session.execute(select(OutboxJob.queue, OutboxJob.args).where(
            OutboxJob.name == "intake.run", OutboxJob.scope_tenant == str(tenant.id)).order_by(OutboxJob.id)).all()
    assert [q for q, _args in runs] == ["default", "intake_heavy"]
    assert app.config["RQ_QUEUES"].index("intake_heavy") > app.config["RQ_QUEUES"].index("default")


def test_one_tenants_bulk_import_never_has_more_than_its_slots_ahead_of_another(app, run_jobs):
    """Tenant A uploads ten files, then tenant B one: B's document is queued at once, A never has more than
    INTAKE_TENANT_SLOTS jobs queued or running, and everything is read in the end."""
    slots = app.config["INTAKE_TENANT_SLOTS"]
    assert slots < 10
    with app.app_context():
        a = make_tenant()
        a_admin = db.session.get(User, make_person(Role.CLIENT_ADMIN, a).id)
        with bound(Scope(user_id=a_admin.id, tenant_ids=frozenset({a.id}), role=Role.CLIENT_ADMIN)):
            for n in range(10):
                documents.upload(a_admin, db.session.get(Tenant, a.id), [samples.pdf(4200 + n)],
                                 filename=f"a-{n}.pdf", target=documents.upload_target(a_admin, category="other"))
        a_id = a.id
    b, _b_admin, b_doc = _upload(app, text_pdf(), "b.pdf")
    with app.app_context():
        # The announcements are heard (events.deliver, events.handle) without reading anything yet.
        from portal import events as announcements
        from workers.models import OutboxJob as Job

        for tenant_id in (a_id, b.id):
            for name, run in (("events.deliver", announcements.deliver), ("events.handle", announcements.handle)):
                with for_tenant(tenant_id):
                    for job in db.session.scalars(select(Job).where(Job.name == name,
                                                                    Job.scope_tenant == str(tenant_id))).all():
                        run(*job.args)
                        job.finished_at = job.created_at
                    db.session.commit()
        queued = dict(db.session.execute(select(Job.scope_tenant, func.count()).where(
            Job.name == "intake.run", Job.scope_tenant.in_([str(a_id), str(b.id)])).group_by(Job.scope_tenant)).all())
    assert queued == {str(a_id): slots, str(b.id): 1}
    run_jobs()
    with app.app_context(), for_tenant(a_id):
        states = db.session.scalars(select(IntakeRecord.state)).all()
        assert states == ["done"] * 10
        assert db.session.scalar(select(func.count()).select_from(OutboxJob).where(
            OutboxJob.name == "intake.run", OutboxJob.scope_tenant == str(a_id))) == 10  # each queued once
    assert _record(app, b.id, b_doc).state == "done"


def test_a_passing_failure_releases_the_run_so_the_retry_takes_it_at_once(app, run_jobs, monkeypatch):
    from portal.intake import steps

    tenant, _person, doc_id = _upload(app, text_pdf(), "hoa-don.pdf")
    calls = {"n": 0}
    real = steps.readers.read_text

    def flaky(*args, **kwargs):  # storage or the database failing for a moment, once
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionError("storage did not answer")
        return real(*args, **kwargs)

    monkeypatch.setattr(steps.readers, "read_text", flaky)
    with app.app_context(), for_tenant(tenant.id):
        chain.start(tenant.id, str(doc_id), "1")
        db.session.commit()
        with pytest.raises(ConnectionError):
            chain.run(str(doc_id), "1")
        assert chain.run(str(doc_id), "1") == "done"  # the lease was let go: no wait for it to run out
    record = _record(app, tenant.id, doc_id)
    assert (record.state, record.attempts, calls["n"]) == ("done", 2, 2)
