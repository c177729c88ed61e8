"""The vault under concurrency and crashes, against the real database: each test makes two things
happen at the same moment (threads, each with its own application context and connection) and
checks what a user would: nothing lost, nothing unreadable, no limit passed, no orphan left."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from portal.documents import custody, services
from portal.documents.models import Document, DocumentVersion, StoredObject
from portal.extensions import db
from tenants.context import Scope, bound
from tenants.models import Tenant
from tenants.policy import Role
from tests.documents import samples
from tests.factories import TenantRef, make_tenant


@pytest.fixture
def tenant(app) -> TenantRef:
    with app.app_context():
        return TenantRef.of(make_tenant())


def _system(tenant: TenantRef):  # noqa: ANN202
    return bound(Scope(tenant_ids=frozenset({tenant.id}), role=Role.PROVIDER_ADMIN))


def _in_thread(app, fn: Callable[[], object]) -> tuple[threading.Thread, dict]:
    out: dict = {}

    def run() -> None:
        with app.app_context():
            try:
                out["result"] = fn()
            except BaseException as exc:  # noqa: BLE001 - reported to the test
                out["error"] = exc
            finally:
                db.session.remove()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, out


def _held(body: bytes, reached: threading.Event, release: threading.Event) -> Iterator[bytes]:
    """A file that arrives in two halves, with a pause between them (a slow upload)."""
    yield body[: len(body) // 2]
    reached.set()
    assert release.wait(30)
    yield body[len(body) // 2:]


def _upload(app, tenant: TenantRef, chunks, name: str, **target) -> services.UploadResult:  # noqa: ANN001
    with _system(tenant):
        t = db.session.get(Tenant, tenant.id)
        result = services.upload(None, t, chunks, filename=name,
                                 target=services.upload_target(None, category="invoice", **target))
        result.document_id = result.document.id if result.document else None  # usable after the session ends
        return result


def _storage_files(app) -> set[str]:
    root = Path(app.config["STORAGE_DIR"])
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and "records" not in p.parts}


def test_a_key_rotation_during_an_upload_never_destroys_the_key_that_upload_used(app, tenant):
    reached, release = threading.Event(), threading.Event()
    body = samples.pdf(7001)
    thread, out = _in_thread(app, lambda: _upload(app, tenant, _held(body, reached, release), "slow.pdf"))
    assert reached.wait(30)  # the upload wrapped its data key under version 1 and is still streaming
    with app.app_context():
        rotation = custody.rotate_tenant_key(db.session.get(Tenant, tenant.id), wait_seconds=0.5)
        assert rotation.new.version == 2 and rotation.retired == [] and rotation.pending == [1]
    release.set()
    thread.join(30)
    assert out["result"].status == "stored"  # the user was told it is stored: it must open
    with app.app_context(), _system(tenant):
        doc = db.session.get(Document, out["result"].document_id)
        assert b"".join(services.read_object(doc.latest.object)) == body
        count, retired, pending = custody.retire_unused(db.session.get(Tenant, tenant.id))
        assert (count, retired, pending) == (1, [1], [])  # the late upload re-wrapped, then version 1 went
        doc = db.session.get(Document, out["result"].document_id)
        assert doc.latest.object.key_version == 2
        assert b"".join(services.read_object(doc.latest.object)) == body


def test_two_rotations_of_one_tenant_at_once_do_not_chase_each_other(app, tenant):
    with app.app_context():
        _upload(app, tenant, [samples.pdf(7002)], "a.pdf")
        t = db.session.get(Tenant, tenant.id)
        with custody._one_rotation(t), pytest.raises(custody.RotationBusy, match="running already"):
            custody.rotate_tenant_key(t)  # while another rotation is running
        done = custody.rotate_tenant_key(t)
        assert done.rewrapped >= 1 and done.retired and done.pending == []


def test_two_uploads_at_once_never_pass_the_quota_together(app, tenant):
    first, second = samples.pdf(7003, pages=3), samples.pdf(7004, pages=3)
    with app.app_context():
        t = db.session.get(Tenant, tenant.id)
        t.storage_quota_bytes = len(first) + len(second) - 1  # room for one, not both
        db.session.commit()
    barrier = threading.Barrier(2, timeout=30)

    def arriving(body: bytes) -> Iterator[bytes]:
        yield body
        barrier.wait()  # both files are in storage before either is catalogued

    threads = [_in_thread(app, lambda b=b, n=n: _upload(app, tenant, arriving(b), n))
               for b, n in ((first, "one.pdf"), (second, "two.pdf"))]
    for thread, _out in threads:
        thread.join(30)
    results = sorted((out["result"] for _t, out in threads), key=lambda r: r.status)
    assert [r.status for r in results] == ["refused", "stored"]
    assert "storage is full" in results[0].message
    with app.app_context(), _system(tenant):
        used, quota = services.usage(db.session.get(Tenant, tenant.id))
        assert used <= quota
        keys = set(db.session.scalars(select(StoredObject.storage_key)))
    assert keys >= {k for k in _storage_files(app) if k in keys} and not (_storage_files(app) - _all_keys(app))


def _all_keys(app) -> set[str]:
    """Every object key the catalogue knows, in every tenant (the system's own read)."""
    with app.app_context():
        ids = frozenset(db.session.scalars(select(Tenant.id)))
        with bound(Scope(tenant_ids=ids)):
            return set(db.session.scalars(select(StoredObject.storage_key)))


def test_two_new_versions_of_one_document_at_once_both_keep_their_place(app, tenant):
    with app.app_context():
        doc_id = _upload(app, tenant, [samples.pdf(7005)], "contract.pdf").document_id
    barrier = threading.Barrier(2, timeout=30)

    def arriving(body: bytes) -> Iterator[bytes]:
        yield body
        barrier.wait()

    threads = [_in_thread(app, lambda s=s: _upload(app, tenant, arriving(samples.pdf(s)), f"v{s}.pdf",
                                                   document_id=str(doc_id)))
               for s in (7006, 7007)]
    for thread, _out in threads:
        thread.join(30)
    assert sorted(out["result"].status for _t, out in threads) == ["version", "version"]
    with app.app_context(), _system(tenant):
        numbers = sorted(db.session.scalars(select(DocumentVersion.number)
                                            .where(DocumentVersion.document_id == doc_id)))
        assert numbers == [1, 2, 3] and db.session.get(Document, doc_id).current_version == 3
    assert not (_storage_files(app) - _all_keys(app))  # no encrypted object without its catalogue row


def test_a_failure_after_storing_leaves_no_object_behind(app, tenant, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(services, "_file", broken)
    before = _storage_files(app)
    with app.app_context(), pytest.raises(RuntimeError):
        _upload(app, tenant, [samples.pdf(7008)], "lost.pdf")
    assert _storage_files(app) == before


def test_the_thumbnail_job_run_twice_at_once_renders_and_stores_one_thumbnail(app, tenant):
    with app.app_context():
        result = _upload(app, tenant, [samples.png(7009, size=(400, 300))], "photo.png")
        with _system(tenant):
            object_id = db.session.get(Document, result.document_id).latest.object_id
    barrier = threading.Barrier(2, timeout=30)

    def render() -> None:
        with _system(tenant):
            barrier.wait()
            services.make_thumbnail(object_id)
            db.session.commit()

    threads = [_in_thread(app, render) for _ in range(2)]
    for thread, out in threads:
        thread.join(60)
        assert "error" not in out, out
    with app.app_context(), _system(tenant):
        thumbs = db.session.scalar(select(func.count()).select_from(StoredObject)
                                   .where(StoredObject.purpose == "thumbnail"))
        assert thumbs == 1 and db.session.get(StoredObject, object_id).preview == "ready"
    assert not (_storage_files(app) - _all_keys(app))
