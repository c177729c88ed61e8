"""Objects no catalogue row names (a crash between the write and the commit): found once old enough, removed on
request, never a catalogued one, never more than a few percent of the store without --force; local and S3."""

from __future__ import annotations

import os
import secrets
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from portal import metrics
from portal.documents import orphans, services
from portal.documents.storage import LocalStorage
from portal.extensions import db
from tenants.audit import PlatformAuditEvent
from tenants.context import Scope, bound
from tenants.models import Tenant, utcnow
from tenants.policy import Role
from tests.documents import samples
from tests.factories import make_tenant
from workers import redis_connection, schedule
from workers.jobs import REGISTRY

LATER = timedelta(days=2)  # "now" two days on: everything written in the test is past the grace period


def _app_with_store(app, tmp_path: Path, **store: str):
    """An app on the test database with a store of its own: a folder under ``tmp_path``, or what ``store`` sets."""
    from portal import create_app

    config = {k: app.config[k] for k in ("TESTING", "DATABASE_URL", "MIGRATION_DATABASE_URL", "REDIS_URL",
                                         "SMTP_URL", "SECRET_KEY", "FIELD_KEY", "BASE_URL")}
    return create_app(config | {"INSTANCE_PATH": str(tmp_path / "instance"), **store})


@pytest.fixture(params=["local", "s3"])
def store_app(request, app, tmp_path):
    """An app with a folder of its own, or a bucket of its own on the moto server."""
    if request.param == "local":
        return _app_with_store(app, tmp_path)
    moto = request.getfixturevalue("moto")
    bucket = f"orphans-{uuid.uuid4().hex[:12]}"
    moto.client("s3").create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": moto.region})
    return _app_with_store(app, tmp_path, **moto.env(), STORAGE_BACKEND="s3", S3_BUCKET=bucket)


def _fill(app) -> tuple[uuid.UUID, dict[uuid.UUID, bytes], list[str]]:
    """A tenant, its three uploaded documents (their bytes by id) and two objects a crash left without their
    rows (their keys)."""
    with app.app_context():
        tenant = db.session.get(Tenant, make_tenant().id)
        documents, lost = {}, []
        with bound(Scope(tenant_ids=frozenset({tenant.id}), role=Role.PROVIDER_ADMIN)):
            target = services.upload_target(None, category="invoice")
            for n in range(3):
                body = samples.pdf(1000 + n, pages=1)
                result = services.upload(None, tenant, [body], filename=f"kept-{n}.pdf", target=target)
                assert result.status == "stored", result.message
                documents[result.document.id] = body
            for n in range(2):  # sealed and written, then the database went away before the row committed
                lost.append(services.store_sealed(tenant.id, [f"never catalogued {n}".encode()]).storage_key)
                db.session.rollback()
        return tenant.id, documents, lost


def _reads_back(app, tenant_id: uuid.UUID, documents: dict[uuid.UUID, bytes]) -> None:
    """Every document downloads to the bytes uploaded."""
    with app.app_context(), bound(Scope(tenant_ids=frozenset({tenant_id}), role=Role.PROVIDER_ADMIN)):
        tenant = db.session.get(Tenant, tenant_id)
        for document_id, body in documents.items():
            assert b"".join(services.download(None, tenant, str(document_id)).chunks) == body


def test_objects_without_rows_are_found_when_old_enough_and_removed_and_every_document_still_reads(store_app):
    tenant_id, documents, lost = _fill(store_app)
    with store_app.app_context():
        storage = services.vault_storage()
        storage.put_record("checkpoints", f"test-{uuid.uuid4().hex[:8]}.json", b"{}")  # records are not objects
        young = orphans.find()  # an upload writes its object before its row: a fresh one is left alone
        assert young.orphans == [] and young.young == 2 and young.objects == len(documents) + 2

        old = orphans.find(now=utcnow() + LATER)
        assert sorted(item.key for item in old.orphans) == sorted(lost)
        assert old.young == 0 and old.orphan_bytes == sum(item.size for item in old.orphans) > 0

        # Two orphans among a handful of objects: far more than a few crashes leave. Refused, nothing removed.
        with pytest.raises(orphans.SweepRefused, match="named by no row"):
            orphans.sweep(remove=True, now=utcnow() + LATER)
        assert all(storage.exists(key) for key in lost)

        done = orphans.sweep(remove=True, force=True, now=utcnow() + LATER)
        assert done.removed == 2 and not any(storage.exists(key) for key in lost)
        event = db.session.scalars(select(PlatformAuditEvent).where(
            PlatformAuditEvent.action == "storage.orphans_removed").order_by(PlatformAuditEvent.seq.desc())).first()
        assert event.details["objects"] == 2 and event.details["of"] == old.objects
        assert orphans.find(now=utcnow() + LATER).orphans == []
        assert list(storage.records("checkpoints"))  # the record is still there
    _reads_back(store_app, tenant_id, documents)


def test_the_command_reports_then_removes_what_a_crash_left_and_the_temporary_file_of_a_killed_write(app, tmp_path):
    local = _app_with_store(app, tmp_path)
    tenant_id, documents, lost = _fill(local)
    with local.app_context():
        storage = services.vault_storage()
        assert isinstance(storage, LocalStorage)
        shard = storage.root / lost[0][:2] / lost[0][3:5]
        (shard / ".tmp-k1ll3d").write_bytes(b"half a sealed object")  # a worker killed mid-write
        two_days_ago = time.time() - LATER.total_seconds()
        for key in lost:
            os.utime(storage.root / key, (two_days_ago, two_days_ago))
        os.utime(shard / ".tmp-k1ll3d", (two_days_ago, two_days_ago))
    runner = local.test_cli_runner()

    report = runner.invoke(args=["documents", "orphans"])
    assert report.exit_code == 1, report.output
    assert all(key in report.output for key in lost) and ".tmp-k1ll3d" in report.output
    assert "3 named by no document" in report.output and "--remove deletes them" in report.output

    refused = runner.invoke(args=["documents", "orphans", "--remove"])
    assert refused.exit_code == 1 and "Nothing was removed" in refused.output and "--force" in refused.output
    assert all((Path(storage.root) / key).exists() for key in lost)

    removed = runner.invoke(args=["documents", "orphans", "--remove", "--force"])
    assert removed.exit_code == 0, removed.output
    assert "3 removed" in removed.output
    assert not any((Path(storage.root) / key).exists() for key in lost)
    assert not (shard / ".tmp-k1ll3d").exists()
    again = runner.invoke(args=["documents", "orphans"])
    assert again.exit_code == 0 and "0 named by no document" in again.output
    _reads_back(local, tenant_id, documents)


def _orphan_gauges(app) -> dict[str, float]:
    """The store's orphan figures as a scraper reads them at /metrics (absent ones left out)."""
    r = app.test_client().get("/metrics", headers={"Authorization": f"Bearer {app.config['METRICS_TOKEN']}"})
    assert r.status_code == 200
    return {sample.name: sample.value for family in text_string_to_metric_families(r.get_data(as_text=True))
            for sample in family.samples if sample.name.startswith("portal_storage_orphan")}


def test_the_daily_check_shows_what_a_crash_left_at_metrics_removes_nothing_and_a_removal_clears_it(app, tmp_path):
    local = _app_with_store(app, tmp_path, METRICS_TOKEN=secrets.token_urlsafe(32))
    tenant_id, documents, lost = _fill(local)
    with local.app_context():
        redis_connection().delete(metrics.ORPHANS_KEY)
    assert _orphan_gauges(local) == {}  # never checked: absent, not a reassuring zero

    with local.app_context():
        storage = services.vault_storage()
        two_days_ago = time.time() - LATER.total_seconds()
        for key in lost:
            os.utime(storage.root / key, (two_days_ago, two_days_ago))
        lost_bytes = sum((storage.root / key).stat().st_size for key in lost)
        assert schedule.PERIODIC["documents.check_orphans"] == schedule.Periodic(schedule.DAILY, per_tenant=False)
        started = time.time()
        REGISTRY["documents.check_orphans"]()  # what the scheduler enqueues once a day
        assert all(storage.exists(key) for key in lost)  # counted, not removed: that is the operator's call
    seen = _orphan_gauges(local)
    assert seen["portal_storage_orphans"] == 2 and seen["portal_storage_orphan_bytes"] == lost_bytes
    assert started <= seen["portal_storage_orphans_checked_timestamp_seconds"] <= time.time()

    removed = local.test_cli_runner().invoke(args=["documents", "orphans", "--remove", "--force"])
    assert removed.exit_code == 0, removed.output
    after = _orphan_gauges(local)
    assert after["portal_storage_orphans"] == 0 and after["portal_storage_orphan_bytes"] == 0
    assert after["portal_storage_orphans_checked_timestamp_seconds"] >= seen[
        "portal_storage_orphans_checked_timestamp_seconds"]
    _reads_back(local, tenant_id, documents)


def test_a_temporary_file_name_cannot_reach_outside_the_store(tmp_path):
    from portal.documents.storage import Listed

    storage = LocalStorage(tmp_path / "objects")
    outside = tmp_path / "keep.txt"
    outside.write_text("not the store's")
    for key in ("../../keep.txt", "ab/cd/../../../keep.txt", "ab/cd/.tmp-x/../../../../keep.txt", "ab/.tmp-x"):
        with pytest.raises(ValueError):
            storage.remove(Listed(key, utcnow(), 0, temporary=True))
    assert outside.exists()
