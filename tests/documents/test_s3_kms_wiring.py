"""The production shape: objects in S3, tenant keys wrapped by KMS (moto server over HTTP), set by configuration."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from portal.documents import services
from portal.documents.models import StoredObject
from portal.extensions import db
from tenants.context import Scope, bound
from tenants.models import Tenant
from tenants.policy import Role
from tests.documents import samples
from tests.factories import make_tenant


@pytest.fixture
def s3_app(app, moto, tmp_path):
    """A second app on the same database, configured like production: S3 storage and a KMS master key."""
    from portal import create_app

    bucket = "portal-objects-test"
    moto.client("s3").create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": moto.region})
    kms_key = moto.client("kms").create_key(Description="portal master")["KeyMetadata"]["KeyId"]
    config = {k: app.config[k] for k in ("TESTING", "DATABASE_URL", "MIGRATION_DATABASE_URL", "REDIS_URL",
                                         "SMTP_URL", "SECRET_KEY", "BASE_URL")}
    config.update(moto.env(), INSTANCE_PATH=str(tmp_path / "instance"), STORAGE_BACKEND="s3", S3_BUCKET=bucket,
                  KMS_KEY_ID=kms_key)
    return create_app(config), bucket


def test_uploads_land_in_s3_as_ciphertext_under_a_kms_wrapped_tenant_key(s3_app, moto):
    app, bucket = s3_app
    body = samples.pdf(4711, pages=3)
    with app.app_context():
        tenant = db.session.get(Tenant, make_tenant().id)
        tenant_id = tenant.id
        with bound(Scope(tenant_ids=frozenset({tenant.id}), role=Role.PROVIDER_ADMIN)):
            target = services.upload_target(None, category="invoice")
            result = services.upload(None, tenant, [body[:1000], body[1000:]], filename="s3.pdf", target=target)
            assert result.status == "stored", result.message
            download = services.download(None, tenant, str(result.document.id))
            assert b"".join(download.chunks) == body
            key = db.session.scalars(select(StoredObject.storage_key)).one()

    stored = moto.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    assert stored[:4] == b"BOPV" and b"%PDF" not in stored and body[100:164] not in stored
    assert "s3.pdf" not in key and str(tenant_id) not in key
    key_dir = Path(app.config["KEY_DIR"])
    assert not any(key_dir.glob("master*"))  # the master key is in KMS, not on disk
    assert any(key_dir.rglob("v1*"))  # the tenant key, wrapped by KMS, outside the database
