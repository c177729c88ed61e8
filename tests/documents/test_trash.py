"""Removing a document: to the trash with a reason, out of every list at once, restored by the provider only,
purged with its versions and stored objects once the retention period is over (and not a day before).

Accounting records are never deleted silently: every step is in the tenant's audit log, and the work
product of a task not finished, or one the client approved, is refused with the task's name.
"""

from __future__ import annotations

import io
import re
import uuid
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from portal.documents.models import Document, DocumentVersion, RequestItem, StoredObject
from portal.extensions import db
from tenants.audit import AuditEvent
from tenants.context import Scope, bound, for_tenant
from tenants.models import Tenant, User, utcnow
from tenants.policy import Role
from tests.api.util import bearer, in_tenant, issue_token, problem
from tests.documents import samples
from tests.factories import csrf_token, login, make_person, make_tenant


def _upload(client, slug: str, body: bytes, name: str, **fields) -> str:
    """Upload one file through the page's endpoint; the new document's id."""
    token = csrf_token(client, f"/t/{slug}/documents")
    r = client.post(f"/t/{slug}/documents/upload", headers={"Accept": "application/json"},
                    content_type="multipart/form-data",
                    data={"csrf_token": token, "category": "invoice", **fields, "file": [(io.BytesIO(body), name)]})
    assert r.status_code == 200 and r.json["results"][0]["url"], r.data
    return r.json["results"][0]["url"].rsplit("/", 1)[1]


def _doc_url(slug: str, doc_id: str) -> str:
    return f"/t/{slug}/documents/{doc_id}"


def _trash(client, slug: str, doc_id: str, reason: str, *, page: str | None = None):
    """Remove a document with the form of its page (``page``: where to read the CSRF token)."""
    token = csrf_token(client, page or _doc_url(slug, doc_id))
    return client.post(_doc_url(slug, doc_id) + "/trash", data={"csrf_token": token, "reason": reason})


def _restore(client, slug: str, doc_id: str, *, page: str):
    return client.post(_doc_url(slug, doc_id) + "/restore", data={"csrf_token": csrf_token(client, page)})


@dataclass(frozen=True)
class Event:
    actor_id: uuid.UUID | None
    actor_side: str
    object_id: str | None
    details: dict


def _events(app, tenant, action: str) -> list[Event]:
    """The tenant's audit events of one kind, oldest first, their details opened with the tenant's key."""
    with in_tenant(app, tenant):
        return [Event(row.actor_id, row.actor_side, row.object_id, row.details) for row in
                db.session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq))]


def _signed_in(app, person):
    client = app.test_client()
    login(client, person)
    return client


@pytest.fixture
def people(app, world):
    """Signed-in clients of tenant A: the client admin, approver and member, the staff member and manager."""
    return {key: _signed_in(app, world[key]) for key in
            ("a_client_admin", "a_client_approver", "a_client_member", "staff", "manager")}


def test_a_removed_document_leaves_every_list_download_preview_and_picker_at_once(app, world, people, run_jobs):
    member, admin, staff = people["a_client_member"], people["a_client_admin"], people["staff"]
    slug = world.a.slug
    doc_id = _upload(member, slug, samples.pdf(7301), "Hotel receipt March.pdf", category="receipt")
    run_jobs()  # the thumbnail
    raw = issue_token(app, world["a_client_member"], world.a, "read")
    api = f"/api/v1/tenants/{slug}/documents"
    # Everything that shows it, before:
    assert "Hotel receipt March.pdf" in member.get(f"/t/{slug}/documents?q=hotel").get_data(as_text=True)
    assert member.get(_doc_url(slug, doc_id) + "/preview.png").status_code == 200
    assert member.get(_doc_url(slug, doc_id) + "/download").status_code == 200
    assert "Hotel receipt March.pdf" in member.get(f"/t/{slug}/tasks/attachable").get_data(as_text=True)
    assert [d["id"] for d in member.get(api, headers=bearer(raw)).json["items"]] == [doc_id]

    r = _trash(admin, slug, doc_id, "Uploaded twice by mistake")
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/t/{slug}/documents")
    listing = admin.get(r.headers["Location"]).get_data(as_text=True)
    assert "is in the trash" in listing and "deleted for good on" in listing  # the flash says until when

    for client in (member, admin, staff):
        for url in (f"/t/{slug}/documents", f"/t/{slug}/documents?q=hotel", f"/t/{slug}/"):
            assert "Hotel receipt March.pdf" not in client.get(url).get_data(as_text=True), url
        assert client.get(_doc_url(slug, doc_id) + "/download").status_code == 404
        assert client.get(_doc_url(slug, doc_id) + "/download?version=1").status_code == 404
        assert client.get(_doc_url(slug, doc_id) + "/preview.png").status_code == 404
        assert client.get(_doc_url(slug, doc_id) + "/preview.png?version=1").status_code == 404
    assert member.get(_doc_url(slug, doc_id)).status_code == 404  # a member never sees the trash
    assert "Hotel receipt March.pdf" not in member.get(f"/t/{slug}/tasks/attachable").get_data(as_text=True)
    # The API: gone from the list and the content; a member's token does not find it at all.
    assert member.get(api, headers=bearer(raw)).json["items"] == []
    problem(member.get(f"{api}/{doc_id}", headers=bearer(raw)), 404)
    problem(member.get(f"{api}/{doc_id}/content", headers=bearer(raw)), 404)
    # A version, a new filing or a link to a task: not on a document in the trash.
    tasks = f"/t/{slug}/tasks"
    manager = _signed_in(app, world["manager"])
    task = manager.post(tasks, data={"csrf_token": csrf_token(manager, tasks), "title": "Hotel costs",
                                     "line": "bookkeeping", "assignee": str(world["staff"].id)}).headers["Location"]
    assert "Hotel receipt March.pdf" not in staff.get(task).get_data(as_text=True)  # its product picker
    r = staff.post(task + "/documents", data={"csrf_token": csrf_token(staff, task), "document": doc_id})
    assert r.status_code == 404
    r = staff.post(f"/t/{slug}/documents/upload", headers={"Accept": "application/json"},
                   data={"csrf_token": csrf_token(staff, tasks), "document": doc_id,
                         "file": [(io.BytesIO(samples.pdf(7302)), "v2.pdf")]})
    assert r.status_code == 404

    # Those who may remove documents see it in the trash: who, when, why, until when; no download.
    trash = admin.get(f"/t/{slug}/documents/trash").get_data(as_text=True)
    assert "Hotel receipt March.pdf" in trash and "Uploaded twice by mistake" in trash
    assert "ask them if one was removed by mistake" in trash and "Restore</button>" not in trash
    page = admin.get(_doc_url(slug, doc_id)).get_data(as_text=True)
    assert 'data-testid="in-trash"' in page and "Uploaded twice by mistake" in page
    assert "/download" not in page and "preview.png" not in page

    [event] = _events(app, world.a, "document.trashed")
    assert event.actor_id == world["a_client_admin"].id
    assert event.details["reason"] == "Uploaded twice by mistake"
    assert event.details["name"] == "Hotel receipt March.pdf"
    log = admin.get(f"/t/{slug}/access-log").get_data(as_text=True)
    assert "moved a document to the trash" in log


@pytest.mark.parametrize("reason", ["", "   "])
def test_a_removal_without_a_reason_is_refused_next_to_the_field(app, world, people, reason):
    admin = people["a_client_admin"]
    doc_id = _upload(admin, world.a.slug, samples.pdf(7311), "Contract.pdf", category="contract")
    r = _trash(admin, world.a.slug, doc_id, reason)
    assert r.status_code == 422
    page = r.get_data(as_text=True)
    assert re.search(r'<small class="error" id="reason-error-1">Say why this document is removed', page)
    assert "Contract.pdf" in admin.get(f"/t/{world.a.slug}/documents").get_data(as_text=True)
    assert _events(app, world.a, "document.trashed") == []


def test_a_reason_too_long_is_refused_and_what_was_typed_is_kept(app, world, people):
    admin = people["a_client_admin"]
    doc_id = _upload(admin, world.a.slug, samples.pdf(7312), "Contract.pdf", category="contract")
    typed = "Signed copy replaces this one " * 11  # 330 characters
    r = _trash(admin, world.a.slug, doc_id, typed)
    assert r.status_code == 422
    page = r.get_data(as_text=True)
    assert "at most 300 characters" in page and typed.strip() in page
    assert "Contract.pdf" in admin.get(f"/t/{world.a.slug}/documents").get_data(as_text=True)


def test_client_members_can_neither_remove_nor_see_the_trash(app, world, people):
    member = people["a_client_member"]
    doc_id = _upload(member, world.a.slug, samples.pdf(7321), "Mine.pdf")
    r = member.post(_doc_url(world.a.slug, doc_id) + "/trash",
                    data={"csrf_token": csrf_token(member, _doc_url(world.a.slug, doc_id)), "reason": "mine"})
    assert r.status_code == 403
    assert member.get(f"/t/{world.a.slug}/documents/trash").status_code == 403
    assert 'data-testid="trash-form"' not in member.get(_doc_url(world.a.slug, doc_id)).get_data(as_text=True)
    raw = issue_token(app, world["a_client_member"], world.a, "write")
    problem(member.delete(f"/api/v1/tenants/{world.a.slug}/documents/{doc_id}?reason=mine", headers=bearer(raw)),
            403)
    assert "Mine.pdf" in member.get(f"/t/{world.a.slug}/documents").get_data(as_text=True)


def test_only_the_provider_restores_and_the_document_comes_back_whole(app, world, people):
    admin, approver, manager, member = (people[k] for k in ("a_client_admin", "a_client_approver", "manager",
                                                            "a_client_member"))
    slug = world.a.slug
    body = samples.pdf(7331)
    doc_id = _upload(member, slug, body, "Payroll inputs April.pdf", category="payroll_input")
    assert _trash(admin, slug, doc_id, "Wrong month").status_code == 302
    trash_page = f"/t/{slug}/documents/trash"

    for client in (admin, approver):  # the client cannot undo it by itself
        assert _restore(client, slug, doc_id, page=trash_page).status_code == 403
    assert "Restore</button>" not in admin.get(trash_page).get_data(as_text=True)
    raw = issue_token(app, world["a_client_admin"], world.a, "write")
    problem(admin.post(f"/api/v1/tenants/{slug}/documents/{doc_id}/restore", headers=bearer(raw)), 403)
    assert "Payroll inputs April.pdf" not in member.get(f"/t/{slug}/documents").get_data(as_text=True)

    page = manager.get(trash_page).get_data(as_text=True)
    assert "Payroll inputs April.pdf" in page and "Wrong month" in page and "Restore</button>" in page
    r = _restore(manager, slug, doc_id, page=trash_page)
    assert r.status_code == 302 and r.headers["Location"].endswith(_doc_url(slug, doc_id))
    assert "is restored" in manager.get(r.headers["Location"]).get_data(as_text=True)
    assert "Payroll inputs April.pdf" in member.get(f"/t/{slug}/documents").get_data(as_text=True)
    assert member.get(_doc_url(slug, doc_id) + "/download").data == body
    assert "Payroll inputs April.pdf" not in admin.get(trash_page).get_data(as_text=True)
    [event] = _events(app, world.a, "document.restored")
    assert event.actor_id == world["manager"].id and event.details["reason"] == "Wrong month"

    # Restoring what is not in the trash says so.
    r = _restore(manager, slug, doc_id, page=trash_page)
    assert "is not in the trash" in manager.get(r.headers["Location"]).get_data(as_text=True)
    assert len(_events(app, world.a, "document.restored")) == 1


def test_another_tenants_document_is_not_found_for_removal_or_restore(app, world, people):
    b_admin = _signed_in(app, world["b_client_admin"])
    b_doc = _upload(b_admin, world.b.slug, samples.pdf(7341), "Beta ledger.pdf")
    assert _trash(b_admin, world.b.slug, b_doc, "Beta's own reason").status_code == 302
    b_other = _upload(b_admin, world.b.slug, samples.pdf(7342), "Beta payroll.pdf")

    a_docs = f"/t/{world.a.slug}/documents"
    manager, admin = people["manager"], people["a_client_admin"]
    # A's people, through A's address, with B's ids: the same 404 as a missing document.
    assert _restore(manager, world.a.slug, b_doc, page=a_docs + "/trash").status_code == 404
    assert _trash(admin, world.a.slug, b_other, "x", page=a_docs).status_code == 404
    assert _trash(admin, world.a.slug, str(uuid.uuid4()), "x", page=a_docs).status_code == 404
    raw = issue_token(app, world["manager"], world.a, "write")
    problem(manager.post(f"/api/v1/tenants/{world.a.slug}/documents/{b_doc}/restore", headers=bearer(raw)), 404)
    # B's trash and B's list are as B left them.
    assert "Beta payroll.pdf" in b_admin.get(f"/t/{world.b.slug}/documents").get_data(as_text=True)
    trash = b_admin.get(f"/t/{world.b.slug}/documents/trash").get_data(as_text=True)
    assert "Beta ledger.pdf" in trash and "Beta payroll.pdf" not in trash
    assert "Beta ledger.pdf" not in admin.get(a_docs + "/trash").get_data(as_text=True)


def _post(client, url: str, **data):
    return client.post(url, data={"csrf_token": csrf_token(client, url.rsplit("/", 1)[0]), **data})


def test_the_work_product_of_an_unfinished_or_approved_task_is_not_removed(app, world, people):
    staff, manager, approver, admin = (people[k] for k in ("staff", "manager", "a_client_approver",
                                                           "a_client_admin"))
    slug = world.a.slug
    tasks = f"/t/{slug}/tasks"
    task = manager.post(tasks, data={"csrf_token": csrf_token(manager, tasks), "title": "March payroll run",
                                     "line": "payroll", "assignee": str(world["staff"].id),
                                     "reviewer": str(world["manager"].id)}).headers["Location"]
    payslips = _upload(staff, slug, samples.pdf(7351), "payslips-march.pdf", category="other")
    assert _post(staff, task + "/product", document=payslips).status_code == 302

    r = _trash(admin, slug, payslips, "Not needed")
    assert r.status_code == 409
    assert "is the work product of the task “March payroll run”, which is not finished" in r.get_data(as_text=True)
    raw = issue_token(app, world["a_client_admin"], world.a, "write")
    body = problem(admin.delete(f"/api/v1/tenants/{slug}/documents/{payslips}?reason=Not+needed",
                                headers=bearer(raw)), 409)
    assert "March payroll run" in body["detail"]

    for client, move in ((staff, "start"), (staff, "submit"), (manager, "approve")):
        assert _post(client, task + "/move", move=move).status_code == 302
    inbox = approver.get(f"/t/{slug}/approvals").get_data(as_text=True)
    seen = re.search(r'name="seen_sha256" value="([0-9a-f]{64})"', inbox).group(1)
    assert _post(approver, task + "/move", move="client_approve", seen_sha256=seen).status_code == 302

    r = _trash(admin, slug, payslips, "Not needed")
    assert r.status_code == 409
    assert "was approved as the work product of the task “March payroll run”" in r.get_data(as_text=True)
    assert "payslips-march.pdf" in admin.get(f"/t/{slug}/documents").get_data(as_text=True)
    assert _events(app, world.a, "document.trashed") == []


def test_a_requested_document_removed_is_outstanding_again(app, world, people):
    staff, member, admin = people["staff"], people["a_client_member"], people["a_client_admin"]
    slug = world.a.slug
    url = f"/t/{slug}/requests"
    r = staff.post(url, data={"csrf_token": csrf_token(staff, url), "title": "April", "items-0-description":
                              "April bank statement", "items-0-category": "bank_statement", "items-0-due": ""})
    request_url = r.headers["Location"]
    with in_tenant(app, world.a):
        item_id = db.session.scalars(select(RequestItem.id)).one()
    doc_id = _upload(member, slug, samples.csv_bytes(4), "april.csv", item=str(item_id), category="bank_statement")
    assert "1 of 1 received" in member.get(request_url).get_data(as_text=True)

    r = _trash(admin, slug, doc_id, "Wrong account's statement")
    flash = admin.get(r.headers["Location"]).get_data(as_text=True)
    assert "“April bank statement” is outstanding again" in flash
    assert "0 of 1 received" in member.get(request_url).get_data(as_text=True)
    with in_tenant(app, world.a):
        item = db.session.get(RequestItem, item_id)
        assert (item.fulfilled_at, item.document_id) == (None, None)
    [event] = _events(app, world.a, "request.item_reopened")
    assert event.details["because"] == "document.trashed"


# --- purging ---------------------------------------------------------------------------------

def _vault_rows(app, tenant, doc_id: str) -> tuple[int, int]:
    with in_tenant(app, tenant):
        return (db.session.scalar(select(func.count()).select_from(Document).where(Document.id == uuid.UUID(doc_id))),
                db.session.scalar(select(func.count()).select_from(DocumentVersion)
                                  .where(DocumentVersion.document_id == uuid.UUID(doc_id))))


def _object_keys(app, tenant, doc_id: str) -> dict[uuid.UUID, str]:
    """The stored objects of a document's versions and their thumbnails: id -> storage key."""
    with in_tenant(app, tenant):
        ids = set(db.session.scalars(select(DocumentVersion.object_id)
                                     .where(DocumentVersion.document_id == uuid.UUID(doc_id))))
        objects = list(db.session.scalars(select(StoredObject).where(StoredObject.id.in_(ids))))
        thumbs = {o.thumbnail_id for o in objects if o.thumbnail_id}
        objects += list(db.session.scalars(select(StoredObject).where(StoredObject.id.in_(thumbs))))
        return {o.id: o.storage_key for o in objects}


def _purge_moment(app, tenant, doc_id: str):
    """The instant the document's purge day begins in the tenant's time zone."""
    from portal.documents.trash import purge_date
    from tenants.zones import start_of_day, tenant_zone

    with in_tenant(app, tenant):
        doc = db.session.get(Document, uuid.UUID(doc_id))
        return start_of_day(purge_date(doc), tenant_zone(tenant.id))


def test_purge_waits_for_the_retention_period_then_deletes_versions_and_stored_objects(app, world, people,
                                                                                       run_jobs):
    from portal.documents.services import vault_storage
    from portal.documents.trash import purge_trash

    admin, staff = people["a_client_admin"], people["staff"]
    slug = world.a.slug
    doc_id = _upload(admin, slug, samples.pdf(7361), "Old receipts.pdf", category="receipt")
    second = _doc_url(slug, doc_id)
    r = staff.post(f"/t/{slug}/documents/upload", headers={"Accept": "application/json"},
                   data={"csrf_token": csrf_token(staff, second), "document": doc_id,
                         "file": [(io.BytesIO(samples.pdf(7362)), "Old receipts v2.pdf")]})
    assert r.json["results"][0]["status"] == "version", r.json
    run_jobs()  # thumbnails
    keys = _object_keys(app, world.a, doc_id)
    assert len(keys) >= 3  # two versions, and at least one thumbnail
    assert _trash(admin, slug, doc_id, "Kept on paper").status_code == 302
    moment = _purge_moment(app, world.a, doc_id)
    with app.app_context():
        storage = vault_storage()
        assert all(storage.exists(key) for key in keys.values())
        assert moment.date() - utcnow().date() >= timedelta(days=app.config["TRASH_RETENTION_DAYS"] - 1)

        # The last minute before its purge day: nothing happens.
        with for_tenant(world.a.id):
            assert purge_trash(world.a.id, now=moment - timedelta(minutes=1)) == 0
        assert _vault_rows(app, world.a, doc_id) == (1, 2)
        assert all(storage.exists(key) for key in keys.values())
        assert _events(app, world.a, "document.purged") == []

        with for_tenant(world.a.id):
            assert purge_trash(world.a.id, now=moment) == 1
            assert purge_trash(world.a.id, now=moment) == 0  # run twice: purged once
        assert _vault_rows(app, world.a, doc_id) == (0, 0)
        assert not any(storage.exists(key) for key in keys.values())  # the files under STORAGE_DIR are gone
    with in_tenant(app, world.a):
        assert db.session.scalar(select(func.count()).select_from(StoredObject)
                                 .where(StoredObject.id.in_(list(keys)))) == 0
    [event] = _events(app, world.a, "document.purged")
    assert event.actor_side == "system" and event.object_id == doc_id
    assert event.details["name"] == "Old receipts.pdf" and event.details["versions"] == 2
    assert "deleted a document from the trash for good" in admin.get(f"/t/{slug}/access-log").get_data(as_text=True)
    # Gone for good: not in the trash, not restorable.
    assert "Old receipts.pdf" not in admin.get(f"/t/{slug}/documents/trash").get_data(as_text=True)
    assert _restore(people["manager"], slug, doc_id, page=f"/t/{slug}/documents/trash").status_code == 404


def test_purge_keeps_a_stored_object_another_document_still_uses(app, world, people):
    from portal.documents.services import vault_storage
    from portal.documents.trash import purge_trash

    admin, member = people["a_client_admin"], people["a_client_member"]
    slug = world.a.slug
    body = samples.pdf(7371)
    first = _upload(admin, slug, body, "Statement.pdf", category="bank_statement")
    assert _trash(admin, slug, first, "Sent again under the right name").status_code == 302
    # The same file again: the one in the trash is not offered as "uploaded before"; a new document links the object.
    again = _upload(member, slug, body, "Statement March.pdf", category="bank_statement")
    assert again != first
    [key] = {k for k in _object_keys(app, world.a, first).values()} & set(_object_keys(app, world.a, again).values())
    with app.app_context():
        with for_tenant(world.a.id):
            assert purge_trash(world.a.id, now=_purge_moment(app, world.a, first)) == 1
        assert vault_storage().exists(key)
    assert _vault_rows(app, world.a, first) == (0, 0)
    assert member.get(_doc_url(slug, again) + "/download").data == body
    [event] = _events(app, world.a, "document.purged")
    assert (event.details["objects_deleted"], event.details["objects_kept"]) == (0, 1)


def test_the_daily_job_purges_what_has_waited_long_enough(app, world, people, run_jobs):
    from workers import enqueue
    from workers.schedule import PERIODIC

    assert "documents.purge_trash" in PERIODIC
    admin = people["a_client_admin"]
    slug = world.a.slug
    old = _upload(admin, slug, samples.pdf(7381), "Removed long ago.pdf")
    recent = _upload(admin, slug, samples.pdf(7382), "Removed today.pdf")
    for doc_id in (old, recent):
        assert _trash(admin, slug, doc_id, "Not ours").status_code == 302
    days = app.config["TRASH_RETENTION_DAYS"]
    with in_tenant(app, world.a):
        db.session.execute(update(Document).where(Document.id == uuid.UUID(old))
                           .values(trashed_at=utcnow() - timedelta(days=days + 1)))
        enqueue("documents.purge_trash", world.a.id, tenant_id=world.a.id)
        db.session.commit()
    run_jobs()
    assert _vault_rows(app, world.a, old) == (0, 0)
    assert _vault_rows(app, world.a, recent) == (1, 1)
    trash = admin.get(f"/t/{slug}/documents/trash").get_data(as_text=True)
    assert "Removed today.pdf" in trash and "Removed long ago.pdf" not in trash


@pytest.fixture
def s3_app(app, moto, tmp_path):
    """A second app on the same database with its objects in S3 (moto server over HTTP)."""
    from portal import create_app

    bucket = "portal-trash-test"
    moto.client("s3").create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": moto.region})
    config = {k: app.config[k] for k in ("TESTING", "DATABASE_URL", "MIGRATION_DATABASE_URL", "REDIS_URL",
                                         "SMTP_URL", "SECRET_KEY", "BASE_URL")}
    config.update(moto.env(), INSTANCE_PATH=str(tmp_path / "instance"), STORAGE_BACKEND="s3", S3_BUCKET=bucket)
    return create_app(config), bucket


def test_purge_deletes_the_objects_from_s3(s3_app, moto):
    from botocore.exceptions import ClientError

    from portal.documents import services, trash
    from tenants.zones import start_of_day, tenant_zone

    app, bucket = s3_app
    s3 = moto.client("s3")
    with app.app_context():
        tenant = db.session.get(Tenant, make_tenant().id)
        person = make_person(Role.PROVIDER_ADMIN)
        with bound(Scope(user_id=person.id, tenant_ids=frozenset({tenant.id}), role=Role.PROVIDER_ADMIN)):
            actor = db.session.get(User, person.id)
            result = services.upload(actor, tenant, [samples.pdf(7391)], filename="s3 receipt.pdf",
                                     target=services.upload_target(actor, category="receipt"))
            assert result.status == "stored", result.message
            doc_id = str(result.document.id)
            key = db.session.scalars(select(StoredObject.storage_key)).one()
            s3.head_object(Bucket=bucket, Key=key)  # there
            done = trash.trash(actor, tenant, doc_id, reason="Duplicate of the paper copy")
            moment = start_of_day(done.purge_on, tenant_zone(tenant.id))
            assert trash.purge_trash(tenant.id, now=moment - timedelta(seconds=1)) == 0
            s3.head_object(Bucket=bucket, Key=key)  # still there the day before
            assert trash.purge_trash(tenant.id, now=moment) == 1
            assert db.session.scalar(select(func.count()).select_from(StoredObject)) == 0
    with pytest.raises(ClientError) as gone:
        s3.head_object(Bucket=bucket, Key=key)
    assert gone.value.response["Error"]["Code"] in ("404", "NoSuchKey")


def test_the_retention_period_cannot_be_zero():
    from portal import config

    with pytest.raises(config.ConfigError, match="TRASH_RETENTION_DAYS"):
        config.load(env={"TRASH_RETENTION_DAYS": "0"})
    assert config.load(env={})["TRASH_RETENTION_DAYS"] == 90
