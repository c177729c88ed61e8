"""A client takes everything it owns: one encrypted archive, its passphrase once, then gone from the server."""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import py7zr
import pytest
from sqlalchemy import select

from portal.documents import requests as document_requests
from portal.documents import services as documents
from portal.documents.models import StoredObject
from portal.extensions import db
from portal.offboarding import export
from portal.offboarding.models import TenantExport
from portal.work import services as work
from tenants.context import Scope, bound
from tenants.models import Tenant, User, utcnow
from tenants.policy import Role
from tests.documents import samples
from tests.factories import csrf_token, login

TRAP = '=HYPERLINK("http://evil.example","Open")'  # a title a spreadsheet would run


def _scope(person, tenant_id, role):  # noqa: ANN001, ANN202
    return bound(Scope(user_id=person.id, tenant_ids=frozenset({tenant_id}), role=role))


@pytest.fixture
def filled(app, world):
    """Tenant A with documents (one in two versions), a request, a task with comments of both kinds."""
    # Made once: Pillow stamps a PDF with the second it was written.
    files = {"invoice.pdf": samples.pdf(8801), "statement.csv": samples.csv_bytes(4), "v2": samples.pdf(8802)}
    with app.app_context():
        tenant = db.session.get(Tenant, world.a.id)
        member = db.session.get(User, world["a_client_member"].id)
        staff = db.session.get(User, world["staff"].id)
        with _scope(member, tenant.id, Role.CLIENT_MEMBER):
            first = documents.upload(member, tenant, [files["invoice.pdf"]], filename="invoice.pdf",
                                     target=documents.upload_target(member, category="invoice", period="2026-10"))
            documents.upload(member, tenant, [files["v2"]], filename="invoice-fixed.pdf",
                             target=documents.upload_target(member, document_id=str(first.document.id)))
            documents.upload(member, tenant, [files["statement.csv"]], filename="statement.csv",
                             target=documents.upload_target(member, category="bank_statement"))
        with _scope(staff, tenant.id, Role.STAFF):
            document_requests.create_request(staff, tenant, title=TRAP, note=None,
                                             items=[document_requests.ItemInput("Payslips of October")])
            task = work.create_task(staff, tenant, title="Close October", service_line_key="bookkeeping")
            work.comment(staff, str(task.id), "We posted 12 invoices.")
            work.comment(staff, str(task.id), "Internal: the client is late again", internal=True)
    return {"invoice v2": files["v2"], "invoice v1": files["invoice.pdf"], "csv": files["statement.csv"]}


def _exports_page(client, world):  # noqa: ANN001, ANN202
    return client.get(f"/t/{world.a.slug}/export").get_data(as_text=True)


def test_the_client_admin_exports_everything_takes_the_passphrase_once_and_the_archive_leaves(
        app, world, filled, run_jobs, tmp_path):
    admin = app.test_client()
    login(admin, world["a_client_admin"])
    assert "No export yet" in _exports_page(admin, world)
    token = csrf_token(admin, f"/t/{world.a.slug}/export")
    r = admin.post(f"/t/{world.a.slug}/export", data={"csrf_token": token})
    assert r.status_code == 302
    page = _exports_page(admin, world)
    assert "<progress" in page and 'data-refresh=' in page  # it shows progress, fetched again while it is built
    again = admin.post(f"/t/{world.a.slug}/export", data={"csrf_token": token})
    assert again.status_code == 409  # one at a time
    run_jobs()
    page = _exports_page(admin, world)
    assert "Ready until" in page and 'data-refresh=' not in page
    with app.app_context(), bound(Scope(tenant_ids=frozenset({world.a.id}))):
        item = db.session.scalars(select(TenantExport).order_by(TenantExport.created_at.desc())).first()
        export_id, object_id = item.id, item.object_id
        stored = db.session.get(StoredObject, object_id)
        assert stored.purpose == "export" and item.passphrase is not None
        storage_key = stored.storage_key
        db.session.rollback()

    shown = admin.post(f"/t/{world.a.slug}/export/{export_id}/passphrase", data={"csrf_token": token})
    passphrase = shown.get_data(as_text=True).split('data-testid="passphrase" class="wrap">')[1].split("<")[0]
    assert len(passphrase) == 35
    twice = admin.post(f"/t/{world.a.slug}/export/{export_id}/passphrase", data={"csrf_token": token})
    assert twice.status_code == 409 and "not kept" in twice.get_data(as_text=True)

    download = admin.get(f"/t/{world.a.slug}/export/{export_id}/download", buffered=True)
    assert download.status_code == 200 and download.headers["Content-Disposition"].startswith("attachment")
    archive = download.get_data()
    assert len(archive) == int(download.headers["Content-Length"])
    assert b"invoice" not in archive and b"Close October" not in archive  # names and content encrypted
    path = tmp_path / "export.7z"
    path.write_bytes(archive)
    with pytest.raises(Exception), py7zr.SevenZipFile(path, "r", password="wrong-passphrase") as z:  # noqa: B017
        z.extractall(tmp_path / "wrong")  # (py7zr raises various errors for a wrong password)
    out = tmp_path / "out"
    with py7zr.SevenZipFile(path, "r", password=passphrase) as z:
        z.extractall(out)
    docs = {p.name: p.read_bytes() for p in (out / "documents").rglob("*") if p.is_file()}
    assert docs["v2 invoice-fixed.pdf"] == filled["invoice v2"] and docs["v1 invoice.pdf"] == filled["invoice v1"]
    assert docs["statement.csv"] == filled["csv"]
    tables = {p.stem: list(csv.DictReader(io.StringIO(p.read_text(encoding="utf-8-sig"))))
              for p in out.glob("*.csv")}
    assert {"documents", "requests", "request_items", "tasks", "task_comments", "approvals",
            "access_log"} <= set(tables)
    assert [r["title"] for r in tables["requests"]] == ["'" + TRAP]  # text in a spreadsheet, nothing lost
    bodies = [r["body"] for r in tables["task_comments"]]
    assert "We posted 12 invoices." in bodies and not any("Internal" in b for b in bodies)
    assert any(r["action"] == "export.requested" for r in tables["access_log"])
    assert (out / "data.json").exists() and "access_log.csv" in (out / "README.txt").read_text()
    # The archive opens with the real 7-Zip too (Debian's 7zip package, which `make test` installs).
    seven = shutil.which("7zz")
    assert seven, "7-Zip (7zz) is missing: run `make test`, which installs Debian's 7zip"
    listing = subprocess.run([seven, "t", f"-p{passphrase}", str(path)], capture_output=True, text=True)
    assert listing.returncode == 0 and "Everything is Ok" in listing.stdout

    # Fetched once: the archive is deleted from the server and cannot be fetched again.
    assert not (Path(app.config["STORAGE_DIR"]) / storage_key).exists()
    assert admin.get(f"/t/{world.a.slug}/export/{export_id}/download", buffered=True).status_code == 409
    assert "deleted from our servers" in _exports_page(admin, world)


def test_an_export_nobody_fetched_is_deleted_when_it_expires(app, world, filled, run_jobs):
    with app.app_context(), bound(Scope(user_id=world["a_client_admin"].id, tenant_ids=frozenset({world.a.id}),
                                        role=Role.CLIENT_ADMIN)):
        made = export.request_export(db.session.get(User, world["a_client_admin"].id),
                                     db.session.get(Tenant, world.a.id))
        export_id = made.id
    run_jobs()
    with app.app_context(), bound(Scope(tenant_ids=frozenset({world.a.id}))):
        key = db.session.get(StoredObject, export.get_export(str(export_id)).object_id).storage_key
        assert export.purge_expired() == 0  # not yet
        assert export.purge_expired(utcnow() + timedelta(days=30)) >= 1
        item = export.get_export(str(export_id))
        assert item.state == "expired" and item.object_id is None and item.passphrase is None
    assert not (Path(app.config["STORAGE_DIR"]) / key).exists()


def test_only_the_client_admin_and_provider_admins_may_export(app, world):
    for key, expected in (("a_client_member", 403), ("a_client_approver", 403), ("staff", 403),
                          ("a_client_admin", 200)):
        client = app.test_client()
        login(client, world[key])
        assert client.get(f"/t/{world.a.slug}/export").status_code == expected, key


def test_the_api_prepares_reports_and_hands_over_an_export(app, world, filled, run_jobs):
    from portal.api.tokens import create_token

    with app.app_context():
        user = db.session.get(User, world["a_client_admin"].id)
        with bound(Scope(user_id=user.id, tenant_ids=frozenset({world.a.id}))):
            token = create_token(user, db.session.get(Tenant, world.a.id), "export tool", "write")
    auth = {"Authorization": f"Bearer {token}"}
    api = app.test_client()
    base = f"/api/v1/tenants/{world.a.slug}/exports"
    created = api.post(base, headers=auth)
    assert created.status_code == 202 and created.get_json()["state"] == "queued"
    export_id = created.get_json()["id"]
    run_jobs()
    ready = api.get(f"{base}/{export_id}", headers=auth).get_json()
    assert ready["state"] == "ready" and ready["percent"] == 100 and ready["passphrase_available"]
    passphrase = api.post(f"{base}/{export_id}/passphrase", headers=auth).get_json()["passphrase"]
    assert api.post(f"{base}/{export_id}/passphrase", headers=auth).status_code == 409
    body = api.get(f"{base}/{export_id}/content", headers=auth, buffered=True)
    assert body.status_code == 200 and len(body.data) == ready["size"]
    with py7zr.SevenZipFile(io.BytesIO(body.data), "r", password=passphrase) as z:
        assert "README.txt" in z.getnames()
    assert api.get(f"{base}/{export_id}", headers=auth).get_json()["state"] == "fetched"
