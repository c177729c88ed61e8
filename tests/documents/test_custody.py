"""Bulk import and key rotation, through the CLI as the provider runs them (offboarding: tests/offboarding)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from portal.documents import services
from portal.documents.models import Document, StoredObject
from portal.extensions import db
from tenants.audit import AuditEvent
from tenants.context import Scope, bound
from tenants.keyring import KeyUnavailable
from tenants.models import Tenant
from tenants.policy import Role
from tenants.sealed import KeyRef
from tests.documents import samples
from tests.factories import make_person, make_tenant


def _import(app, tenant: Tenant, files: dict[str, bytes], category: str = "invoice") -> None:
    with app.app_context(), bound(Scope(tenant_ids=frozenset({tenant.id}), role=Role.PROVIDER_ADMIN)):
        target = services.upload_target(None, category=category)
        for name, body in files.items():
            result = services.upload(None, db.session.get(Tenant, tenant.id), [body], filename=name, target=target)
            assert result.ok, result.message


def _plaintexts(app, tenant_id) -> dict[str, bytes]:
    with app.app_context(), bound(Scope(tenant_ids=frozenset({tenant_id}), role=Role.PROVIDER_ADMIN)):
        out = {}
        for doc in db.session.scalars(select(Document)):
            out[doc.title] = b"".join(services.read_object(doc.latest.object))
        return out


@pytest.fixture
def tenant(app):
    with app.app_context():
        t = make_tenant()
        make_person(Role.CLIENT_ADMIN, t)
        return db.session.get(Tenant, t.id)


def test_documents_upload_command_stores_files_and_reports_each(app, tenant, tmp_path):
    good, bad = tmp_path / "inv.pdf", tmp_path / "tool.pdf"
    good.write_bytes(samples.pdf(6001))
    bad.write_bytes(samples.windows_exe())
    result = app.test_cli_runner().invoke(args=["documents", "upload", "--tenant", tenant.slug,
                                                "--category", "invoice", str(good), str(bad)])
    assert result.exit_code == 1
    assert "stored" in result.output and "refused" in result.output
    assert _plaintexts(app, tenant.id) == {"inv.pdf": good.read_bytes()}


def test_rotation_rewraps_every_key_and_everything_stays_readable(app, tenant):
    files = {f"r{i}.pdf": samples.pdf(7000 + i) for i in range(3)}
    _import(app, tenant, files)
    with app.app_context(), bound(Scope(tenant_ids=frozenset({tenant.id}))):
        before = {o.id: (o.key_version, o.wrapped_dek, o.storage_key) for o in db.session.scalars(select(StoredObject))}
    storage_dir = Path(app.config["STORAGE_DIR"])
    sealed_before = {k: (storage_dir / k).read_bytes() for _v, _w, k in before.values()}

    result = app.test_cli_runner().invoke(args=["keys", "rotate", "--tenant", tenant.slug])
    assert result.exit_code == 0, result.output
    assert "3 data keys re-wrapped" in result.output and "retired versions: 1" in result.output

    with app.app_context(), bound(Scope(tenant_ids=frozenset({tenant.id}))):
        after = {o.id: (o.key_version, o.wrapped_dek) for o in db.session.scalars(select(StoredObject))}
        assert all(after[i][0] == 2 and after[i][1] != before[i][1] for i in before)
        assert db.session.scalars(select(AuditEvent).where(AuditEvent.action == "keys.rotated")).one()
    # The objects were not rewritten…
    assert {k: (storage_dir / k).read_bytes() for k in sealed_before} == sealed_before
    # …and every one still opens.
    assert _plaintexts(app, tenant.id) == files
    # The retired version is gone: an old wrapped key no longer opens anything.
    keyring = services.vault_keyring
    with app.app_context():
        obj_id, (version, wrapped, _k) = next(iter(before.items()))
        with pytest.raises(KeyUnavailable):
            keyring().unwrap(tenant.id, obj_id, KeyRef(keyring().key_id(tenant.id), version), wrapped)


def test_master_rotation_keeps_everything_readable(app, tenant):
    files = {"m.pdf": samples.pdf(7100)}
    _import(app, tenant, files)
    result = app.test_cli_runner().invoke(args=["keys", "rotate-master"])
    assert result.exit_code == 0, result.output
    assert _plaintexts(app, tenant.id) == files
